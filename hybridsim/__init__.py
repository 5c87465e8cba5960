"""hybridsim: batched physics-plus-neural hybrid simulation for robot learning.

The physics core::

    import hybridsim as hs
    model = hs.make_model("arm2", batch_size=64, backend="auto", substeps=4)
    state = hs.init(model)
    traj = hs.rollout(model, state, ctrl)   # ctrl (B, T, nu)
    traj = hs.rollout(model, state, policy=lambda obs: -obs.qpos, steps=100)  # closed loop
"""

from hybridsim._src.backends.base import RolloutOutput
from hybridsim._src.control_step import Learned, LearnedPart
from hybridsim._src.errors import (
    BackendError,
    DataFileError,
    FitError,
    HybridsimError,
    ReconstructionError,
    SceneError,
    ShapeError,
)
from hybridsim._src.io import atomic_path, load_trajectory, save_trajectory
from hybridsim._src.jax_cache import enable_compilation_cache
from hybridsim._src.loader import Scene, bundled_scenes, load_scene
from hybridsim._src.params import PER_WORLD_FIELDS, WorldParams, world_params
from hybridsim._src.sim import (
    BACKENDS,
    SimModel,
    init,
    make_model,
    reset_worlds,
    resolve_backend,
    rollout,
    run,
    step,
)
from hybridsim._src.types import Observation, SimState, Status, Trajectory

__version__ = "0.1.0"

__all__ = [
    "BACKENDS",
    "PER_WORLD_FIELDS",
    "BackendError",
    "DataFileError",
    "FitError",
    "HybridsimError",
    "Learned",
    "LearnedPart",
    "Observation",
    "ReconstructionError",
    "RolloutOutput",
    "Scene",
    "SceneError",
    "ShapeError",
    "SimModel",
    "SimState",
    "Status",
    "Trajectory",
    "WorldParams",
    "atomic_path",
    "bundled_scenes",
    "enable_compilation_cache",
    "init",
    "load_scene",
    "load_trajectory",
    "make_model",
    "reset_worlds",
    "resolve_backend",
    "rollout",
    "run",
    "save_trajectory",
    "step",
    "world_params",
]
