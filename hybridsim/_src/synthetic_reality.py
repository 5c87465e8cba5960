"""A synthetic reality to test residual learning on, run on MuJoCo C.

A synthetic reality is a scene plus effects the nominal model does not know (a synthetic
sim-to-real gap).

The nominal model is the scene as given. ``Effects`` switches on what the nominal model does
not know (latency, deadband, backlash, torque-speed saturation, joint Coulomb friction, drag,
scaled damping and masses, a position-dependent contact friction field, sensor noise).
Open loop, ``record`` drives the scene with a behaviour policy (``simulate`` with any
command array) and returns the trajectories in the interchange format, so a residual
pipeline can be checked on a gap whose cause is known. Closed loop, ``run_policy`` lets a
policy ``policy(obs) -> ctrl (N, nu)`` command it step by step, as on a robot.

Pipeline of one control step ``t`` (both paths run the same two functions,
``_actuator_step`` and ``_Episode.control_step``)::

    (closed loop: policy(observed qpos, qvel, time, sensordata) = commanded ctrl[t])
    commanded ctrl[t] -> latency -> deadband -> backlash -> clip to ctrlrange = applied[t]
    friction field: geom friction from the current geom positions
    per physics substep: joint Coulomb friction + drag (qfrc_applied),
                         torque-speed force limits (actuator_forcerange), mj_step
    record qpos, qvel as observed (plus sensor noise; the simulated state stays clean)

Units: positions in m / rad, velocities in m/s / rad/s, forces in N / N m, time in s.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import mujoco
import numpy as np

from hybridsim._src.errors import HybridsimError
from hybridsim._src.loader import Scene, load_scene
from hybridsim._src.types import Observation, Policy


class EffectsError(HybridsimError, ValueError):
    """An effects spec or config is malformed, or an effect does not fit the scene."""


class RealityDivergedError(HybridsimError, RuntimeError):
    """A recorded episode produced non-finite values or MuJoCo flagged a bad state."""


class PolicyOutputError(HybridsimError, ValueError):
    """A policy returned commands that are not a finite ``(N, nu)`` array."""


# --------------------------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Effects:
    """Unmodeled effects of a reality. Every effect is off by default.

    Ctrl-unit fractions are relative to half the actuator's control range (1 ctrl unit for
    actuators without a range).
    """

    latency_steps: int = 0
    """Control steps (int >= 0) between a command and the actuators receiving it. Until the
    first command arrives the actuators hold the initial command (the keyframe ctrl)."""
    deadband: float = 0.0
    """Fraction (>= 0) of half the ctrl range: a command with ``|ctrl|`` below it becomes 0."""
    backlash: float = 0.0
    """Play, as a fraction (>= 0) of half the ctrl range: after a reversal the command must
    travel this far before the applied command moves; while moving the applied command trails
    the commanded one by half of it."""
    torque_speed: float = 0.0
    """No-load speed ``vmax`` (rad/s for hinges, m/s for slides; 0 = off): an actuator's force
    limit shrinks to ``max(0, 1 - |qvel| / vmax)`` of its nominal one, ``qvel`` being the
    velocity of its joint. Needs joint transmissions on hinge/slide joints and a nominal limit
    (a ``forcerange``, or a motor-like ``gain * ctrl`` force with a ctrl range)."""
    coulomb_friction: float = 0.0
    """Joint Coulomb friction ``f`` (N m on hinges, N on slides, >= 0), applied on every
    hinge and slide dof as ``-f * tanh(qvel / eps)``."""
    coulomb_eps: float = 0.05
    """Smoothing velocity ``eps`` of the Coulomb friction (rad/s or m/s, > 0); raised per dof
    to ``f * timestep / M`` (``M`` the dof's effective mass at ``qpos0``) so one physics step
    of friction cannot reverse the velocity."""
    damping_scale: float = 1.0
    """Multiplies every ``dof_damping`` (>= 0)."""
    mass_scale: float = 1.0
    """Multiplies ``body_mass`` and ``body_inertia`` of every body but the world (> 0)."""
    drag: float = 0.0
    """Quadratic drag coefficient ``c`` (>= 0): force ``-c |v| v`` on the linear velocity of
    every free body (N s^2/m^2); in scenes without a free body ``-c |qvel| qvel`` on every
    hinge and slide dof instead (N m s^2/rad^2 or N s^2/m^2)."""
    friction_field: float = 0.0
    """Amplitude ``a`` (``|a| < 1``) of a contact friction field: the sliding friction of
    contacts of a moving geom is its nominal one times ``1 + a sin(k x) cos(k y)`` at the
    geom's current ``(x, y)`` (m), updated every control step."""
    friction_wavenumber: float = 20.0
    """Spatial frequency ``k`` of the friction field (rad/m, > 0)."""
    sensor_noise: float = 0.0
    """Std (>= 0, in qpos/qvel units) of Gaussian noise added to the RECORDED qpos and qvel;
    the simulated state stays clean. Noisy quaternions are renormalized."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "latency_steps":
                ok = isinstance(value, int | np.integer) and not isinstance(value, bool)
                if not ok or value < 0:
                    raise EffectsError(f"latency_steps must be an int >= 0, got {value!r}")
                continue
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise EffectsError(f"{f.name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise EffectsError(f"{f.name} must be finite, got {value!r}")
        positive = ("coulomb_eps", "mass_scale", "friction_wavenumber")
        for name in positive:
            if getattr(self, name) <= 0:
                raise EffectsError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for f in dataclasses.fields(self):
            if f.name not in positive and f.name != "friction_field" and getattr(self, f.name) < 0:
                raise EffectsError(f"{f.name} must be >= 0, got {getattr(self, f.name)!r}")
        if not abs(self.friction_field) < 1:
            raise EffectsError(
                f"friction_field must be in (-1, 1) so friction stays positive, "
                f"got {self.friction_field!r}"
            )

    def active(self) -> dict[str, float]:
        """The fields that differ from the defaults, ``{name: value}`` (empty = no effects)."""
        default = Effects()
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }


@dataclasses.dataclass(frozen=True)
class Behaviour:
    """The behaviour policy that commands the reality. Commands are clipped to ctrlrange.

    Both kinds move around the keyframe ctrl (clipped into the range) by up to about
    ``scale`` of half the ctrl range.
    """

    kind: str = "ou"
    """``"ou"``: Ornstein-Uhlenbeck noise (stationary std ``scale`` of half the range,
    starting at the keyframe ctrl); ``"sine"``: one sinusoid per actuator and episode with
    amplitude uniform in ``[0, scale]`` of half the range, frequency uniform in
    ``sine_freq`` and a uniform phase."""
    scale: float = 0.5
    """Fraction (> 0) of half the ctrl range."""
    ou_timescale: float = 0.3
    """Correlation time of the OU noise in seconds (> 0)."""
    sine_freq: tuple[float, float] = (0.2, 2.0)
    """``(low, high)`` frequency range of the sinusoids in Hz (0 < low <= high)."""

    def __post_init__(self) -> None:
        if self.kind not in ("ou", "sine"):
            raise EffectsError(f"behaviour kind must be 'ou' or 'sine', got {self.kind!r}")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise EffectsError(f"behaviour scale must be > 0, got {self.scale!r}")
        if not (math.isfinite(self.ou_timescale) and self.ou_timescale > 0):
            raise EffectsError(f"behaviour ou_timescale must be > 0 s, got {self.ou_timescale!r}")
        lo, hi = self.sine_freq
        if not (0 < lo <= hi < math.inf):
            raise EffectsError(
                f"behaviour sine_freq must be (low, high) with 0 < low <= high, "
                f"got {self.sine_freq!r}"
            )


@dataclasses.dataclass(frozen=True, eq=False)
class Recording:
    """Trajectories of N episodes over T control steps, in the interchange format.

    Save with ``hybridsim.save_trajectory(path, recording)``.
    """

    qpos: np.ndarray
    """(N, T+1, nq) float64: recorded positions (with sensor noise if switched on)."""
    qvel: np.ndarray
    """(N, T+1, nv) float64: recorded velocities (likewise)."""
    ctrl: np.ndarray
    """(N, T, nu) float64: the controls the policy COMMANDED."""
    applied_ctrl: np.ndarray
    """(N, T, nu) float64: the controls that reached the actuators (after latency, deadband,
    backlash and clipping; torque-speed limits act on the force, not here). Ground truth
    for diagnosis only; a residual model must not see it."""
    control_dt: float
    """Seconds per control step: ``substeps * timestep``."""
    metadata: Mapping[str, Any]
    """JSON-ready description: scene, effects, seed, substeps, behaviour, initial_noise."""
    episode_len: np.ndarray | None = None
    """(N,) int: control steps of each episode (None: all T). Past its length an episode
    is padded with its last state and control."""
    timestep: float | None = None
    """Physics timestep (s) when recorded at a ``rate`` (None: the scene's)."""
    substeps: int | None = None
    """Physics steps per control step when recorded at a ``rate``."""
    sensordata: np.ndarray | None = None
    """(N, T, nsensordata) float64: sensor values after each control step, as MuJoCo left
    them (closed-loop ``run_policy`` only; None from ``simulate``/``record``)."""
    status: np.ndarray | None = None
    """(N,) int32 health flags as in ``Trajectory.status``: zeros from ``run_policy`` (a
    diverging episode raises instead); None from ``simulate``/``record``."""


# --------------------------------------------------------------------------------------------
# Effects specs
# --------------------------------------------------------------------------------------------

_SPEC_KEYS = {
    "latency": "latency_steps",
    "deadband": "deadband",
    "backlash": "backlash",
    "torque_speed": "torque_speed",
    "coulomb": "coulomb_friction",
    "coulomb_eps": "coulomb_eps",
    "damping_scale": "damping_scale",
    "mass_scale": "mass_scale",
    "drag": "drag",
    "friction_field": "friction_field",
    "friction_k": "friction_wavenumber",
    "noise": "sensor_noise",
}

PRESETS: Mapping[str, Effects] = {
    "none": Effects(),
    "default": Effects(
        latency_steps=2,
        backlash=0.05,
        coulomb_friction=0.1,
        drag=0.01,
        friction_field=0.3,
        mass_scale=1.2,
    ),
}
"""Named effect sets for ``parse_effects``. ``default`` mixes a delay, play, dry friction,
drag, a friction field and heavier bodies: no single nominal parameter can express it."""


def parse_effects(spec: str) -> Effects:
    """Parses ``"latency=2,backlash=0.05,coulomb=0.3,friction_field=0.5,noise=0.001"``.

    Items are comma separated; an item is a preset name (``default``, ``none``) or
    ``key=value``. Later items override earlier ones, e.g. ``"default,latency=4"``. Keys are
    the short names below or the ``Effects`` field names; an empty spec is ``Effects()``.

    Raises:
      EffectsError: an unknown key or preset (the message lists the valid ones), a value
        that is not a number (``latency`` takes an int), a key given twice, or an
        out-of-range value.
    """
    if not isinstance(spec, str):
        raise EffectsError(f"an effects spec is a string, got {type(spec).__name__}")
    valid = (
        f"valid keys: {', '.join(_SPEC_KEYS)} (or the Effects field names); "
        f"presets: {', '.join(PRESETS)}"
    )
    fields_by_name = {f.name: f for f in dataclasses.fields(Effects)}
    values: dict[str, Any] = {}
    seen: set[str] = set()
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        if "=" not in item:
            if item not in PRESETS:
                raise EffectsError(f"unknown effects preset {item!r}; {valid}")
            values.update(dataclasses.asdict(PRESETS[item]))
            continue
        key, _, text = (s.strip() for s in item.partition("="))
        field = _SPEC_KEYS.get(key, key if key in fields_by_name else None)
        if field is None:
            raise EffectsError(f"unknown effect {key!r} in {spec!r}; {valid}")
        if field in seen:
            raise EffectsError(f"effect {key!r} is given twice in {spec!r}")
        seen.add(field)
        try:
            value: Any = int(text) if field == "latency_steps" else float(text)
        except ValueError:
            kind = "an int" if field == "latency_steps" else "a number"
            raise EffectsError(f"effect {key!r}: expected {kind}, got {text!r}") from None
        values[field] = value
    try:
        return Effects(**values)
    except EffectsError as e:
        raise EffectsError(f"effects {spec!r}: {e}") from None


# --------------------------------------------------------------------------------------------
# Behaviour and control-level effects (pure functions of the commanded controls)
# --------------------------------------------------------------------------------------------


def _rng(seed: int, stream: int) -> np.random.Generator:
    """Independent streams of one seed: 0 behaviour, 1 initial noise, 2 sensor noise."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream,)))


def _ctrl_frame(scene: Scene) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(low, high, centre, half_span)``, each (nu,): range, keyframe ctrl inside it, span/2."""
    low, high = scene.ctrl_range()
    centre = np.clip(scene.initial_ctrl(), low, high)
    half = np.where(np.isfinite(high - low), (high - low) / 2, 1.0)
    return low, high, centre, half


def _check_counts(**counts: int) -> None:
    for name, n in counts.items():
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise EffectsError(f"{name} must be a positive int, got {n!r}")


def _check_effects(effects: Effects) -> None:
    if not isinstance(effects, Effects):
        raise EffectsError(
            f"effects must be an Effects, got {type(effects).__name__} "
            "(parse_effects turns a spec string into one)"
        )


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise EffectsError(f"seed must be an int >= 0, got {seed!r}")


def behaviour_controls(
    scene: Scene | str,
    behaviour: Behaviour | None,
    episodes: int,
    steps: int,
    seed: int,
    substeps: int = 1,
) -> np.ndarray:
    """Commanded controls ``(episodes, steps, nu)`` of the behaviour policy, inside ctrlrange.

    Deterministic for ``seed``; ``record`` with the same arguments commands exactly these.
    ``substeps`` sets the control period (``substeps * timestep`` seconds) that the OU
    timescale and the sine frequencies refer to.
    """
    scene = load_scene(scene)
    behaviour = Behaviour() if behaviour is None else behaviour
    _check_counts(episodes=episodes, steps=steps, substeps=substeps)
    _check_seed(seed)
    low, high, centre, half = _ctrl_frame(scene)
    rng = _rng(seed, 0)
    dt = substeps * scene.timestep
    shape = (episodes, scene.nu)
    if behaviour.kind == "ou":
        a = math.exp(-dt / behaviour.ou_timescale)
        b = math.sqrt(1.0 - a * a)
        x = np.empty((episodes, steps, scene.nu))
        x[:, 0] = 0.0
        for t in range(1, steps):
            x[:, t] = a * x[:, t - 1] + b * rng.standard_normal(shape)
    else:
        amp = rng.uniform(0.0, 1.0, shape)
        freq = rng.uniform(*behaviour.sine_freq, shape)
        phase = rng.uniform(0.0, 2 * math.pi, shape)
        tt = np.arange(steps)[None, :, None] * dt
        x = amp[:, None] * np.sin(2 * math.pi * freq[:, None] * tt + phase[:, None])
    return np.clip(centre + behaviour.scale * half * x, low, high)


@dataclasses.dataclass(frozen=True, eq=False)
class _Actuators:
    """The control-level effects of a scene and ``Effects``: constants of ``actuator_step``."""

    low: np.ndarray
    """(nu,) lower end of the ctrl range (-inf without one)."""
    high: np.ndarray
    """(nu,) upper end of the ctrl range (+inf without one)."""
    initial: np.ndarray
    """(nu,) the command the actuators hold before the first one arrives (keyframe ctrl)."""
    latency: int
    """Control steps between a command and the actuators receiving it."""
    deadband: np.ndarray
    """(nu,) ``|u|`` below this becomes 0 (ctrl units; 0 = off)."""
    gap: np.ndarray
    """(nu,) half the backlash play (ctrl units; 0 = off)."""

    @staticmethod
    def build(scene: Scene, effects: Effects) -> _Actuators:
        low, high, centre, half = _ctrl_frame(scene)
        return _Actuators(
            low=low,
            high=high,
            initial=centre,
            latency=int(effects.latency_steps),
            deadband=effects.deadband * half,
            gap=0.5 * effects.backlash * half,
        )


@dataclasses.dataclass(frozen=True, eq=False)
class _ActuatorState:
    """What the actuators remember between control steps, for N episodes."""

    in_flight: np.ndarray
    """(N, latency, nu) commands sent but not yet received, oldest first."""
    play: np.ndarray
    """(N, nu) output of the backlash play operator (ctrl units)."""


def _deadband(act: _Actuators, u: np.ndarray) -> np.ndarray:
    return np.where(np.abs(u) < act.deadband, 0.0, u) if np.any(act.deadband > 0) else u


def _actuators_start(act: _Actuators, n: int) -> _ActuatorState:
    """N episodes' actuators at rest on the initial command (the play starts there too)."""
    u0 = np.broadcast_to(act.initial, (n, act.initial.size))
    in_flight = np.broadcast_to(u0[:, None], (n, act.latency, act.initial.size)).copy()
    return _ActuatorState(in_flight=in_flight, play=_deadband(act, u0).copy())


def _actuator_step(
    act: _Actuators, state: _ActuatorState, command: np.ndarray
) -> tuple[_ActuatorState, np.ndarray]:
    """One control step: ``command (N, nu)`` -> latency -> deadband -> backlash -> clip.

    Returns the next state and the applied controls ``(N, nu)``. The one definition of the
    control-level effects: ``applied_controls`` (offline) and ``run_policy`` (online) both
    step through it.
    """
    if act.latency:
        u = state.in_flight[:, 0]
        in_flight = np.concatenate([state.in_flight[:, 1:], command[:, None]], axis=1)
    else:
        u, in_flight = command, state.in_flight
    u = _deadband(act, u)
    play = state.play
    if np.any(act.gap > 0):
        play = np.clip(play, u - act.gap, u + act.gap)
        u = play
    return _ActuatorState(in_flight=in_flight, play=play), np.clip(u, act.low, act.high)


def applied_controls(scene: Scene | str, effects: Effects, ctrl: np.ndarray) -> np.ndarray:
    """What reaches the actuators: ``ctrl (N, T, nu)`` through latency, deadband, backlash, clip.

    Latency shifts the commands ``latency_steps`` control steps later; before that the
    actuators hold the initial command (the keyframe ctrl). Deadband zeroes ``|u| <
    deadband * half_span``. Backlash is a play operator of width ``backlash * half_span``
    started at the initial command: the applied command stays put until the command is more
    than half the width away, then trails it by half the width. Steps the same
    ``_actuator_step`` as the closed loop of ``run_policy``.
    """
    scene = load_scene(scene)
    ctrl = np.asarray(ctrl, dtype=np.float64)
    if ctrl.ndim != 3 or ctrl.shape[2] != scene.nu:
        raise EffectsError(f"ctrl: expected shape (N, T, nu={scene.nu}), found {ctrl.shape}")
    act = _Actuators.build(scene, effects)
    state = _actuators_start(act, ctrl.shape[0])
    applied = np.empty_like(ctrl)
    for t in range(ctrl.shape[1]):
        state, applied[:, t] = _actuator_step(act, state, ctrl[:, t])
    return applied


# --------------------------------------------------------------------------------------------
# Parametric effects
# --------------------------------------------------------------------------------------------


def apply_to_model(mj_model: mujoco.MjModel, effects: Effects) -> mujoco.MjModel:
    """A copy of ``mj_model`` with the parametric effects (damping and mass scales).

    Masses and inertias of every body but the world are scaled; ``mj_setConst`` then
    recomputes the derived constants (subtree masses, inverse weights). The input is never
    modified; with both scales at 1 the copy is identical to it.
    """
    m = copy.deepcopy(mj_model)
    if effects.damping_scale != 1.0:
        m.dof_damping[:] *= effects.damping_scale
    if effects.mass_scale != 1.0:
        m.body_mass[1:] *= effects.mass_scale
        m.body_inertia[1:] *= effects.mass_scale
        mujoco.mj_setConst(m, mujoco.MjData(m))
    return m


# --------------------------------------------------------------------------------------------
# State-dependent effects, set up once per simulation and applied inside the physics loop
# --------------------------------------------------------------------------------------------

_HINGE_SLIDE = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))


