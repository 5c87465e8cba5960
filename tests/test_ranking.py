"""Ranking metrics against values computed by hand on small vectors, ties included."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hybridsim._src.errors import PolicyError
from hybridsim._src.evaluation import ranking


def test_pearson_by_hand():
    # deviations (-1, 0, 1) and (-4/3, -1/3, 5/3): cov 3, sums of squares 2 and 14/3
    assert ranking.pearson([1, 2, 3], [1, 2, 4]) == pytest.approx(math.sqrt(27 / 28))
    assert ranking.pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(ranking.pearson([1, 1, 1], [1, 2, 3]))


def test_average_ranks_share_ties():
    np.testing.assert_array_equal(ranking.average_ranks([3, 1, 2, 2]), [4, 1, 2.5, 2.5])
    np.testing.assert_array_equal(ranking.average_ranks([5, 5, 5]), [2, 2, 2])


def test_spearman_with_a_tie_by_hand():
    # ranks (1, 2.5, 2.5, 4) and (1, 3, 2, 4): cov 4.5, sums of squares 4.5 and 5
    assert ranking.spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(math.sqrt(0.9))
    # any monotone map of the scores gives rho = 1
    assert ranking.spearman([1, 2, 3, 4], [1, 10, 100, 1000]) == pytest.approx(1.0)


def test_kendall_tau_b_by_hand():
    # 6 pairs: 5 concordant, 0 discordant, 1 tied in the model only -> 5 / sqrt(5 * 6)
    assert ranking.kendall([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(5 / math.sqrt(30))
    # pairs (0,1) and (0,2) discordant, (1,2) concordant -> (1 - 2) / 3
    assert ranking.kendall([1, 2, 3], [3, 1, 2]) == pytest.approx(-1 / 3)
    # tied in both vectors: the pair counts in neither n0 - n1 nor n0 - n2
    assert ranking.kendall([1, 1, 2], [1, 1, 2]) == pytest.approx(1.0)


def test_mmrv_as_simpler_defines_it():
    model, real = [0.9, 0.5, 0.7], [0.8, 0.6, 0.4]
    # policy 0: no violation; 1 and 2 swap against each other: |0.6 - 0.4| each
    assert ranking.mmrv(model, real) == pytest.approx(0.4 / 3)
    assert ranking.mmrv(real, real) == 0.0
    # a tie in the model that reality breaks: SIMPLER's strict comparison charges it to
    # the policy that is better in reality only -> (0.2 + 0) / 2
    assert ranking.mmrv([0.5, 0.5], [0.3, 0.1]) == pytest.approx(0.1)
    # the maximum over j, not the sum: policy 0 violated by both others (0.5 and 0.3)
    assert ranking.mmrv([0.0, 0.5, 0.6], [0.9, 0.4, 0.6]) == pytest.approx((0.5 + 0.5 + 0.3) / 3)


def test_top1_regret_by_hand():
    real = [0.8, 0.6, 0.4]
    assert ranking.top1_regret([0.9, 0.5, 0.7], real) == 0.0
    assert ranking.top1_regret([0.1, 0.9, 0.5], real) == pytest.approx(0.2)
    # a tie for first: the mean real score of the tied policies (0.8 + 0.6) / 2
    assert ranking.top1_regret([0.9, 0.9, 0.1], [0.8, 0.6, 1.0]) == pytest.approx(0.3)


def test_ranking_metrics_over_the_reference_policies():
    model = {"a": 0.9, "b": 0.5, "c": 0.7, "extra": 5.0}
    reference = {"a": 0.8, "b": 0.6, "c": 0.4}
    got = ranking.ranking_metrics(model, reference)
    assert got["n"] == 3
    assert got["mmrv"] == pytest.approx(0.4 / 3)
    assert got["mmrv_normalized"] == pytest.approx((0.4 / 3) / 0.4)
    assert got["spearman"] == pytest.approx(0.5)
    assert got["kendall"] == pytest.approx(1 / 3)
    assert got["top1_regret"] == 0.0


def test_bad_inputs_are_clear_errors():
    with pytest.raises(PolicyError, match="not evaluated: \\['zz'\\]"):
        ranking.ranking_metrics({"a": 1.0, "b": 2.0}, {"a": 1.0, "zz": 2.0})
    with pytest.raises(PolicyError, match="at least 2"):
        ranking.pearson([1.0], [1.0])
    with pytest.raises(PolicyError, match="same shape"):
        ranking.spearman([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(PolicyError, match="finite"):
        ranking.kendall([1.0, float("nan")], [1.0, 2.0])
