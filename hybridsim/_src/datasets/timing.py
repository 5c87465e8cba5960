"""Choosing the physics timestep for data recorded at a given rate.

A log's frame period is rarely a whole multiple of the scene's timestep (30 Hz against
4 ms). The simulator then keeps the frame period as its control period and steps the
physics ``substeps`` times per frame with ``timestep = period / substeps``: ``substeps`` is
the whole number of the scene's timesteps closest to the period (at least 1), so the
timestep changes by at most a factor ``1 +- 1 / (2 substeps)`` (for a period shorter than
the scene's timestep, ``substeps = 1`` and the timestep is the period).
"""

from __future__ import annotations

import dataclasses
import math

from hybridsim._src.errors import DataFileError


@dataclasses.dataclass(frozen=True)
class Timing:
    """How the simulator steps data recorded every ``control_dt`` seconds."""

    control_dt: float
    """Seconds between two recorded frames (the control period)."""
    timestep: float
    """Physics timestep in seconds; ``control_dt == substeps * timestep``."""
    substeps: int
    """Physics steps per control step (>= 1)."""


def choose_timing(control_dt: float, scene_timestep: float, rel_tol: float = 1e-6) -> Timing:
    """The substep count and timestep for a frame period ``control_dt`` (s) on a scene
    whose own timestep is ``scene_timestep`` (s). A period within ``rel_tol`` of a whole
    multiple keeps the scene's timestep exactly."""
    if not (math.isfinite(control_dt) and control_dt > 0):
        raise DataFileError(f"frame period must be a positive number of seconds: {control_dt!r}")
    if not (math.isfinite(scene_timestep) and scene_timestep > 0):
        raise DataFileError(f"scene timestep must be positive, got {scene_timestep!r}")
    k = control_dt / scene_timestep
    substeps = max(1, round(k))
    if abs(k - substeps) <= rel_tol * max(k, 1.0):
        return Timing(float(control_dt), float(scene_timestep), int(substeps))
    return Timing(float(control_dt), float(control_dt) / substeps, int(substeps))
