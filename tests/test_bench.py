"""Smoke tests of the throughput benchmark library and script (correctness, not speed)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hybridsim._src import bench

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rows():
    messages = []
    out = bench.run_throughput(["arm2"], ["c"], [2], steps=5, repeats=1, progress=messages.append)
    assert messages, "progress callback was never called"
    return out


def _check_row(row, scene="arm2", backend="c", batch_size=2, steps=5):
    assert set(row) == set(bench.ROW_KEYS)
    assert row["scene"] == scene
    assert row["backend"] == backend
    assert row["batch_size"] == batch_size
    assert row["steps"] == steps
    for key in (
        "hs_seconds",
        "raw_seconds",
        "hs_sps",
        "raw_sps",
        "rtf",
        "raw_rtf",
        "hs_first_seconds",
        "raw_first_seconds",
        "timestep",
    ):
        assert isinstance(row[key], float), key
        assert math.isfinite(row[key]) and row[key] > 0, (key, row[key])
    assert math.isfinite(row["overhead"])
    assert row["overhead"] == pytest.approx(row["raw_sps"] / row["hs_sps"] - 1)
    assert row["rtf"] == pytest.approx(row["hs_sps"] * row["timestep"])
    assert row["hs_sps"] == pytest.approx(steps * batch_size / row["hs_seconds"])


def test_run_throughput_c_row(rows):
    assert len(rows) == 1
    row = rows[0]
    _check_row(row)
    assert row["control_steps"] == 5 and row["substeps"] == 1
    assert row["nthread"] >= 1
    # Compile time only applies to the JAX backends.
    assert row["hs_compile_seconds"] is None and row["raw_compile_seconds"] is None
    assert row["flagged_worlds"] == 0


def test_run_throughput_substeps():
    (row,) = bench.run_throughput(["arm2"], ["c"], [3], steps=6, substeps=2, repeats=1)
    _check_row(row, batch_size=3, steps=6)
    assert row["control_steps"] == 3 and row["substeps"] == 2


def test_run_throughput_min_seconds_adds_calls():
    (row,) = bench.run_throughput(
        ["arm2"], ["c"], [1], steps=5, repeats=2, min_seconds=1e9, max_repeats=4
    )
    _check_row(row, batch_size=1)
    assert row["repeats"] == 4  # min_seconds never reached: capped by max_repeats
    (row,) = bench.run_throughput(["arm2"], ["c"], [1], steps=5, repeats=2)
    assert row["repeats"] == 2


def test_run_throughput_rejects_bad_steps():
    with pytest.raises(ValueError, match="multiple of substeps"):
        bench.run_throughput(["arm2"], ["c"], [1], steps=5, substeps=2, repeats=1)
    with pytest.raises(ValueError, match="repeats"):
        bench.run_throughput(["arm2"], ["c"], [1], steps=5, repeats=0)


def test_random_controls_within_range():
    import hybridsim as hs

    scene = hs.load_scene("quadruped")
    u = bench.random_controls(scene, 4, 7, seed=3)
    low, high = scene.ctrl_range()
    assert u.shape == (4, 7, scene.nu)
    assert (u >= low).all() and (u <= high).all()
    assert (u == bench.random_controls(scene, 4, 7, seed=3)).all()


def test_format_table(rows):
    text = bench.format_table(rows)
    lines = text.splitlines()
    assert len(lines) == 2 + len(rows)
    assert "arm2" in lines[2]
    assert "steps/s" in lines[0] and "overhead" in lines[0]


def test_write_json_round_trip(rows, tmp_path):
    path = tmp_path / "sub" / "out.json"
    written = bench.write_json(
        path, rows + [{**rows[0], "overhead": float("nan")}], {"note": "test"}
    )
    assert Path(written) == path
    doc = json.loads(path.read_text())
    assert doc["meta"]["note"] == "test"
    for key in ("date", "platform", "cpu_count", "jax", "mujoco", "jax_devices"):
        assert key in doc["meta"], key
    assert doc["rows"][0] == pytest.approx(rows[0])
    assert doc["rows"][1]["overhead"] is None  # non-finite floats become null
    # Atomic write leaves no temporary files behind.
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.json"]


def test_throughput_script_quick(tmp_path):
    out = tmp_path / "quick.json"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "throughput.py"),
            "--quick",
            "--backends",
            "c",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    assert "arm2" in proc.stdout
    assert "overhead <=" in proc.stdout
    doc = json.loads(out.read_text())
    assert doc["meta"]["quick"] is True
    assert doc["rows"], "no rows written"
    assert {r["backend"] for r in doc["rows"]} == {"c"}
    for row in doc["rows"]:
        assert set(row) == set(bench.ROW_KEYS)
        assert row["hs_sps"] > 0 and row["raw_sps"] > 0