def _hinge_slide_dofs(m: mujoco.MjModel) -> np.ndarray:
    return np.array([m.jnt_dofadr[j] for j in range(m.njnt) if m.jnt_type[j] in _HINGE_SLIDE], int)


def _linear_implicit_ok(m: mujoco.MjModel) -> bool:
    """Whether ``dof_damping`` is integrated implicitly (Euler with eulerdamp, implicit*)."""
    dis = int(m.opt.disableflags)
    if dis & int(mujoco.mjtDisableBit.mjDSBL_DAMPER):
        return False
    integ = int(m.opt.integrator)
    if integ == int(mujoco.mjtIntegrator.mjINT_EULER):
        return not dis & int(mujoco.mjtDisableBit.mjDSBL_EULERDAMP)
    return integ in (
        int(mujoco.mjtIntegrator.mjINT_IMPLICIT),
        int(mujoco.mjtIntegrator.mjINT_IMPLICITFAST),
    )


@dataclasses.dataclass(frozen=True, eq=False)
class _DofForces:
    """Coulomb friction and drag as generalized forces, made linearly implicit.

    Each physics substep the force ``F(v)`` and its stiffness ``D = -dF/dv`` (diagonal) are
    evaluated at the current velocity ``v``. Where MuJoCo integrates ``dof_damping``
    implicitly, ``D`` is added to the damping and ``F + D v`` written to ``qfrc_applied``:
    the net force at ``v`` is exactly ``F(v)``, and the integrator treats its slope
    implicitly, so stiff ``tanh`` friction does not chatter. Otherwise ``F`` alone is applied.
    """

    base_damping: np.ndarray  # (nv,) damping of the reality model
    coulomb: float
    coulomb_dofs: np.ndarray  # (k,) dof indices
    coulomb_eps: np.ndarray  # (k,) smoothing velocity per dof
    drag: float
    drag_dofs: np.ndarray  # (j,) hinge/slide dofs with per-dof drag
    drag_free: np.ndarray  # (f, 3) translational dofs of free joints
    implicit: bool

    @staticmethod
    def build(m: mujoco.MjModel, effects: Effects) -> _DofForces | None:
        if effects.coulomb_friction == 0 and effects.drag == 0:
            return None
        hs = _hinge_slide_dofs(m)
        free = [
            m.jnt_dofadr[j] + np.arange(3)
            for j in range(m.njnt)
            if m.jnt_type[j] == int(mujoco.mjtJoint.mjJNT_FREE)
        ]
        f = effects.coulomb_friction
        eps = np.maximum(effects.coulomb_eps, f * m.opt.timestep * m.dof_invweight0[hs])
        return _DofForces(
            base_damping=m.dof_damping.copy(),
            coulomb=f,
            coulomb_dofs=hs if f > 0 else hs[:0],
            coulomb_eps=eps,
            drag=effects.drag,
            drag_dofs=hs if (effects.drag > 0 and not free) else hs[:0],
            drag_free=np.array(free, int).reshape(-1, 3) if effects.drag > 0 else np.zeros((0, 3)),
            implicit=_linear_implicit_ok(m),
        )

    def apply(self, m: mujoco.MjModel, d: mujoco.MjData) -> None:
        v = d.qvel
        force = np.zeros(m.nv)
        stiff = np.zeros(m.nv)
        if self.coulomb_dofs.size:
            th = np.tanh(v[self.coulomb_dofs] / self.coulomb_eps)
            force[self.coulomb_dofs] -= self.coulomb * th
            stiff[self.coulomb_dofs] += self.coulomb / self.coulomb_eps * (1.0 - th * th)
        if self.drag_dofs.size:
            w = v[self.drag_dofs]
            force[self.drag_dofs] -= self.drag * np.abs(w) * w
            stiff[self.drag_dofs] += 2.0 * self.drag * np.abs(w)
        for dofs in self.drag_free:
            w = v[dofs]
            speed = float(np.sqrt(w @ w))
            force[dofs] -= self.drag * speed * w
            if speed > 0:  # diagonal of -dF/dv = c (|w| I + w w^T / |w|)
                stiff[dofs] += self.drag * (speed + w * w / speed)
        if self.implicit:
            m.dof_damping[:] = self.base_damping + stiff
            d.qfrc_applied[:] = force + stiff * v
        else:
            d.qfrc_applied[:] = force


