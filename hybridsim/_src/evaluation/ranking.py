"""How well a model's scores of a set of policies agree with a reference (the real robot).

Every function takes two score vectors over the same P policies, ``model (P,)`` and
``real (P,)`` (higher is better), and returns a float:

- ``pearson``: linear correlation of the scores; NaN when either vector is constant.
- ``spearman``: Pearson correlation of the ranks, tied scores sharing their average rank.
- ``kendall``: Kendall's tau-b, ``(C - D) / sqrt((n0 - n1) (n0 - n2))`` over the
  ``n0 = P (P - 1) / 2`` pairs: C concordant, D discordant, n1 (n2) pairs tied in
  ``model`` (``real``); NaN when either vector is constant.
- ``mmrv``: SIMPLER's mean maximum rank violation (Li et al. 2024, "Evaluating Real-World
  Robot Manipulation Policies in Simulation"), exactly as ``simpler_env.utils.metrics``
  computes it::

      MMRV = 1/P sum_i max_j |real_i - real_j| * 1[(model_i > model_j) != (real_i > real_j)]

  in the units of ``real`` (success rates in SIMPLER; lower is better, 0 when the two
  orders agree). The comparison is strict, so a tie in ``model`` that ``real`` breaks
  counts as a violation of the policy that is better in reality.
- ``top1_regret``: ``max(real) - real[k]`` where k is the policy the model ranks first
  (with a tie for first, the mean of ``real`` over the tied policies: the expected regret
  of picking one of them at random). 0 when the model picks the best real policy.
"""

from __future__ import annotations

import numpy as np

from hybridsim._src.errors import PolicyError


def _pair(model, real) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(model, np.float64)
    b = np.asarray(real, np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise PolicyError(
            f"ranking needs two score vectors of the same shape (P,), got {a.shape} and {b.shape}"
        )
    if a.size < 2:
        raise PolicyError(f"ranking needs at least 2 policies, got {a.size}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise PolicyError("ranking needs finite scores")
    return a, b


def pearson(model, real) -> float:
    """Pearson correlation of ``model (P,)`` and ``real (P,)``; NaN if either is constant."""
    a, b = _pair(model, real)
    da, db = a - a.mean(), b - b.mean()
    denom = np.sqrt(np.sum(da * da) * np.sum(db * db))
    return float(np.sum(da * db) / denom) if denom > 0 else float("nan")


def average_ranks(x) -> np.ndarray:
    """Ranks 1..P of ``x (P,)`` in increasing order; tied values share their average rank."""
    x = np.asarray(x, np.float64)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(model, real) -> float:
    """Spearman's rho: Pearson correlation of the average ranks."""
    a, b = _pair(model, real)
    return pearson(average_ranks(a), average_ranks(b))


def kendall(model, real) -> float:
    """Kendall's tau-b (ties in either vector corrected for); NaN if either is constant."""
    a, b = _pair(model, real)
    i, j = np.triu_indices(len(a), k=1)
    sa, sb = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    n0 = len(i)
    n1, n2 = np.count_nonzero(sa == 0), np.count_nonzero(sb == 0)
    denom = np.sqrt(float(n0 - n1) * float(n0 - n2))
    return float(np.sum(sa * sb) / denom) if denom > 0 else float("nan")


def mmrv(model, real) -> float:
    """SIMPLER's mean maximum rank violation (module docstring), in the units of ``real``."""
    a, b = _pair(model, real)
    violated = (a[:, None] > a[None, :]) != (b[:, None] > b[None, :])
    gap = np.abs(b[:, None] - b[None, :])
    return float(np.mean(np.max(np.where(violated, gap, 0.0), axis=1)))


def top1_regret(model, real) -> float:
    """Real score of the best real policy minus that of the model's first choice."""
    a, b = _pair(model, real)
    return float(b.max() - b[a == a.max()].mean())


def ranking_metrics(model: dict[str, float], reference: dict[str, float]) -> dict[str, float]:
    """Every metric of the module over the policies named in ``reference``.

    ``model`` and ``reference`` map policy names to scores; policies of ``model`` that the
    reference does not name are left out. Besides the five metrics the result has ``n``
    (the number of policies compared) and ``mmrv_normalized``: MMRV divided by the spread
    ``max(real) - min(real)`` of the reference scores, so that scores on any scale compare
    with SIMPLER's success rates (NaN when the reference is constant).
    """
    unknown = sorted(set(reference) - set(model))
    if unknown:
        raise PolicyError(
            f"the reference names policies that were not evaluated: {unknown}; evaluated: "
            f"{sorted(model)}"
        )
    names = [n for n in model if n in reference]
    a = np.array([model[n] for n in names], np.float64)
    b = np.array([reference[n] for n in names], np.float64)
    spread = float(np.ptp(b)) if len(b) else 0.0
    violation = mmrv(a, b)
    return {
        "pearson": pearson(a, b),
        "spearman": spearman(a, b),
        "kendall": kendall(a, b),
        "mmrv": violation,
        "mmrv_normalized": violation / spread if spread > 0 else float("nan"),
        "top1_regret": top1_regret(a, b),
        "n": len(names),
    }
