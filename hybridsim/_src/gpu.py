"""Is there an NVIDIA GPU, and does JAX use it? One warning line when it does not.

``pip install hybridsim`` gives JAX's CPU build. On a machine with an NVIDIA GPU, JAX
then runs on the CPU and backend ``auto`` picks ``c`` instead of ``warp``: the run works,
only slower. ``missing_cuda_plugin_warning`` names that case and its fix, so it is never
silent. ``make demo`` installs the plugin itself (the ``gpu`` extra) when it finds a GPU.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

FIX = (
    "run `make demo`, which installs it, or `pip install 'hybridsim[gpu]'` "
    "('hybridsim[gpu-cuda12]' for a driver older than CUDA 13)"
)


def nvidia_gpu_present() -> bool:
    """True when ``nvidia-smi -L`` runs and lists at least one GPU."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return False
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def jax_sees_gpu() -> bool:
    """True when one of JAX's devices is a CUDA GPU (this starts JAX's backends)."""
    import jax

    try:
        return any(d.platform == "gpu" for d in jax.devices())
    except RuntimeError:
        return False


def jax_platforms_exclude_gpu() -> bool:
    """True when ``$JAX_PLATFORMS`` is set and names neither ``cuda`` nor ``gpu``: the
    user asked for the CPU on purpose."""
    chosen = os.environ.get("JAX_PLATFORMS", "").strip().lower()
    return bool(chosen) and not any(p in chosen for p in ("cuda", "gpu"))


def missing_cuda_plugin_warning() -> str | None:
    """The warning line when an NVIDIA GPU is present but JAX runs without it, else None.

    No warning when ``$JAX_PLATFORMS`` asks for the CPU on purpose.
    """
    if jax_platforms_exclude_gpu() or not nvidia_gpu_present() or jax_sees_gpu():
        return None
    return (
        "hybridsim: warning: nvidia-smi shows an NVIDIA GPU but JAX has no CUDA backend "
        "(JAX's CUDA plugin is not installed), so JAX runs on the CPU and backend 'auto' "
        f"picks 'c', not 'warp'; to use the GPU, {FIX}"
    )


def warn_if_gpu_unused() -> bool:
    """Prints ``missing_cuda_plugin_warning`` to stderr when it applies; True if printed."""
    message = missing_cuda_plugin_warning()
    if message is not None:
        print(message, file=sys.stderr, flush=True)
    return message is not None
