"""Fitting residuals (and physical parameters) to recorded trajectories.

1. One-step: regression onto physics-derived targets (``data.targets``; the physics runs
   on MuJoCo C, the fast CPU path), inputs and outputs normalised.
2. Multi-step: the hybrid is unrolled through differentiable MJX over ``horizon`` control
   steps from recorded states, and its qpos/qvel errors are back-propagated. A scene MJX
   cannot run keeps the one-step fit (the skip is logged).
3. System identification: log-scale multipliers on chosen MjModel fields, fitted by
   gradient through MJX, alone or jointly with the residual.

AdamW with gradient clipping and a cosine schedule; a validation split with early
stopping and model selection on the open-loop error of validation rollouts (the starting
point, e.g. the zero residual, competes too); orbax checkpoints written atomically and
resumed after an interruption; deterministic for a seed. The pieces: ``phases`` (data and
scores of each phase), ``losses`` (pure losses, jitted update steps), ``training`` (the
loop, early stopping), ``checkpoint`` (files), ``sysid`` (identified fields).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from hybridsim._src.errors import DataFileError, FitError, ShapeError
from hybridsim._src.io import atomic_path
from hybridsim._src.loader import Scene
from hybridsim._src.params import PER_WORLD_FIELDS
from hybridsim._src.residual import checkpoint, phases, sysid, training
from hybridsim._src.residual import data as rdata
from hybridsim._src.residual.model import Residual, ResidualConfig, init_residual
from hybridsim._src.residual.optimizer import OptimizerConfig, make_optimizer
from hybridsim._src.residual.sysid import SYSID_FIELDS

__all__ = ["SYSID_FIELDS", "FitConfig", "Fitted", "fit", "load_fitted", "save_fitted"]


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """How to fit. Parsed from the command line at the entry point only."""

    residual: ResidualConfig = ResidualConfig()
    one_step_iters: int = 2000
    """Optimizer steps of the one-step phase."""
    multi_step_iters: int = 200
    """Optimizer steps of the unrolled multi-step phase (0: skip)."""
    horizon: int = 8
    """Control steps unrolled through MJX in the multi-step loss."""
    batch_size: int = 256
    """Transitions per one-step batch (windows per multi-step batch: batch_size // 16)."""
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    clip_norm: float = 1.0
    val_fraction: float = 0.2
    """Fraction of episodes held out for validation and early stopping."""
    patience: int = 5
    """Evaluations without improvement before stopping (one every ``eval_every`` steps)."""
    eval_every: int = 100
    min_fraction: float = 0.3
    """Early stopping waits for this fraction of a phase's optimizer steps."""
    sysid: tuple[str, ...] = ()
    """MjModel fields to identify (see ``SYSID_FIELDS``); empty: none."""
    sysid_only: bool = False
    """Fit the physical parameters alone, without a residual."""
    select_horizon: int = 50
    """Early stopping and the choice of the kept model score open-loop validation
    rollouts: the qpos RMSE at this many control steps (MuJoCo C, as ``evaluate``; clipped
    to the episode length). 0: score each phase's own loss on the validation data."""
    seed: int = 0

    def __post_init__(self):
        bad = [f for f in self.sysid if f not in SYSID_FIELDS]
        if bad:
            raise ShapeError(f"cannot identify {bad}; identifiable fields: {SYSID_FIELDS}")


@dataclasses.dataclass(frozen=True)
class Fitted:
    """A fitted model: the residual (None for sysid only) and identified parameters."""

    residual: Residual | None
    sysid: dict[str, np.ndarray]
    """Field -> fitted value (the field's own shape), for ``make_model(params=...)``."""
    log: list[dict[str, float]]
    """One entry per evaluation: ``phase``, ``step``, ``train`` and ``val`` scores; a
    phase that could not run has one entry with ``skipped`` (the reason) instead."""
    timestep: float | None = None
    """Physics timestep (s) the model was fitted at; None: not recorded (the scene's)."""
    substeps: int | None = None
    """Physics steps per control step it was fitted at; None: not recorded."""


def fit(
    scene: Scene,
    episodes: rdata.Episodes,
    config: FitConfig,
    out_dir: str | Path,
    progress: Callable[[str], None] | None = None,
) -> Fitted:
    """Fits a residual (and/or physical parameters) and writes it to ``out_dir``.

    Resumes from ``out_dir/checkpoint/`` (orbax) when the run was interrupted with the same
    configuration and data. Raises FitError, writing no model, when the fit is not finite.
    """
    say = progress or _silent
    sysid.check_fields(scene, config.sysid)
    scene, substeps = rdata.stepping(scene, episodes)
    config = dataclasses.replace(config, residual=observed_config(scene, episodes, config))
    train, val = phases.split_episodes(episodes, config.val_fraction, config.seed)
    multi_step = config.multi_step_iters > 0 and config.horizon > 0
    unroll = phases.unroll_setup(scene, train, val, config, substeps) if multi_step else None
    if unroll is not None and unroll.skipped and config.sysid:
        raise FitError(f"cannot identify {list(config.sysid)}: {unroll.skipped}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    res = init_residual(scene, config.residual, episodes.control_dt)
    do_residual = not config.sysid_only
    if do_residual:
        res, one_step = phases.one_step_data(scene, res, train, val, substeps, say)
    opt = _optimizer_config(config)
    trainable = {"net": res.params, "theta": sysid.initial_theta(scene, config.sysid)}
    fresh = training.initial_state(
        trainable, make_optimizer(opt).init(trainable), "one_step" if do_residual else "multi_step"
    )
    ckpt = out / "checkpoint"
    fingerprint = checkpoint.fingerprint(
        config, episodes.qpos, episodes.qvel, episodes.ctrl, episodes.length
    )
    state = training.resume(ckpt, fingerprint, fresh, say)
    save = functools.partial(training.save_state, ckpt, fingerprint)
    rule = training.StopRule(config.patience, config.min_fraction)
    log: list[dict] = []
    if state.phase == "one_step":
        phase = phases.one_step_phase(scene, res, one_step, val, config, opt)
        state, entries = training.run_phase(state, phase, rule, save, say)
        log += entries
        state = training.next_phase(state, "multi_step")
        save(state)
    if unroll is not None and unroll.skipped:
        note = f"multi-step phase skipped: {unroll.skipped}; kept the one-step fit"
        say(note)
        log.append({"phase": "multi_step", "step": 0, "skipped": note})
    elif unroll is not None:
        phase = phases.multi_step_phase(
            scene, res if do_residual else None, unroll, val, config, opt
        )
        say(f"multi-step: compiling the {config.horizon}-step unroll through MJX")
        state, entries = training.run_phase(state, phase, rule, save, say)
        log += entries
    kept = state.stopping.best_params
    _check_finite(kept)
    fitted = Fitted(
        residual=res.replace(params=kept["net"]) if do_residual else None,
        sysid=sysid.sysid_arrays(scene, kept["theta"]),
        log=log,
        timestep=scene.timestep,
        substeps=substeps,
    )
    save_fitted(out, scene, fitted, config, episodes.control_dt, substeps)
    shutil.rmtree(ckpt, ignore_errors=True)
    return fitted


def _silent(_: str) -> None:
    pass


def observed_config(scene: Scene, episodes: rdata.Episodes, config: FitConfig) -> ResidualConfig:
    """The residual config for data that may not record every joint: a residual acts only
    on joints the data records in full; by default on all of those."""
    rc = config.residual
    missing = rdata.unobserved_joints(scene, episodes)
    if not missing or config.sysid_only:
        return rc
    if rc.kind == "neural":
        raise FitError(
            f"the pure-neural model predicts every joint, but the data does not record "
            f"{missing}; fit a 'force' or 'state' residual"
        )
    bad = [j for j in rc.dofs if j in missing]
    if bad:
        raise FitError(f"residual dofs {bad} are not recorded in the data (unobserved: {missing})")
    if rc.dofs:
        return rc
    return dataclasses.replace(rc, dofs=tuple(rdata.observed_joints(scene, episodes)))


def _optimizer_config(config: FitConfig) -> OptimizerConfig:
    """The schedule spans every optimizer step the fit may take, in both phases."""
    total = (0 if config.sysid_only else config.one_step_iters) + (
        config.multi_step_iters if config.horizon > 0 else 0
    )
    return OptimizerConfig(config.learning_rate, config.weight_decay, config.clip_norm, total)


def _check_finite(trainable) -> None:
    bad = [
        jax.tree_util.keystr(path)
        for path, x in jax.tree_util.tree_leaves_with_path(trainable)
        if not np.all(np.isfinite(np.asarray(x)))
    ]
    if bad:
        raise FitError(
            f"the fitted parameters are not finite (at {', '.join(bad[:3])}); nothing was written"
        )


def save_fitted(
    out: Path,
    scene: Scene,
    fitted: Fitted,
    config: FitConfig,
    control_dt: float,
    substeps: int | None = None,
):
    """Writes ``meta.json`` and ``weights.msgpack`` (atomically). ``scene`` is stepped as
    the data was: its timestep and ``substeps`` (default ``control_dt / timestep``) are
    written down with ``control_dt``."""
    substeps = round(control_dt / scene.timestep) if substeps is None else substeps
    meta = {
        "format": "hybridsim-residual-1",
        "scene": scene.name,
        "nq": scene.nq,
        "nv": scene.nv,
        "nu": scene.nu,
        "control_dt": control_dt,
        "timestep": scene.timestep,
        "substeps": int(substeps),
        "residual": dataclasses.asdict(config.residual) if fitted.residual is not None else None,
        "sysid": {k: np.asarray(v).tolist() for k, v in fitted.sysid.items()},
        "log": fitted.log,
    }
    if fitted.residual is not None:
        r = fitted.residual
        checkpoint.save_arrays(
            out / "weights.msgpack", (r.params, r.feature_mean, r.feature_std, r.output_scale)
        )
    with atomic_path(out / "meta.json", suffix=".json") as tmp:
        tmp.write_text(json.dumps(meta, indent=2))


def fitted_scene(scene: Scene, meta: dict) -> Scene:
    """The scene stepped as the model was fitted: at the recorded timestep, when the fit
    wrote one (fits of data at the scene's own timestep leave it as it is)."""
    return scene.with_timestep(meta["timestep"]) if meta.get("timestep") else scene


def load_fitted(path: str | Path, scene: Scene) -> Fitted:
    """Reads what ``fit`` wrote; checks it matches the scene."""
    path = Path(path)
    meta_path = path / "meta.json"
    if not meta_path.is_file():
        raise DataFileError(f"{str(path)!r} holds no fitted model (no meta.json)")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as e:
        raise DataFileError(f"{str(meta_path)!r} is corrupt: {e}") from None
    if (meta["nq"], meta["nv"], meta["nu"]) != (scene.nq, scene.nv, scene.nu):
        raise DataFileError(
            f"model in {str(path)!r} was fitted for nq={meta['nq']}, nv={meta['nv']}, "
            f"nu={meta['nu']}; scene {scene.name!r} has {scene.nq}, {scene.nv}, {scene.nu}"
        )
    residual = None
    if meta["residual"] is not None:
        rc = meta["residual"]
        rc = ResidualConfig(
            **{**rc, "hidden": tuple(rc["hidden"]), "dofs": tuple(rc.get("dofs", ()))}
        )
        res = init_residual(fitted_scene(scene, meta), rc, meta["control_dt"])
        template = (res.params, res.feature_mean, res.feature_std, res.output_scale)
        (params, fmean, fstd, oscale), _ = checkpoint.load_arrays(
            path / "weights.msgpack", template
        )
        residual = res.replace(
            params=params, feature_mean=fmean, feature_std=fstd, output_scale=oscale
        )
    sysid = {k: np.asarray(v) for k, v in meta["sysid"].items()}
    for k in sysid:
        if k not in PER_WORLD_FIELDS:
            raise DataFileError(f"{str(meta_path)!r}: unknown identified field {k!r}")
    return Fitted(
        residual=residual,
        sysid=sysid,
        log=meta.get("log", []),
        timestep=meta.get("timestep"),
        substeps=meta.get("substeps"),
    )
