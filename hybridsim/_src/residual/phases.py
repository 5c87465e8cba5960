"""The two phases of ``fit`` built from data: what each trains on, steps and is scored by.

1. One-step: regression of the residual's outputs onto physics-derived targets
   (``data.targets``, computed on MuJoCo C), inputs and outputs normalised.
2. Multi-step: the hybrid unrolled through differentiable MJX over ``horizon`` control
   steps from recorded states; its normalised qpos/qvel errors are back-propagated into
   the network and the identified parameters.

Each phase is scored on validation episodes by the open-loop qpos RMSE of MuJoCo C
rollouts at ``select_horizon`` control steps (as ``evaluate``), or by its own loss.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax.numpy as jnp
import numpy as np

from hybridsim._src.errors import BackendError
from hybridsim._src.loader import Scene
from hybridsim._src.residual import data as rdata
from hybridsim._src.residual import evaluate as revaluate
from hybridsim._src.residual import losses
from hybridsim._src.residual.data import Episodes, Windows
from hybridsim._src.residual.model import Residual, dof_mask, features
from hybridsim._src.residual.optimizer import OptimizerConfig
from hybridsim._src.residual.sysid import sysid_arrays
from hybridsim._src.residual.training import Phase

if TYPE_CHECKING:
    from hybridsim._src.residual.fit import FitConfig


def split_episodes(ep: Episodes, frac: float, seed: int) -> tuple[Episodes, Episodes]:
    """(train, validation): a fraction ``frac`` of the episodes (at least one, at most all
    but one) drawn by ``seed`` for validation; a single episode serves as both."""
    n = ep.num
    if n < 2:
        return ep, ep
    order = np.random.default_rng(seed).permutation(n)
    nval = min(n - 1, max(1, int(round(frac * n))))
    return ep.subset(np.sort(order[nval:])), ep.subset(np.sort(order[:nval]))


def rollout_score(
    scene: Scene, val: Episodes, horizon: int, res: Residual | None, trainable: Any
) -> float:
    """Open-loop qpos RMSE of validation rollouts at ``horizon`` control steps (MuJoCo C)."""
    r = res.replace(params=trainable["net"]) if res is not None else None
    params = sysid_arrays(scene, trainable["theta"])
    return revaluate.rollout_rmse(scene, val, horizon, r, params or None)


# ---- phase 1: one-step regression ---------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OneStepData:
    """Normalised-target regression data, float32: features (N, F), targets (N, O)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def one_step_data(
    scene: Scene,
    res: Residual,
    train: Episodes,
    val: Episodes,
    substeps: int,
    say: Callable[[str], None],
) -> tuple[Residual, OneStepData]:
    """The residual with the training data's normalisation, and the regression data."""
    rc = res.config

    def feats(ep: Episodes) -> np.ndarray:  # (transitions, F): padding left out
        hist = rdata.histories(ep, rc.history)[:, :-1]
        x = features(res.dims, ep.qpos[:, :-1], ep.qvel[:, :-1], ep.ctrl, hist)
        return np.asarray(x)[ep.valid]

    def targets(ep: Episodes) -> np.ndarray:
        return rdata.targets(rc.kind, scene, ep, substeps)[ep.valid]

    x_tr, x_va = feats(train), feats(val)
    # Features that barely vary in the data (objects at rest) get a floor of 1e-3 on their
    # scale, so tiny differences at test time are not blown up.
    fmean, fstd = x_tr.mean(0), np.maximum(x_tr.std(0), 1e-3)
    t0 = time.perf_counter()
    say("physics targets on MuJoCo C ...")
    y_tr, y_va = targets(train), targets(val)
    say(f"physics targets on MuJoCo C: done in {time.perf_counter() - t0:.1f} s")
    # Outputs the data never excites (e.g. objects that were never touched) stay zero:
    # nothing can be learned about them.
    ystd = y_tr.std(0)
    oscale = np.where(ystd > 1e-6 * max(float(ystd.max()), 1e-12), ystd, 0.0)
    # Degrees of freedom outside ResidualConfig.dofs get no correction at all.
    mask = dof_mask(res.dims)
    oscale = oscale * (mask if rc.kind == "force" else np.tile(mask, 2))
    y_tr, y_va = np.where(oscale > 0, y_tr, 0.0), np.where(oscale > 0, y_va, 0.0)
    res = res.replace(
        feature_mean=jnp.asarray(fmean, jnp.float32),
        feature_std=jnp.asarray(fstd, jnp.float32),
        output_scale=jnp.asarray(oscale, jnp.float32),
    )
    f32 = functools.partial(np.asarray, dtype=np.float32)
    return res, OneStepData(f32(x_tr), f32(y_tr), f32(x_va), f32(y_va))