@dataclasses.dataclass(frozen=True, eq=False)
class _TorqueSpeed:
    """Force limits ``nominal * max(0, 1 - |qvel_joint| / vmax)`` via ``actuator_forcerange``.

    MuJoCo clamps the actuator force (gain/bias output, before the gear) to the range, so
    this holds for motors and position servos alike.
    """

    dofs: np.ndarray  # (nu,) dof of each actuator's joint
    nominal: np.ndarray  # (nu, 2) nominal force range
    vmax: float

    @staticmethod
    def build(m: mujoco.MjModel, effects: Effects) -> _TorqueSpeed | None:
        if effects.torque_speed == 0:
            return None
        joint_trn = (int(mujoco.mjtTrn.mjTRN_JOINT), int(mujoco.mjtTrn.mjTRN_JOINTINPARENT))
        dofs = np.empty(m.nu, int)
        nominal = np.empty((m.nu, 2))
        for i in range(m.nu):
            name = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_ACTUATOR, i) or f"#{i}"
            j = int(m.actuator_trnid[i, 0])
            if m.actuator_trntype[i] not in joint_trn or m.jnt_type[j] not in _HINGE_SLIDE:
                raise EffectsError(
                    f"torque_speed: actuator {name!r} does not drive a hinge or slide joint "
                    "directly; only joint transmissions are supported"
                )
            dofs[i] = m.jnt_dofadr[j]
            motor_like = (
                m.actuator_gaintype[i] == int(mujoco.mjtGain.mjGAIN_FIXED)
                and m.actuator_biastype[i] == int(mujoco.mjtBias.mjBIAS_NONE)
                and m.actuator_ctrllimited[i]
            )
            if m.actuator_forcelimited[i]:
                nominal[i] = m.actuator_forcerange[i]
            elif motor_like:
                nominal[i] = np.sort(m.actuator_gainprm[i, 0] * m.actuator_ctrlrange[i])
            else:
                raise EffectsError(
                    f"torque_speed: actuator {name!r} has no nominal force limit; give it a "
                    "forcerange (or use a motor with a ctrlrange)"
                )
        return _TorqueSpeed(dofs=dofs, nominal=nominal, vmax=effects.torque_speed)

    def apply(self, m: mujoco.MjModel, d: mujoco.MjData) -> None:
        s = np.clip(1.0 - np.abs(d.qvel[self.dofs]) / self.vmax, 0.0, 1.0)
        m.actuator_forcerange[:] = self.nominal * s[:, None]


