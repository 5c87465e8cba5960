"""An NVIDIA GPU that JAX cannot use is named in one warning line, never skipped silently.

No GPU here: the detection is monkeypatched (and ``nvidia-smi`` faked by small scripts).
"""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from hybridsim._src import gpu
from hybridsim._src.cli.main import main


def _fake_nvidia_smi(tmp_path, body: str):
    script = tmp_path / "nvidia-smi"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_nvidia_smi_listing_a_gpu_counts_as_a_gpu(tmp_path, monkeypatch):
    exe = _fake_nvidia_smi(tmp_path, 'echo "GPU 0: NVIDIA H200 (UUID: GPU-0123)"')
    monkeypatch.setattr(gpu.shutil, "which", lambda name: exe)
    assert gpu.nvidia_gpu_present()


@pytest.mark.parametrize(
    "body", ["echo 'NVIDIA-SMI has failed: no driver' >&2; exit 9", "echo 'No devices found.'"]
)
def test_nvidia_smi_failing_or_listing_nothing_is_no_gpu(tmp_path, monkeypatch, body):
    exe = _fake_nvidia_smi(tmp_path, body)
    monkeypatch.setattr(gpu.shutil, "which", lambda name: exe)
    assert not gpu.nvidia_gpu_present()


def test_no_nvidia_smi_is_no_gpu(monkeypatch):
    monkeypatch.setattr(gpu.shutil, "which", lambda name: None)
    assert not gpu.nvidia_gpu_present()


def _machine(monkeypatch, *, nvidia: bool, jax_gpu: bool, jax_platforms: str | None = None):
    monkeypatch.setattr(gpu, "nvidia_gpu_present", lambda: nvidia)
    monkeypatch.setattr(gpu, "jax_sees_gpu", lambda: jax_gpu)
    if jax_platforms is None:
        monkeypatch.delenv("JAX_PLATFORMS", raising=False)
    else:
        monkeypatch.setenv("JAX_PLATFORMS", jax_platforms)


def test_gpu_without_cuda_plugin_warns_with_the_fix(monkeypatch, capsys):
    _machine(monkeypatch, nvidia=True, jax_gpu=False)
    assert gpu.warn_if_gpu_unused()
    err = capsys.readouterr().err
    assert err.count("\n") == 1  # one line
    assert "NVIDIA GPU" in err and "make demo" in err and "hybridsim[gpu]" in err


@pytest.mark.parametrize(
    ("nvidia", "jax_gpu", "jax_platforms"),
    [
        (True, True, None),  # the plugin is there: JAX uses the GPU
        (False, False, None),  # a CPU machine
        (True, False, "cpu"),  # the CPU asked for on purpose
        (True, True, "cuda"),
    ],
)
def test_no_warning_otherwise(monkeypatch, capsys, nvidia, jax_gpu, jax_platforms):
    _machine(monkeypatch, nvidia=nvidia, jax_gpu=jax_gpu, jax_platforms=jax_platforms)
    assert gpu.missing_cuda_plugin_warning() is None
    assert not gpu.warn_if_gpu_unused()
    assert capsys.readouterr().err == ""


def test_jax_platforms_naming_cuda_still_warns(monkeypatch):
    _machine(monkeypatch, nvidia=True, jax_gpu=False, jax_platforms="cuda,cpu")
    assert gpu.missing_cuda_plugin_warning() is not None


@pytest.mark.parametrize(("backend", "warned"), [("auto", True), ("c", False)])
def test_cli_rollout_warns_unless_backend_c(tmp_path, monkeypatch, capsys, backend, warned):
    _machine(monkeypatch, nvidia=True, jax_gpu=False)
    np.save(tmp_path / "u.npy", np.zeros((2, 5, 2)))
    args = ["rollout", "--scene", "arm2", "--ctrl", str(tmp_path / "u.npy")]
    rc = main([*args, "--backend", backend, "--out", str(tmp_path / "t.npz"), "--quiet"])
    assert rc == 0
    assert ("JAX has no CUDA backend" in capsys.readouterr().err) is warned
    assert os.path.isfile(tmp_path / "t.npz")
