"""The command line: help, rollout to the interchange format, clear errors, the demo."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import hybridsim as hs
from hybridsim._src.cli.main import main


def _run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run(
        [sys.executable, "-m", "hybridsim", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


@pytest.mark.parametrize(
    "command",
    [
        "demo",
        "rollout",
        "bench",
        "scenes",
        "synthetic-reality",
        "residual",
        "scene",
        "reconstruct",
        "data",
        "eval",
        "policy",
        "plan",
    ],
)
def test_every_command_has_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "example" in out
    assert f"hybridsim {command}" in out


def test_the_old_reality_command_name_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["reality", "record", "--help"])
    assert e.value.code == 2
    assert "invalid choice: 'reality'" in capsys.readouterr().err


def test_rollout_writes_interchange_file(tmp_path):
    ctrl = np.random.default_rng(0).uniform(-1, 1, (3, 40, 2))
    np.save(tmp_path / "u.npy", ctrl)
    out = tmp_path / "traj.npz"
    rc = main(
        [
            "rollout",
            "--scene",
            "arm2",
            "--ctrl",
            str(tmp_path / "u.npy"),
            "--backend",
            "c",
            "--substeps",
            "2",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert rc == 0
    data = hs.load_trajectory(out, hs.load_scene("arm2"))
    assert data["qpos"].shape == (3, 41, 2)
    assert data["qvel"].shape == (3, 41, 2)
    np.testing.assert_array_equal(data["ctrl"], ctrl)
    scene = hs.load_scene("arm2")
    assert float(data["control_dt"]) == pytest.approx(2 * scene.timestep)
    # Same numbers as the Python API.
    model = hs.make_model(scene, 3, backend="c", substeps=2)
    np.testing.assert_array_equal(data["qpos"], hs.rollout(model, hs.init(model), ctrl).qpos)


def test_rollout_accepts_an_mjcf_path(tmp_path):
    xml = tmp_path / "pendulum.xml"
    xml.write_text(
        "<mujoco><worldbody><body><joint name='hinge' type='hinge'/>"
        "<geom size='.1' pos='0 0 -1'/></body></worldbody>"
        "<actuator><motor joint='hinge'/></actuator></mujoco>"
    )
    np.save(tmp_path / "u.npy", np.zeros((2, 5, 1)))
    rc = main(
        [
            "rollout",
            "--scene",
            str(xml),
            "--ctrl",
            str(tmp_path / "u.npy"),
            "--backend",
            "c",
            "--out",
            str(tmp_path / "o.npz"),
            "--quiet",
        ]
    )
    assert rc == 0


def test_rollout_errors_are_one_clear_line(tmp_path, capsys):
    np.save(tmp_path / "wrong.npy", np.zeros((3, 40, 5)))
    rc = main(
        [
            "rollout",
            "--scene",
            "arm2",
            "--ctrl",
            str(tmp_path / "wrong.npy"),
            "--out",
            str(tmp_path / "o.npz"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert "expected shape (B, T, nu=2)" in err and "(3, 40, 5)" in err
    assert "Traceback" not in err

    bad = np.zeros((1, 4, 2))
    bad[0, 2, 1] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    rc = main(
        [
            "rollout",
            "--scene",
            "arm2",
            "--ctrl",
            str(tmp_path / "nan.npy"),
            "--out",
            str(tmp_path / "o.npz"),
            "--quiet",
        ]
    )
    assert rc == 2
    assert "[world 0, step 2, actuator 1]" in capsys.readouterr().err

    (tmp_path / "corrupt.npy").write_bytes(b"not numpy at all")
    rc = main(
        [
            "rollout",
            "--scene",
            "arm2",
            "--ctrl",
            str(tmp_path / "corrupt.npy"),
            "--out",
            str(tmp_path / "o.npz"),
            "--quiet",
        ]
    )
    assert rc == 2
    assert "not a readable .npy" in capsys.readouterr().err

    rc = main(
        [
            "rollout",
            "--scene",
            "no_such_scene",
            "--ctrl",
            str(tmp_path / "nan.npy"),
            "--out",
            str(tmp_path / "o.npz"),
            "--quiet",
        ]
    )
    assert rc == 2
    assert "bundled scenes are" in capsys.readouterr().err
    assert not (tmp_path / "o.npz").exists()


def test_scenes_lists_every_bundled_scene(capsys):
    assert main(["scenes"]) == 0
    out = capsys.readouterr().out
    for name in ("arm2", "cartpole", "pusher", "tabletop", "quadruped"):
        assert name in out


def test_demo_runs_and_writes_a_picture(tmp_path):
    res = _run(
        "demo",
        "--batch",
        "8",
        "--steps",
        "40",
        "--width",
        "64",
        "--height",
        "48",
        "--out",
        str(tmp_path / "demo"),
    )
    assert res.returncode == 0, res.stderr
    assert "physics steps/s" in res.stdout and "real-time factor" in res.stdout
    png = (tmp_path / "demo" / "rollout.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    data = hs.load_trajectory(tmp_path / "demo" / "rollout.npz")
    assert data["qpos"].shape[:2] == (8, 41)
    assert "rendering" in res.stderr  # progress lines go to stderr
    # The residual part: reality, fit, physics-only against hybrid error, and the plot.
    assert "physics qpos RMSE" in res.stdout and "gap closure" in res.stdout
    assert (tmp_path / "demo" / "residual_error.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "demo" / "residual" / "meta.json").is_file()


def test_demo_no_render_writes_no_picture(tmp_path, capsys):
    # Where warp-lang is missing (benchmarks/gpu_check.sh on a machine it cannot be carried to).
    args = ["demo", "--backend", "c", "--batch", "2", "--steps", "5", "--no-residual"]
    assert main([*args, "--no-render", "--out", str(tmp_path / "demo")]) == 0
    assert "no picture: --no-render" in capsys.readouterr().out
    assert (tmp_path / "demo" / "rollout.npz").is_file()
    assert not (tmp_path / "demo" / "rollout.png").exists()