@dataclasses.dataclass(frozen=True, eq=False)
class _FrictionField:
    """Sliding friction ``nominal * (1 + a sin(k x) cos(k y))`` at each moving geom's ``(x, y)``.

    MuJoCo combines the two geoms' frictions of a contact with ``max``. So that a moving geom
    decides its contacts with the static world (table, ground), static collision geoms get
    zero sliding friction and each moving collision geom gets, as nominal, the larger of its
    own and that of the static geoms it can collide with: at ``a = 0`` every moving-static
    contact keeps its nominal friction. Contacts between two moving geoms take the larger of
    their two field-scaled values. Explicit ``<pair>`` contacts are scaled at the mean
    ``(x, y)`` of their moving geoms.
    """

    geoms: np.ndarray  # (g,) moving collision geoms
    nominal: np.ndarray  # (g,) their nominal sliding friction
    pairs: np.ndarray  # (p,) explicit pairs with a moving geom
    pair_geoms: np.ndarray  # (p, 2) their geoms
    pair_moving: np.ndarray  # (p, 2) bool: which of the two move
    pair_nominal: np.ndarray  # (p,)
    amplitude: float
    k: float

    @staticmethod
    def prepare(m: mujoco.MjModel, effects: Effects) -> _FrictionField | None:
        """Builds the field and zeroes static geoms' friction of ``m`` (a private copy)."""
        if effects.friction_field == 0:
            return None
        collide = (m.geom_contype != 0) | (m.geom_conaffinity != 0)
        static = (m.body_weldid[m.geom_bodyid] == 0) & collide
        moving = ~static & collide
        if len(set(m.geom_priority[collide].tolist())) > 1:
            raise EffectsError(
                "friction_field: the scene's collision geoms have different priorities; "
                "only scenes with one geom priority are supported"
            )
        geoms = np.flatnonzero(moving)
        nominal = m.geom_friction[geoms, 0].copy()
        for n, g in enumerate(geoms):
            can = static & (
                ((m.geom_contype[g] & m.geom_conaffinity) != 0)
                | ((m.geom_contype & m.geom_conaffinity[g]) != 0)
            )
            if can.any():
                nominal[n] = max(nominal[n], m.geom_friction[can, 0].max())
        m.geom_friction[static, 0] = 0.0
        pg = np.asarray(m.pair_geom1).reshape(-1), np.asarray(m.pair_geom2).reshape(-1)
        pair_geoms = np.stack(pg, axis=1) if m.npair else np.zeros((0, 2), int)
        pair_moving = (m.body_weldid[m.geom_bodyid[pair_geoms]] != 0).reshape(-1, 2)
        pairs = np.flatnonzero(pair_moving.any(axis=1))
        return _FrictionField(
            geoms=geoms,
            nominal=nominal,
            pairs=pairs,
            pair_geoms=pair_geoms[pairs],
            pair_moving=pair_moving[pairs],
            pair_nominal=m.pair_friction[pairs, 0].copy(),
            amplitude=effects.friction_field,
            k=effects.friction_wavenumber,
        )

    def scale(self, xy: np.ndarray) -> np.ndarray:
        """``(..., 2)`` positions (m) -> ``(...)`` friction multipliers."""
        return 1.0 + self.amplitude * np.sin(self.k * xy[..., 0]) * np.cos(self.k * xy[..., 1])

    def apply(self, m: mujoco.MjModel, d: mujoco.MjData) -> None:
        mujoco.mj_kinematics(m, d)  # geom_xpos of the current qpos
        m.geom_friction[self.geoms, 0] = self.nominal * self.scale(d.geom_xpos[self.geoms, :2])
        if self.pairs.size:
            xy = d.geom_xpos[self.pair_geoms, :2]  # (p, 2, 2)
            w = self.pair_moving[..., None].astype(float)
            centre = (xy * w).sum(axis=1) / w.sum(axis=1)
            m.pair_friction[self.pairs, 0] = self.pair_nominal * self.scale(centre)


