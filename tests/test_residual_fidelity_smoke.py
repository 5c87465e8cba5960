"""Smoke test of benchmarks/residual_fidelity.py --quick (correctness, not speed)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "residual_fidelity.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _finite(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("residual_fidelity")
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out-dir", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out, proc.stdout, json.loads((out / "residual_fidelity.json").read_text())


def test_json_structure_and_numbers(quick_run):
    _, _, report = quick_run
    assert report["complete"] is True
    assert report["quick"] is True
    assert _finite(report["wall_seconds"]) and report["wall_seconds"] > 0
    settings = report["settings"]
    for key in ("scenes", "budgets", "methods", "steps", "test_episodes", "iters"):
        assert key in settings, key
    assert settings["multi_step_iters"] == 0
    assert set(report["scenes"]) == set(settings["scenes"]) == {"arm2"}
    budgets = [str(b) for b in settings["budgets"]]
    sc = report["scenes"]["arm2"]
    ref = str(sc["reference_budget"])
    assert ref in budgets
    assert set(sc["results"]) == set(settings["methods"])
    for method, rows in sc["results"].items():
        assert set(rows) == set(budgets), method
        for b, row in rows.items():
            assert "error" not in row, (method, b, row.get("error"))
            assert _finite(row["one_step_nmse"]) and row["one_step_nmse"] >= 0
            for h in ("50", "200"):
                assert _finite(row["rollout_rmse"][h]) and row["rollout_rmse"][h] > 0
                assert _finite(row["gap_closure"][h])
            if method == "physics":
                assert row["gap_closure"]["50"] == 0.0
    assert sc["fit_configs"]["force"]["residual"]["hidden"] == [256, 256]
    # gap closure is computed from the RMSEs, not hard-coded
    phys = sc["results"]["physics"][ref]["rollout_rmse"]["50"]
    force = sc["results"]["force"][ref]
    assert force["gap_closure"]["50"] == pytest.approx(1 - force["rollout_rmse"]["50"] / phys)
    curve = sc["horizon_curve"]
    assert curve["horizons"] == sorted(curve["horizons"]) and 50 in curve["horizons"]
    for method, vals in curve["rmse"].items():
        assert len(vals) == len(curve["horizons"]), method
        assert all(_finite(v) and v > 0 for v in vals), method
    for name in ("ood_action", "ood_payload"):
        for method, r in sc["ood"]["sets"][name].items():
            assert _finite(r["rollout_rmse"]) and _finite(r["ratio"]), (name, method)
            assert r["ratio"] == pytest.approx(r["rollout_rmse"] / r["in_distribution_rmse"])
    dm = sc["data_multiplier"]
    assert (dm["value"] is None) != (dm["lower_bound"] is None)
    assert isinstance(dm["text"], str) and dm["text"]
    tp = sc["throughput"]
    assert tp["batch_size"] == 1024
    for key in ("physics_steps_per_s", "hybrid_steps_per_s", "ratio", "bfloat16_ratio"):
        assert _finite(tp[key]) and tp[key] > 0, key
    assert tp["ratio"] == pytest.approx(tp["hybrid_steps_per_s"] / tp["physics_steps_per_s"])
    bf = tp["bfloat16_steps_per_s"] / tp["physics_steps_per_s"]
    assert tp["bfloat16_ratio"] == pytest.approx(bf)
    per = sc["per_qpos_rmse"]
    assert len(per["labels"]) == len(per["physics"]) == len(per["force"]) == 2  # arm2: nq = 2
    phys50 = sc["results"]["physics"][ref]["rollout_rmse"]["50"]
    assert math.sqrt(sum(x * x for x in per["physics"]) / 2) == pytest.approx(phys50)
    assert set(sc["effect_attribution"]) == {
        "latency_steps",
        "backlash",
        "coulomb_friction",
        "mass_scale",
        "drag",
        "friction_field",
    }
    assert all(_finite(v) for v in sc["effect_attribution"].values())
    floor = sc["payload_floor"]
    assert floor["ratio"] == pytest.approx(
        floor["rollout_rmse"] / floor["hybrid_in_distribution_rmse"]
    )
    spread = sc["seed_spread"]  # --quick refits the reference hybrid with 2 seeds
    assert spread["seeds"] == [0, 1] and len(spread["gap_closure"]) == 2
    # seed 0 is the main fit: the same number
    assert spread["gap_closure"][0] == pytest.approx(force["gap_closure"]["50"])
    assert spread["mean"] == pytest.approx(sum(spread["gap_closure"]) / 2)
    ad = sc["adaptive"]
    assert ad["adapt_steps"] == 50
    for name in ("ood_action", "ood_payload"):
        assert ad["ratio"][name] == pytest.approx(
            ad["rollout_rmse"][name] / ad["rollout_rmse"]["test"]
        )
    acc = sc["bfloat16_accuracy"]
    assert acc["float32_gap_closure"] == pytest.approx(
        sc["results"]["force"][ref]["gap_closure"]["50"]
    )
    assert _finite(acc["gap_closure"]) and _finite(acc["rollout_rmse"]["bfloat16"])


def test_targets_are_reported(quick_run):
    _, stdout, report = quick_run
    targets = report["targets"]
    # gap, vs sysid, multiplier, two OOD ratios, adapted payload, two throughputs
    assert len(targets) == 8
    for t in targets:
        assert t["status"] in ("PASS", "FAIL", "INCONCLUSIVE", "NOT RUN"), t
        assert t["scene"] == "arm2"
        line = f"{t['status']:12s} {t['scene']:8s} {t['target']}"
        assert line in stdout, line
    by_name = {t["target"].split(" ")[0]: t for t in targets}
    # sysid is not part of --quick: that target is reported as not run, never passed
    sysid = [t for t in targets if "sysid" in t["target"]]
    assert sysid and all(t["status"] == "NOT RUN" for t in sysid)
    gap = by_name["gap"]
    assert gap["status"] == ("PASS" if gap["value"] >= 0.8 else "FAIL")
    # judged on the mean over seeds
    assert gap["value"] == pytest.approx(report["scenes"]["arm2"]["seed_spread"]["mean"])


def test_png_written(quick_run):
    out, _, _ = quick_run
    png = out / "residual_error_vs_horizon.png"
    data = png.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 1000
    assert not list(out.glob(".*.tmp")), "temporary files left behind"
