"""The one interface every backend implements, and the typed values that cross it.

A backend is a module with the attributes of ``Backend``: ``sim`` resolves the name and
calls ``prepare`` once in ``make_model`` and ``rollout`` for every rollout. Nothing else in
hybridsim imports a backend module, except the environments, which run the JAX backends'
single-world control step (``backends.mjx_world``) inside their own jitted step.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from hybridsim._src.control_step import Learned
from hybridsim._src.dataclasses import pytree_dataclass, static_field
from hybridsim._src.errors import ShapeError
from hybridsim._src.loader import Scene
from hybridsim._src.types import Policy, SimState, Trajectory


@pytree_dataclass
class SimModel:
    """Everything a backend needs to step B worlds of one scene (made by ``make_model``)."""

    device_model: Any
    """``mjx.Model`` for ``mjx``/``warp``; ``None`` for ``c``."""
    params: dict[str, Any]
    """Per-world field overrides, name -> (B, ...) array (empty when all worlds match)."""
    scene: Scene = static_field()
    backend: str = static_field()
    """The resolved backend: ``"c"``, ``"mjx"`` or ``"warp"``."""
    substeps: int = static_field()
    """Physics steps per control step."""
    batch_size: int = static_field()
    """B, the number of worlds."""
    max_qvel: float = static_field()
    """A world whose |qvel| exceeds this (rad/s or m/s) is flagged ``DIVERGED``."""
    sharding: Any = static_field(default=None)
    """``jax.sharding.NamedSharding`` splitting the batch over devices, or ``None``."""
    c_runtime: Any = static_field(default=None)
    """``CRuntime`` (per-world MjModels, MjData) for ``c``; ``None`` otherwise."""
    differentiable: bool = static_field(default=False)
    """Built for gradients: ``mjx`` with the constraint solver at one fixed iteration."""

    @property
    def control_dt(self) -> float:
        """Seconds per control step: ``substeps * timestep``."""
        return self.substeps * self.scene.timestep


@pytree_dataclass
class ModelConfig:
    """How ``make_model`` was asked to build a model (checked there, never changed)."""

    backend: str = static_field()
    """The resolved backend name."""
    substeps: int = static_field()
    differentiable: bool = static_field()
    max_qvel: float = static_field()
    shard: bool | None = static_field()


@pytree_dataclass
class Drive:
    """What drives a rollout: a control array (open loop) or a policy (closed loop)."""

    ctrl: Any
    """(B, T, nu) float controls, or ``None`` when ``policy`` is given."""
    policy: Policy = static_field(default=None)
    """``policy(Observation) -> ctrl (B, nu)``, or ``None``."""
    steps: int = static_field(default=0)
    """T, the number of control steps."""


@pytree_dataclass
class RolloutOutput:
    """A backend's answer: the trajectory and the learned part's memory at its end."""

    traj: Trajectory
    learned: Learned | None
    """The ``Learned`` passed in, with ``carry`` as it stands after the last step."""


def policy_controls(batch_size: int, nu: int, policy: Policy, obs: Any) -> Any:
    """``policy(obs)``, which must be ``(B, nu)`` (checked when traced, too)."""
    u = policy(obs)
    want = (batch_size, nu)
    if tuple(getattr(u, "shape", ())) != want:
        raise ShapeError(
            f"policy returned controls of shape {tuple(getattr(u, 'shape', ()))}; expected "
            f"(B, nu) = {want}"
        )
    return u


@runtime_checkable
class Backend(Protocol):
    """The attributes of a backend module (``backends/c.py``, ``jax.py``, ``warp.py``)."""

    NAME: str
    """``"c"``, ``"mjx"`` or ``"warp"``."""
    DIFFERENTIABLE: bool
    """Whether ``jax.grad`` may flow through ``rollout``."""
    TRACEABLE: bool
    """Whether ``rollout`` may run under ``jax.jit``/``jax.grad``/``jax.vmap``."""

    def prepare(self, scene: Scene, batch_size: int, params: Any, config: ModelConfig) -> SimModel:
        """The model of ``batch_size`` worlds of ``scene`` with per-world ``params``
        (``WorldParams`` or ``None``)."""

    def rollout(
        self, model: SimModel, state: SimState, drive: Drive, learned: Learned | None
    ) -> RolloutOutput:
        """Runs ``drive`` from ``state``; every control step is ``control_step``."""