_BAD_STATE_WARNINGS = (
    int(mujoco.mjtWarning.mjWARN_BADQPOS),
    int(mujoco.mjtWarning.mjWARN_BADQVEL),
    int(mujoco.mjtWarning.mjWARN_BADQACC),
)


def _quaternion_slices(m: mujoco.MjModel) -> list[slice]:
    out = []
    for j in range(m.njnt):
        adr = int(m.jnt_qposadr[j])
        if m.jnt_type[j] == int(mujoco.mjtJoint.mjJNT_FREE):
            out.append(slice(adr + 3, adr + 7))
        elif m.jnt_type[j] == int(mujoco.mjtJoint.mjJNT_BALL):
            out.append(slice(adr, adr + 4))
    return out


def _batched(x: Any, shape: tuple[int, ...], n: int, name: str, default: np.ndarray) -> np.ndarray:
    x = default if x is None else np.asarray(x, dtype=np.float64)
    if x.shape == shape:
        x = np.broadcast_to(x, (n, *shape))
    if x.shape != (n, *shape) or not np.all(np.isfinite(x)):
        raise EffectsError(f"{name}: expected finite values of shape {shape} or {(n, *shape)}")
    return x


@dataclasses.dataclass(frozen=True, eq=False)
class _Episode:
    """One episode of the reality on MuJoCo C: its model (a private copy when effects change
    the model during the episode), its data, and its state-dependent effects."""

    m: mujoco.MjModel
    d: mujoco.MjData
    field: _FrictionField | None
    dof_forces: _DofForces | None
    torque_speed: _TorqueSpeed | None

    @staticmethod
    def start(
        m_real: mujoco.MjModel,
        effects: Effects,
        qpos0: np.ndarray,
        qvel0: np.ndarray,
        act0: np.ndarray,
    ) -> _Episode:
        """An episode of ``apply_to_model(...)`` model ``m_real`` at ``qpos0 (nq,)``,
        ``qvel0 (nv,)``, ``act0 (na,)`` and time 0."""
        loop_effects = (effects.coulomb_friction, effects.drag, effects.torque_speed)
        mutates_model = any(loop_effects) or effects.friction_field != 0
        m = copy.deepcopy(m_real) if mutates_model else m_real
        field = _FrictionField.prepare(m, effects)
        dof_forces = _DofForces.build(m, effects)
        torque_speed = _TorqueSpeed.build(m, effects)
        if torque_speed is not None:
            m.actuator_forcelimited[:] = True
        d = mujoco.MjData(m)
        d.qpos[:], d.qvel[:], d.act[:] = qpos0, qvel0, act0
        return _Episode(m=m, d=d, field=field, dof_forces=dof_forces, torque_speed=torque_speed)

    def control_step(self, applied: np.ndarray, substeps: int) -> bool:
        """Holds ``applied (nu,)`` for ``substeps`` physics steps; False if the state went
        bad (non-finite, or MuJoCo flagged a bad qpos/qvel/qacc and reset it)."""
        m, d = self.m, self.d
        if self.field is not None:
            self.field.apply(m, d)
        d.ctrl[:] = applied
        for _ in range(substeps):
            if self.dof_forces is not None:
                self.dof_forces.apply(m, d)
            if self.torque_speed is not None:
                self.torque_speed.apply(m, d)
            mujoco.mj_step(m, d)
        bad = any(d.warning[w].number for w in _BAD_STATE_WARNINGS)
        return not bad and bool(np.all(np.isfinite(d.qpos)) and np.all(np.isfinite(d.qvel)))


