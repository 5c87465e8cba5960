"""The errors hybridsim raises for user mistakes. Each names the thing and what was expected."""

from __future__ import annotations


class HybridsimError(Exception):
    """Base class of every error hybridsim raises on purpose."""


class SceneError(HybridsimError, ValueError):
    """A scene could not be found, parsed or compiled."""


class ShapeError(HybridsimError, ValueError):
    """An array has the wrong shape or dtype."""


class BackendError(HybridsimError, RuntimeError):
    """A backend cannot do what was asked (e.g. gradients on ``c``) or is unavailable."""


class DataFileError(HybridsimError, ValueError):
    """A data file (controls, trajectories) is missing, corrupt or malformed."""


class FitError(HybridsimError, RuntimeError):
    """Fitting could not produce a usable model (e.g. the gradients were not finite)."""


class EnvError(HybridsimError, ValueError):
    """An environment name or configuration is unknown or invalid."""


class ReconstructionError(HybridsimError, ValueError):
    """Captured data (depth images, point clouds) gave no geometry, e.g. no valid pixel."""


class PolicyError(HybridsimError, ValueError):
    """A policy, score or reference could not be loaded or broke its contract (a policy
    spec that does not import, a score of the wrong shape, a reference naming unknown
    policies)."""