def _one_step_update(res, d: OneStepData, opt: OptimizerConfig, trainable, opt_state, idx):
    x, y = jnp.asarray(d.x_train[idx]), jnp.asarray(d.y_train[idx])
    return losses.one_step_update(trainable, opt_state, res, x, y, opt=opt)


def _one_step_val_loss(res, d: OneStepData, trainable) -> float:
    return float(losses.one_step_loss_jit(trainable, res, d.x_val, d.y_val))


def one_step_phase(
    scene: Scene,
    res: Residual,
    d: OneStepData,
    val: Episodes,
    config: FitConfig,
    opt: OptimizerConfig,
) -> Phase:
    n = len(d.x_train)
    bs = min(config.batch_size, n)
    rng = np.random.default_rng(config.seed + 1)
    batches = np.array([rng.integers(0, n, bs) for _ in range(config.one_step_iters)])
    horizon = min(config.select_horizon, val.longest)
    return Phase(
        name="one_step",
        batches=batches.reshape(config.one_step_iters, bs),
        eval_every=config.eval_every,
        update=functools.partial(_one_step_update, res, d, opt),
        score=functools.partial(rollout_score, scene, val, horizon, res)
        if horizon > 0
        else functools.partial(_one_step_val_loss, res, d),
        label=_label(horizon),
    )


def _label(horizon: int) -> str:
    return f"val qpos RMSE@{horizon}" if horizon > 0 else "val"


# ---- phase 2: multi-step through differentiable MJX ---------------------------------


@dataclasses.dataclass(frozen=True)
class Unroll:
    """What the multi-step phase trains on; ``model`` is None when MJX cannot run the
    scene (``skipped`` then says why)."""

    model: Any
    """A differentiable ``mjx`` SimModel of ``batch`` worlds, or None."""
    skipped: str | None
    """Why MJX cannot run the scene: ``"MJX cannot run scene 'name' (reason)"``."""
    train: Windows
    val: Windows
    scales: losses.StateScales
    batch: int
    """Windows per optimizer step (and in the validation batch)."""


def unroll_setup(
    scene: Scene, train: Episodes, val: Episodes, config: FitConfig, substeps: int
) -> Unroll:
    """Cuts the windows and builds the differentiable MJX model (no compilation yet)."""
    from hybridsim._src import sim

    rc = config.residual
    wtr = rdata.cut_windows(train, config.horizon, rc.history)
    wva = rdata.cut_windows(val, config.horizon, rc.history)
    nb = max(1, min(config.batch_size // 16, wtr.num, wva.num))
    states = np.concatenate([train.valid, train.length[:, None] >= 0], axis=1)  # (N, T+1)
    scales = losses.StateScales(
        qpos=jnp.asarray(np.maximum(train.qpos[states].std(0), 1e-3), jnp.float32),
        qvel=jnp.asarray(np.maximum(train.qvel[states].std(0), 1e-3), jnp.float32),
        qpos_weight=jnp.asarray(train.qpos_observed, jnp.float32),
        qvel_weight=jnp.asarray(train.qvel_observed, jnp.float32),
    )
    try:
        model = sim.make_model(scene, nb, backend="mjx", substeps=substeps, differentiable=True)
        skipped = None
    except BackendError as e:
        model, skipped = None, f"MJX cannot run scene {scene.name!r} ({e})"
    return Unroll(model, skipped, wtr, wva, scales, nb)


def _multi_step_update(res, u: Unroll, opt: OptimizerConfig, trainable, opt_state, idx):
    return losses.multi_step_update(
        trainable, opt_state, res, u.model, u.scales, u.train.take(idx), opt=opt
    )


def _multi_step_val_loss(res, u: Unroll, batch: Windows, trainable) -> float:
    return float(losses.multi_step_loss_jit(trainable, res, u.model, u.scales, batch))


def multi_step_phase(
    scene: Scene,
    res: Residual | None,
    u: Unroll,
    val: Episodes,
    config: FitConfig,
    opt: OptimizerConfig,
) -> Phase:
    rng = np.random.default_rng(config.seed + 2)
    vbatch = u.val.take(rng.choice(u.val.num, u.batch, replace=False))
    iters = config.multi_step_iters
    batches = np.array([rng.choice(u.train.num, u.batch, replace=False) for _ in range(iters)])
    horizon = min(config.select_horizon, val.longest)
    return Phase(
        name="multi_step",
        batches=batches.reshape(iters, u.batch),
        eval_every=max(1, config.eval_every // 4),
        update=functools.partial(_multi_step_update, res, u, opt),
        score=functools.partial(rollout_score, scene, val, horizon, res)
        if horizon > 0
        else functools.partial(_multi_step_val_loss, res, u, vbatch),
        label=_label(horizon),
    )