def _diverged(scene: Scene, effects: Effects, episode: int, step: int) -> RealityDivergedError:
    return RealityDivergedError(
        f"episode {episode} diverged at control step {step} of scene {scene.name!r} "
        f"with effects {effects.active() or 'none'}"
    )


def _sensor_noise(
    effects: Effects, seed: int, qpos_shape: tuple[int, ...], qvel_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray] | None:
    """Standard normal draws for the recorded qpos and qvel (None when noise is off).

    ``simulate`` and ``run_policy`` draw the same arrays for the same seed and shapes
    ``(N, T+1, nq)``, ``(N, T+1, nv)``, so an open-loop replay sees identical noise.
    """
    if effects.sensor_noise == 0:
        return None
    rng = _rng(seed, 2)
    return rng.standard_normal(qpos_shape), rng.standard_normal(qvel_shape)


def _observed(
    scene: Scene,
    effects: Effects,
    qpos: np.ndarray,
    qvel: np.ndarray,
    noise: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The states ``(..., nq)``, ``(..., nv)`` as the sensors report them: plus
    ``sensor_noise`` times ``noise`` (same shapes), quaternions renormalized."""
    if noise is None:
        return qpos, qvel
    qpos = qpos + effects.sensor_noise * noise[0]
    qvel = qvel + effects.sensor_noise * noise[1]
    for sl in _quaternion_slices(scene.mj_model):
        qpos[..., sl] /= np.linalg.norm(qpos[..., sl], axis=-1, keepdims=True)
    return qpos, qvel


def _metadata(scene: Scene, effects: Effects, seed: int, substeps: int) -> dict[str, Any]:
    return {
        "scene": scene.name,
        "effects": {
            k: (int(v) if k == "latency_steps" else float(v))
            for k, v in dataclasses.asdict(effects).items()
        },
        "seed": int(seed),
        "substeps": int(substeps),
    }


def _timing(scene: Scene, rate: float | None, substeps: int) -> tuple[Scene, int, Any]:
    """``(scene, substeps, timing)`` for a frame ``rate`` in Hz (None: unchanged, timing
    None); see ``record``."""
    if rate is None:
        return scene, substeps, None
    from hybridsim._src.datasets.timing import choose_timing

    ok = isinstance(rate, int | float) and not isinstance(rate, bool)
    if not (ok and math.isfinite(rate) and rate > 0):
        raise EffectsError(f"rate must be a positive number of frames per second, got {rate!r}")
    timing = choose_timing(1.0 / rate, scene.timestep)
    return scene.with_timestep(timing.timestep), timing.substeps, timing


# --------------------------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------------------------


def simulate(
    scene: Scene | str,
    effects: Effects,
    ctrl: np.ndarray,
    *,
    substeps: int = 1,
    seed: int = 0,
    qpos0: np.ndarray | None = None,
    qvel0: np.ndarray | None = None,
    progress: Callable[[str], None] | None = None,
) -> Recording:
    """Runs commanded controls ``ctrl (N, T, nu)`` on the reality; MuJoCo C, one episode at a time.

    Every episode starts at ``qpos0``/``qvel0`` (``(nq,)``/``(nv,)`` or per episode;
    default the scene's first keyframe, at rest) with time 0. ``seed`` draws the sensor
    noise only. ``progress`` receives a line every few seconds. ``run_policy`` is the
    closed-loop twin; replaying ``ctrl`` through it gives the same Recording.

    Raises:
      RealityDivergedError: an episode's state became non-finite or MuJoCo flagged a bad
        qpos/qvel/qacc (and would have reset it); the message names episode, step, effects.
      EffectsError: bad shapes, or an effect that does not fit the scene.
    """
    scene = load_scene(scene)
    _check_effects(effects)
    _check_counts(substeps=substeps)
    _check_seed(seed)
    ctrl = np.asarray(ctrl, dtype=np.float64)
    if ctrl.ndim != 3 or ctrl.shape[2] != scene.nu or 0 in ctrl.shape[:2]:
        raise EffectsError(f"ctrl: expected shape (N, T, nu={scene.nu}), found {ctrl.shape}")
    if not np.all(np.isfinite(ctrl)):
        raise EffectsError("ctrl has non-finite values")
    n, steps, _ = ctrl.shape
    q_init, v_init, a_init = scene.initial_state()
    qpos0 = _batched(qpos0, (scene.nq,), n, "qpos0", q_init)
    qvel0 = _batched(qvel0, (scene.nv,), n, "qvel0", v_init)
    applied = applied_controls(scene, effects, ctrl)

    m_real = apply_to_model(scene.mj_model, effects)
    qpos = np.empty((n, steps + 1, scene.nq))
    qvel = np.empty((n, steps + 1, scene.nv))
    last_report = time.perf_counter()
    for i in range(n):
        episode = _Episode.start(m_real, effects, qpos0[i], qvel0[i], a_init)
        qpos[i, 0], qvel[i, 0] = episode.d.qpos, episode.d.qvel
        for t in range(steps):
            if not episode.control_step(applied[i, t], substeps):
                raise _diverged(scene, effects, i, t)
            qpos[i, t + 1], qvel[i, t + 1] = episode.d.qpos, episode.d.qvel
        if progress is not None and time.perf_counter() - last_report > 5.0:
            last_report = time.perf_counter()
            progress(f"recorded {i + 1}/{n} episodes")

    noise = _sensor_noise(effects, seed, qpos.shape, qvel.shape)
    qpos, qvel = _observed(scene, effects, qpos, qvel, noise)
    return Recording(
        qpos=qpos,
        qvel=qvel,
        ctrl=ctrl.copy(),
        applied_ctrl=applied,
        control_dt=substeps * scene.timestep,
        metadata=_metadata(scene, effects, seed, substeps),
    )


def run_policy(
    scene: Scene | str,
    effects: Effects,
    policy: Policy,
    qpos0: np.ndarray,
    qvel0: np.ndarray | None = None,
    steps: int = 100,
    *,
    substeps: int = 1,
    seed: int = 0,
    rate: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> Recording:
    """Runs ``policy`` closed loop on the reality: N episodes in lockstep for ``steps``
    control steps, on MuJoCo C.

    Each control step ``t``, for all N episodes at once:

    1. the policy sees ``Observation(qpos, qvel, time, sensordata)`` (NumPy, ``(N, nq)``,
       ``(N, nv)``, ``(N,)`` s, ``(N, nsensordata)``): qpos and qvel as the sensors report
       them (with ``sensor_noise``, drawn from ``seed`` exactly as ``simulate`` draws it),
       time and sensordata from the MuJoCo data (sensordata zeros before the first step);
    2. ``policy(obs)`` returns the commands ``(N, nu)`` (array-like, finite);
    3. the commands pass the actuator effects online (latency buffer, deadband, backlash
       play operator, clip: the same ``_actuator_step`` as ``applied_controls``);
    4. every episode steps its physics as ``simulate`` does (friction field, Coulomb
       friction, drag, torque-speed limits, ``substeps`` physics steps).

    So a policy that replays a command array gives ``simulate``'s Recording for that array.
    Episodes start at ``qpos0 (N, nq)`` and ``qvel0 (N, nv)`` (None: the keyframe's,
    usually at rest) with the keyframe's activations, at time 0. ``rate`` (Hz) sets the
    timing as in ``record``; ``substeps`` is then ignored. ``progress`` receives a line
    every few seconds.

    Returns a Recording: qpos/qvel ``(N, T+1, .)`` as observed (noisy if the noise is on;
    the last state too), ctrl ``(N, T, nu)`` as commanded, applied_ctrl, sensordata
    ``(N, T, nsensordata)`` after each control step, status ``(N,)`` int32 zeros.

    Performance: N MuJoCo C data objects stepped from Python, one policy call per control
    step; meant for N <= 64 episodes and T <= 300 steps (about as fast as ``simulate``).

    Raises:
      PolicyOutputError: the policy returned something that is not a finite ``(N, nu)``
        array (names the step, the shape found and the one expected).
      RealityDivergedError: an episode diverged (names episode, step, effects).
      EffectsError: bad arguments, or an effect that does not fit the scene.
      Whatever the policy itself raises, unchanged.
    """
    scene = load_scene(scene)
    _check_effects(effects)
    _check_counts(steps=steps, substeps=substeps)
    _check_seed(seed)
    scene, substeps, timing = _timing(scene, rate, substeps)
    qpos0 = np.asarray(qpos0, dtype=np.float64)
    if qpos0.ndim != 2 or qpos0.shape[0] == 0:
        raise EffectsError(f"qpos0: expected shape (N, nq={scene.nq}), found {qpos0.shape}")
    n = qpos0.shape[0]
    _, v_init, a_init = scene.initial_state()
    qpos0 = _batched(qpos0, (scene.nq,), n, "qpos0", qpos0)
    qvel0 = _batched(qvel0, (scene.nv,), n, "qvel0", v_init)

    actuators = _Actuators.build(scene, effects)
    m_real = apply_to_model(scene.mj_model, effects)
    episodes = [_Episode.start(m_real, effects, qpos0[i], qvel0[i], a_init) for i in range(n)]
    qpos = np.empty((n, steps + 1, scene.nq))
    qvel = np.empty((n, steps + 1, scene.nv))
    ctrl = np.empty((n, steps, scene.nu))
    applied = np.empty((n, steps, scene.nu))
    sensordata = np.empty((n, steps, scene.mj_model.nsensordata))
    noise = _sensor_noise(effects, seed, qpos.shape, qvel.shape)

    state = _actuators_start(actuators, n)
    qpos[:, 0], qvel[:, 0] = _observe(scene, effects, episodes, noise, 0)
    last_report = time.perf_counter()
    for t in range(steps):
        obs = Observation(
            qpos=qpos[:, t].copy(),
            qvel=qvel[:, t].copy(),
            time=np.array([e.d.time for e in episodes]),
            sensordata=np.stack([e.d.sensordata for e in episodes]),
        )
        ctrl[:, t] = _checked_commands(policy(obs), n, scene.nu, t)
        state, applied[:, t] = _actuator_step(actuators, state, ctrl[:, t])
        for i, episode in enumerate(episodes):
            if not episode.control_step(applied[i, t], substeps):
                raise _diverged(scene, effects, i, t)
        sensordata[:, t] = np.stack([e.d.sensordata for e in episodes])
        qpos[:, t + 1], qvel[:, t + 1] = _observe(scene, effects, episodes, noise, t + 1)
        if progress is not None and time.perf_counter() - last_report > 5.0:
            last_report = time.perf_counter()
            progress(f"closed loop: {t + 1}/{steps} control steps of {n} episodes")

    metadata = _metadata(scene, effects, seed, substeps)
    metadata["closed_loop"] = True
    if timing is not None:
        metadata["rate"] = float(rate)
    return Recording(
        qpos=qpos,
        qvel=qvel,
        ctrl=ctrl,
        applied_ctrl=applied,
        control_dt=substeps * scene.timestep,
        metadata=metadata,
        timestep=None if timing is None else timing.timestep,
        substeps=None if timing is None else timing.substeps,
        sensordata=sensordata,
        status=np.zeros(n, np.int32),
    )


def _observe(
    scene: Scene,
    effects: Effects,
    episodes: list[_Episode],
    noise: tuple[np.ndarray, np.ndarray] | None,
    t: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The episodes' current states as observed at step ``t``: ``(N, nq)``, ``(N, nv)``
    with the noise draws of step ``t`` (``noise``: ``(N, T+1, nq)``, ``(N, T+1, nv)``)."""
    qpos = np.stack([e.d.qpos for e in episodes])
    qvel = np.stack([e.d.qvel for e in episodes])
    at_t = None if noise is None else (noise[0][:, t], noise[1][:, t])
    return _observed(scene, effects, qpos, qvel, at_t)


def _checked_commands(u: Any, n: int, nu: int, step: int) -> np.ndarray:
    """The policy's output as a finite ``(n, nu)`` float64 array, or a PolicyOutputError."""
    try:
        arr = np.asarray(u, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is not None and arr.shape == (n, nu) and np.all(np.isfinite(arr)):
        return arr
    if arr is None:
        found = "values that are not numbers"
    elif arr.shape != (n, nu):
        found = f"shape {arr.shape}"
    else:
        found = "non-finite values"
    raise PolicyOutputError(
        f"policy returned a {type(u).__name__} of {found} at control step {step}; "
        f"expected finite controls of shape (N, nu) = {(n, nu)}"
    )


def record(
    scene: Scene | str,
    effects: Effects,
    episodes: int,
    steps: int,
    seed: int,
    substeps: int = 1,
    behaviour: Behaviour | None = None,
    initial_noise: float = 0.0,
    progress: Callable[[str], None] | None = None,
    rate: float | None = None,
    min_steps: int | None = None,
) -> Recording:
    """Records ``episodes`` episodes of ``steps`` control steps of the behaviour policy.

    ``rate`` (Hz) records at that frame rate instead of every ``substeps`` timesteps: the
    reality steps ``timing.choose_timing(1 / rate, timestep)`` (e.g. 30 Hz on a 5 ms scene:
    7 steps of 4.76 ms), written down as ``timestep`` and ``substeps``. ``min_steps``
    gives episodes of different lengths, uniform in ``[min_steps, steps]`` (drawn from the
    seed), as ``episode_len``; the arrays are padded to ``steps``.

    Episodes start from the scene's first keyframe, at rest; ``initial_noise`` (m or rad,
    std) perturbs the hinge and slide joints' qpos (free and ball joints keep the keyframe
    pose). The commands are ``behaviour_controls(scene, behaviour, episodes, steps, seed,
    substeps)``. ``control_dt = substeps * timestep``. The same arguments give identical
    arrays. ``behaviour=None`` means ``Behaviour()``.

    Raises:
      RealityDivergedError: an episode diverged (names the episode and the effects).
      EffectsError: a bad argument or an effect that does not fit the scene.
    """
    scene = load_scene(scene)
    _check_effects(effects)
    behaviour = Behaviour() if behaviour is None else behaviour
    if not (math.isfinite(initial_noise) and initial_noise >= 0):
        raise EffectsError(f"initial_noise must be >= 0 (m or rad), got {initial_noise!r}")
    scene, substeps, timing = _timing(scene, rate, substeps)
    if min_steps is not None and not (
        isinstance(min_steps, int) and not isinstance(min_steps, bool) and 1 <= min_steps <= steps
    ):
        raise EffectsError(f"min_steps must be an int in [1, steps={steps}], got {min_steps!r}")
    ctrl = behaviour_controls(scene, behaviour, episodes, steps, seed, substeps)
    q_init = scene.initial_state()[0]
    qpos0 = np.tile(q_init, (episodes, 1))
    if initial_noise > 0:
        m = scene.mj_model
        adr = [m.jnt_qposadr[j] for j in range(m.njnt) if m.jnt_type[j] in _HINGE_SLIDE]
        qpos0[:, adr] += initial_noise * _rng(seed, 1).standard_normal((episodes, len(adr)))
    rec = simulate(
        scene, effects, ctrl, substeps=substeps, seed=seed, qpos0=qpos0, progress=progress
    )
    metadata = dict(rec.metadata)
    metadata["behaviour"] = {
        "kind": behaviour.kind,
        "scale": float(behaviour.scale),
        "ou_timescale": float(behaviour.ou_timescale),
        "sine_freq": [float(f) for f in behaviour.sine_freq],
    }
    metadata["initial_noise"] = float(initial_noise)
    rec = dataclasses.replace(rec, metadata=metadata)
    if timing is not None:
        metadata["rate"] = float(rate)
        rec = dataclasses.replace(rec, timestep=timing.timestep, substeps=timing.substeps)
    if min_steps is not None:
        lengths = _rng(seed, 3).integers(min_steps, steps + 1, episodes)
        rec = _cut_to_lengths(rec, lengths)
    return rec


def _cut_to_lengths(rec: Recording, lengths: np.ndarray) -> Recording:
    """Episodes cut to ``lengths (N,)`` control steps, padded with their last values."""
    t = np.arange(rec.ctrl.shape[1] + 1)[None, :]
    state_t = np.minimum(t, lengths[:, None])  # (N, T+1): last valid state past the end
    ctrl_t = np.minimum(t[:, :-1], lengths[:, None] - 1)
    rows = np.arange(len(lengths))[:, None]
    return dataclasses.replace(
        rec,
        qpos=rec.qpos[rows, state_t],
        qvel=rec.qvel[rows, state_t],
        ctrl=rec.ctrl[rows, ctrl_t],
        applied_ctrl=rec.applied_ctrl[rows, ctrl_t],
        episode_len=lengths.astype(np.int64),
    )
