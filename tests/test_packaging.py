"""A plain, non-editable install used from another folder finds assets and kernels."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_assets_and_kernels(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("hybridsim-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for scene in ("arm2", "cartpole", "pusher", "tabletop", "quadruped"):
        assert f"hybridsim/assets/{scene}.xml" in names
    assert "hybridsim/kernels/__init__.py" in names
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)
    # Every Python package of the source tree is in the wheel.
    for init in (ROOT / "hybridsim").rglob("__init__.py"):
        assert init.relative_to(ROOT).as_posix() in names

    # Install the wheel (not editable) into its own folder and use it from elsewhere.
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    code = (
        "import hybridsim, hybridsim.kernels, hybridsim.residual, hybridsim.builder, pathlib;"
        "import hybridsim.synthetic_reality;"
        "import hybridsim._src.cli.main;"
        f"assert pathlib.Path(hybridsim.__file__).is_relative_to(pathlib.Path(r'{site}'));"
        "print(hybridsim.bundled_scenes()); print(hybridsim.load_scene('tabletop').nq)"
    )
    env = dict(os.environ, PYTHONPATH=str(site), JAX_PLATFORMS="cpu")
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "quadruped" in out.stdout
