"""Shared fixtures: small scenes, JAX on CPU with the persistent compile cache."""

from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import hybridsim as hs  # noqa: E402

hs.enable_compilation_cache()

SMOOTH_SCENES = ("arm2", "cartpole")  # no contacts: MJX and MuJoCo C agree closely
CONTACT_SCENES = ("pusher", "tabletop", "quadruped")


def random_ctrl(scene: hs.Scene, batch: int, steps: int, seed: int = 0) -> np.ndarray:
    """Uniform controls inside the control range, (batch, steps, nu) float64."""
    rng = np.random.default_rng(seed)
    low, high = scene.ctrl_range()
    low = np.where(np.isfinite(low), low, -1.0)
    high = np.where(np.isfinite(high), high, 1.0)
    return rng.uniform(low, high, (batch, steps, scene.nu))


@pytest.fixture(scope="session")
def arm2_mjx() -> hs.SimModel:
    """arm2 on MJX with 4 worlds, 2 substeps: shared so its jit compiles once."""
    return hs.make_model("arm2", 4, backend="mjx", substeps=2)
