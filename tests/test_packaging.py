"""Packaging: the extras split a light install from the test one, and a plain,
non-editable install used from another folder finds assets and kernels."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]
# What only the tests (and the RL examples) need: never in the light install of `make demo`.
TEST_ONLY = ("torch", "brax", "playground", "stable-baselines3", "pytest", "gymnasium", "ruff")
LINUX_X86 = {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64"}


def _name(req: Requirement) -> str:
    return req.name.lower().replace("_", "-")


def _requirements(extra: str | None, environment: dict[str, str]) -> list[Requirement]:
    """The requirements of the core (``extra=None``) or of one extra, with the extras it
    names of hybridsim itself expanded, keeping those whose marker holds in
    ``environment``."""
    reqs = [Requirement(r) for r in (PROJECT["dependencies"] if extra is None else EXTRAS[extra])]
    out = []
    for req in reqs:
        if req.marker is not None and not req.marker.evaluate(environment):
            continue
        if _name(req) == "hybridsim":
            out += [r for e in sorted(req.extras) for r in _requirements(e, environment)]
        else:
            out.append(req)
    return out


def test_core_dependencies_are_light():
    names = {_name(r) for r in _requirements(None, LINUX_X86)}
    assert not names & set(TEST_ONLY), names & set(TEST_ONLY)
    # What the demo itself imports: physics, rendering (warp), fitting (flax), the plot.
    assert {"mujoco", "mujoco-mjx", "warp-lang", "jax", "flax", "matplotlib"} <= names


def test_test_extra_has_what_the_tests_need():
    names = {_name(r) for r in _requirements("test", LINUX_X86)}
    assert set(TEST_ONLY) <= names, set(TEST_ONLY) - names


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_no_extra_pulls_a_cuda_torch_on_linux(extra):
    """PyPI's Linux torch is a CUDA build (several GB of nvidia-* wheels): on Linux, torch
    must be pinned to the ``+cpu`` build, and only the test extra may name it."""
    torch = [r for r in _requirements(extra, LINUX_X86) if _name(r) == "torch"]
    if extra != "test":
        assert not torch
        return
    (req,) = torch
    (spec,) = req.specifier
    assert spec.operator == "==" and spec.version.endswith("+cpu"), str(req)


def test_gpu_extras_are_jax_cuda_plugins_only():
    for extra, cuda in (("gpu", "cuda13"), ("gpu-cuda12", "cuda12")):
        (req,) = _requirements(extra, LINUX_X86)
        assert _name(req) == "jax" and req.extras == {cuda}, str(req)


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
