"""Fitting residuals (and physical parameters) to recorded trajectories.

1. One-step: regression onto physics-derived targets (``data.targets``; the physics runs
   on MuJoCo C, the fast CPU path), inputs and outputs normalised.
2. Multi-step: the hybrid is unrolled through differentiable MJX over ``horizon`` control
   steps from recorded states, and its qpos/qvel errors are back-propagated.
3. System identification: log-scale multipliers on chosen MjModel fields, fitted by
   gradient through MJX, alone or jointly with the residual.

AdamW with gradient clipping and a cosine schedule; a validation split with early
stopping and model selection on the open-loop error of validation rollouts (the starting
point, e.g. the zero residual, competes too); orbax checkpoints written atomically and
resumed after an interruption; deterministic for a seed.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization

from hybridsim._src.errors import DataFileError, FitError, ShapeError
from hybridsim._src.io import atomic_path
from hybridsim._src.params import PER_WORLD_FIELDS
from hybridsim._src.residual import data as rdata
from hybridsim._src.residual import evaluate as revaluate
from hybridsim._src.residual.model import (
    Residual,
    ResidualConfig,
    apply,
    dof_mask,
    features,
    hybrid_rollout,
    init_residual,
)
from hybridsim._src.scene import Scene

SYSID_FIELDS = (
    "dof_damping",
    "dof_frictionloss",
    "dof_armature",
    "body_mass",
    "actuator_gainprm",
    "geom_friction",
)


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


def sysid_values(scene: Scene, theta: dict[str, Any]) -> dict[str, Any]:
    m = scene.mj_model
    return {k: jnp.asarray(getattr(m, k)) * jnp.exp(v) for k, v in theta.items()}


def _split(ep: rdata.Episodes, frac: float, seed: int):
    n = ep.num
    if n < 2:
        return ep, ep
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    nval = min(n - 1, max(1, int(round(frac * n))))
    return ep.subset(np.sort(order[nval:])), ep.subset(np.sort(order[:nval]))


def _save(path: Path, arrays: Any, meta: dict | None = None) -> None:
    """Writes the leaves of a pytree (and plain metadata) as msgpack, atomically."""
    payload = {"leaves": [np.asarray(x) for x in jax.tree.leaves(arrays)], "meta": meta or {}}
    with atomic_path(path, suffix=".msgpack") as tmp:
        tmp.write_bytes(serialization.msgpack_serialize(payload))


def _load(path: Path, template: Any) -> tuple[Any, dict]:
    """Reads what ``_save`` wrote into the structure of ``template``."""
    try:
        payload = serialization.msgpack_restore(path.read_bytes())
        leaves = [
            payload["leaves"][str(i)]
            if isinstance(payload["leaves"], dict)
            else payload["leaves"][i]
            for i in range(len(payload["leaves"]))
        ]
        treedef = jax.tree.structure(template)
        if len(leaves) != treedef.num_leaves:
            raise ValueError(f"{len(leaves)} arrays, expected {treedef.num_leaves}")
        for got, want in zip(leaves, jax.tree.leaves(template), strict=True):
            if np.shape(got) != np.shape(want):
                raise ValueError(f"array of shape {np.shape(got)}, expected {np.shape(want)}")
        return jax.tree.unflatten(treedef, [jnp.asarray(x) for x in leaves]), payload["meta"]
    except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
        raise DataFileError(f"{str(path)!r} is missing or corrupt: {e}") from None


# Orbax numbers checkpoints by step, increasing; the multi-step phase counts its steps from
# zero again, so its checkpoints are numbered from this offset.
_PHASE_OFFSET = {"one_step": 0, "multi_step": 10**9}


def _checkpointer(path: Path):
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=False)
    return ocp, ocp.CheckpointManager(path.absolute(), options=options)


def _save_checkpoint(path: Path, arrays: Any, meta: dict) -> None:
    """An orbax checkpoint of ``arrays`` and ``meta``; orbax writes into a temporary folder
    and renames it when complete, so an interruption leaves the previous one intact."""
    ocp, mgr = _checkpointer(path)
    with mgr:
        mgr.save(
            _PHASE_OFFSET[meta["phase"]] + meta["step"],
            args=ocp.args.Composite(
                arrays=ocp.args.StandardSave(arrays), meta=ocp.args.JsonSave(meta)
            ),
            force=True,
        )


def _load_checkpoint(path: Path, template: Any, fingerprint: str) -> tuple[Any, dict] | None:
    """The latest checkpoint under ``path`` in the structure of ``template``, or None when
    it belongs to another configuration or data set (its meta names another fingerprint)."""
    ocp, mgr = _checkpointer(path)
    try:
        with mgr:
            step = mgr.latest_step()
            if step is None:
                raise ValueError("no complete checkpoint in it")
            meta = mgr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
            if dict(meta).get("fingerprint") != fingerprint:
                return None
            got = mgr.restore(
                step, args=ocp.args.Composite(arrays=ocp.args.StandardRestore(template))
            )
        return got.arrays, dict(meta)
    except Exception as e:  # orbax raises many types for a damaged folder
        raise DataFileError(
            f"checkpoint {str(path)!r} is corrupt ({type(e).__name__}: {e}); delete it to "
            "start the fit again"
        ) from None


@dataclasses.dataclass
class _Run:
    """Optimisation state of the current phase, checkpointed as a whole."""

    trainable: Any
    opt_state: Any
    phase: str
    step: int = 0
    best: float = np.inf
    best_params: Any = None
    bad_evals: int = 0


def fit(
    scene: Scene,
    episodes: rdata.Episodes,
    config: FitConfig,
    out_dir: str | Path,
    progress: Callable[[str], None] | None = None,
) -> Fitted:
    """Fits a residual (and/or physical parameters) and writes it to ``out_dir``.

    Resumes from ``out_dir/checkpoint/`` (orbax) when the run was interrupted with the same
    configuration and data.
    """

    say = progress or (lambda _: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    substeps = rdata.substeps_for(scene, episodes.control_dt)
    rc = config.residual
    train, val = _split(episodes, config.val_fraction, config.seed)
    fingerprint = _fingerprint(config, episodes)

    res = init_residual(scene, rc, episodes.control_dt)
    zero = [k for k in config.sysid if not np.any(getattr(scene.mj_model, k))]
    if zero:
        raise ShapeError(
            f"cannot identify {zero}: the scene's nominal value is zero everywhere, and "
            "identification fits a scale of it"
        )
    theta = {k: jnp.zeros(np.shape(getattr(scene.mj_model, k))) for k in config.sysid}
    # ---- normalisation and one-step data (physics targets on MuJoCo C) -------------
    hist_tr = rdata.histories(train, rc.history)[:, :-1]
    hist_va = rdata.histories(val, rc.history)[:, :-1]

    def feats(ep, hist):
        return np.asarray(
            features(res.dims, ep.qpos[:, :-1], ep.qvel[:, :-1], ep.ctrl, hist)
        ).reshape(-1, res.dims.feature_dim)

    x_tr, x_va = feats(train, hist_tr), feats(val, hist_va)
    # Features that barely vary in the data (objects at rest) get a floor of 1e-3 on their
    # scale, so tiny differences at test time are not blown up.
    fmean, fstd = x_tr.mean(0), np.maximum(x_tr.std(0), 1e-3)
    do_residual = not config.sysid_only
    if do_residual:
        with _timed(say, "physics targets on MuJoCo C"):
            y_tr = rdata.targets(rc.kind, scene, train, substeps).reshape(len(x_tr), -1)
            y_va = rdata.targets(rc.kind, scene, val, substeps).reshape(len(x_va), -1)
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
    log: list[dict[str, float]] = []
    total = (config.one_step_iters if do_residual else 0) + (
        config.multi_step_iters if (config.horizon > 0) else 0
    )
    schedule = optax.warmup_cosine_decay_schedule(
        0.0,
        config.learning_rate,
        max(1, min(100, total // 10)),
        max(2, total),
        0.05 * config.learning_rate,
    )
    # A step whose gradient is not finite (MJX can give NaN gradients at some contact
    # states) is skipped rather than applied; ten in a row end the fit with an error.
    opt = optax.apply_if_finite(
        optax.chain(
            optax.clip_by_global_norm(config.clip_norm),
            optax.adamw(schedule, weight_decay=config.weight_decay),
        ),
        max_consecutive_errors=10,
    )
    trainable = {"net": res.params, "theta": theta}
    run = _Run(trainable, opt.init(trainable), "one_step", best_params=trainable)
    ckpt = out / "checkpoint"
    if ckpt.exists():
        found = _load_checkpoint(ckpt, (run.trainable, run.opt_state, run.trainable), fingerprint)
        if found is not None:
            arrays, meta = found
            run = _Run(
                *arrays[:2],
                str(meta["phase"]),
                int(meta["step"]),
                float(meta["best"]),
                arrays[2],
                int(meta["bad"]),
            )
            say(f"resuming from {ckpt} at step {run.step} ({run.phase})")
        else:
            say(f"replacing {ckpt}: it belongs to another configuration or data set")
            shutil.rmtree(ckpt)

    select_h = min(config.select_horizon, val.steps)
    val_label = f"val qpos RMSE@{select_h}" if select_h > 0 else "val"

    def checkpoint() -> None:
        meta = {
            "step": run.step,
            "best": float(run.best),
            "bad": run.bad_evals,
            "phase": run.phase,
            "fingerprint": fingerprint,
        }
        _save_checkpoint(ckpt, (run.trainable, run.opt_state, run.best_params), meta)

    def track(loss: float, val: float, total: int, every: int) -> bool:
        """Logs, checkpoints and returns True when early stopping says stop."""
        if run.step % every and run.step != total:
            return False
        log.append({"phase": run.phase, "step": run.step, "train": loss, "val": val})
        say(
            f"{run.phase.replace('_', '-')} {run.step}/{total}: train {loss:.4g} "
            f"{val_label} {val:.4g}"
        )
        if not np.isfinite(val):
            raise FitError(
                f"{run.phase} validation loss became {val} at step {run.step}; the gradients "
                "or the data are not finite"
            )
        if val < run.best:
            run.best, run.best_params, run.bad_evals = val, run.trainable, 0
        else:
            run.bad_evals += 1
        checkpoint()
        # The first part of a phase (warm-up, a noisy start) never stops it.
        if run.bad_evals >= config.patience and run.step >= config.min_fraction * total:
            say("early stop (validation loss stopped improving)")
            return True
        return False

    def baseline(val: float) -> None:
        """Scores the phase's starting point, so that training has to beat it: a phase
        that never improves on it (a residual that cannot generalise from this data) keeps
        the start, e.g. the zero residual, which equals plain physics."""
        log.append({"phase": run.phase, "step": 0, "train": float("nan"), "val": val})
        say(f"{run.phase.replace('_', '-')} 0: {val_label} {val:.4g} (starting point)")
        if np.isfinite(val):
            run.best, run.best_params = val, run.trainable

    def select_score(tr: Any) -> float | None:
        """The validation open-loop error the kept model is chosen by (None: off)."""
        if select_h < 1:
            return None
        r = res.replace(params=tr["net"]) if do_residual else None
        p = {k: np.asarray(v) for k, v in sysid_values(scene, tr["theta"]).items()}
        return revaluate.rollout_rmse(scene, val, select_h, r, p or None)

    # ---- phase 1: one-step regression -------------------------------------------------
    if do_residual and run.phase == "one_step":
        xt, yt = jnp.asarray(x_tr, jnp.float32), jnp.asarray(y_tr, jnp.float32)
        xv, yv = jnp.asarray(x_va, jnp.float32), jnp.asarray(y_va, jnp.float32)

        # Data and normalisation go in as arguments, not constants, so a fit on other data
        # of the same shapes reuses the compiled program (persistent cache).
        norm = (res.feature_mean, res.feature_std, res.output_scale)

        def loss_fn(tr, norm, x, y):
            fmean, fstd, oscale = norm
            r = res.replace(
                params=tr["net"], feature_mean=fmean, feature_std=fstd, output_scale=oscale
            )
            pred = apply(r, x)  # (E, n, O)
            scale = jnp.where(oscale > 0, oscale, 1.0)
            return jnp.mean(((pred - y) / scale) ** 2)

        @jax.jit
        def update(tr, os_, norm, xt, yt, idx):
            loss, g = jax.value_and_grad(loss_fn)(tr, norm, xt[idx], yt[idx])
            upd, os_ = opt.update(g, os_, tr)
            return optax.apply_updates(tr, upd), os_, loss

        jit_loss = jax.jit(loss_fn)

        def val_loss(tr):
            score = select_score(tr)
            return jit_loss(tr, norm, xv, yv) if score is None else score

        key = np.random.default_rng(config.seed + 1)
        bs = min(config.batch_size, len(x_tr))
        start = run.step
        if start == 0:
            baseline(float(val_loss(run.trainable)))
        for it in range(config.one_step_iters):
            idx = key.integers(0, len(x_tr), bs)  # drawn even when resuming: same stream
            if it < start:
                continue
            run.trainable, run.opt_state, loss = update(
                run.trainable, run.opt_state, norm, xt, yt, jnp.asarray(idx)
            )
            run.step = it + 1
            if run.step % config.eval_every == 0 or run.step == config.one_step_iters:
                if track(
                    float(loss),
                    float(val_loss(run.trainable)),
                    config.one_step_iters,
                    config.eval_every,
                ):
                    break
        run = _Run(run.best_params, run.opt_state, "multi_step", best_params=run.best_params)
        checkpoint()
    # ---- phase 2: multi-step through differentiable MJX -------------------------------
    if (
        config.multi_step_iters > 0
        and config.horizon > 0
        and (run.phase == "multi_step" or not do_residual)
    ):
        if not do_residual:
            run.phase = "multi_step"
        _multi_step(
            scene,
            res,
            train,
            val,
            config,
            substeps,
            opt,
            run,
            (track, baseline, select_score),
            do_residual,
            say,
        )
    trainable = run.best_params
    if not all(bool(np.all(np.isfinite(x))) for x in jax.tree.leaves(trainable)):
        raise FitError("the fitted parameters are not finite; nothing was written")
    residual = res.replace(params=trainable["net"]) if do_residual else None
    fitted = Fitted(
        residual=residual,
        sysid={k: np.asarray(v) for k, v in sysid_values(scene, trainable["theta"]).items()},
        log=log,
    )
    save_fitted(out, scene, fitted, config, episodes.control_dt)
    shutil.rmtree(ckpt, ignore_errors=True)
    return fitted


def _multi_step(scene, res, train, val, config, substeps, opt, run, hooks, do_residual, say):
    """Unrolls the hybrid through differentiable MJX; updates ``run`` in place."""
    from hybridsim._src import sim

    track, baseline, select_score = hooks

    h = config.horizon
    rc = config.residual
    if train.steps < h:
        raise DataFileError(f"episodes have {train.steps} steps; the horizon needs {h}")

    def windows(ep):
        hist = rdata.histories(ep, rc.history)
        starts = np.arange(0, ep.steps - h + 1, max(1, h // 2))
        q0 = ep.qpos[:, starts].reshape(-1, ep.qpos.shape[2])
        v0 = ep.qvel[:, starts].reshape(-1, ep.qvel.shape[2])
        hs_ = hist[:, starts].reshape(-1, *hist.shape[2:])
        u = np.stack([ep.ctrl[:, s : s + h] for s in starts], 1).reshape(-1, h, ep.ctrl.shape[2])
        qt = np.stack([ep.qpos[:, s + 1 : s + h + 1] for s in starts], 1).reshape(
            -1, h, ep.qpos.shape[2]
        )
        vt = np.stack([ep.qvel[:, s + 1 : s + h + 1] for s in starts], 1).reshape(
            -1, h, ep.qvel.shape[2]
        )
        return q0, v0, hs_, u, qt, vt

    wtr, wva = windows(train), windows(val)
    nb = max(1, min(config.batch_size // 16, len(wtr[0]), len(wva[0])))
    qscale = jnp.asarray(np.maximum(train.qpos.std((0, 1)), 1e-3), jnp.float32)
    vscale = jnp.asarray(np.maximum(train.qvel.std((0, 1)), 1e-3), jnp.float32)
    base = sim.make_model(scene, nb, backend="mjx", substeps=substeps, differentiable=True)

    norm = (qscale, vscale, res.feature_mean, res.feature_std, res.output_scale)

    def loss_fn(tr, norm, q0, v0, hist, u, qt, vt):
        qscale, vscale, fmean, fstd, oscale = norm
        fields = {
            k: jnp.broadcast_to(v, (nb, *v.shape))
            for k, v in sysid_values(scene, tr["theta"]).items()
        }
        model = base.replace(params=fields) if fields else base
        state = sim.init(model).replace(qpos=q0, qvel=v0)
        if do_residual:
            r = res.replace(
                params=tr["net"], feature_mean=fmean, feature_std=fstd, output_scale=oscale
            )
            traj = hybrid_rollout(model, r, state, u, history=hist).traj
        else:
            traj = sim.rollout(model, state, u)
        eq = (traj.qpos[:, 1:] - qt) / qscale
        ev = (traj.qvel[:, 1:] - vt) / vscale
        return jnp.mean(eq**2) + 0.1 * jnp.mean(ev**2)

    @jax.jit
    def update(tr, os_, norm, *batch):
        loss, g = jax.value_and_grad(loss_fn)(tr, norm, *batch)
        upd, os_ = opt.update(g, os_, tr)
        return optax.apply_updates(tr, upd), os_, loss

    jit_loss = jax.jit(loss_fn)

    def val_loss(tr, *args):
        score = select_score(tr)
        return jit_loss(tr, *args) if score is None else score

    rng = np.random.default_rng(config.seed + 2)
    vidx = rng.choice(len(wva[0]), nb, replace=False)
    vbatch = [jnp.asarray(a[vidx], jnp.float32) for a in wva]
    say(f"multi-step: compiling the {config.horizon}-step unroll through MJX")
    start, every = run.step, max(1, config.eval_every // 4)
    if start == 0:
        baseline(float(val_loss(run.trainable, norm, *vbatch)))
    for it in range(config.multi_step_iters):
        idx = rng.choice(len(wtr[0]), nb, replace=False)  # drawn even when resuming
        if it < start:
            continue
        batch = [jnp.asarray(a[idx], jnp.float32) for a in wtr]
        run.trainable, run.opt_state, loss = update(run.trainable, run.opt_state, norm, *batch)
        run.step = it + 1
        if run.step % every == 0 or run.step == config.multi_step_iters:
            if track(
                float(loss),
                float(val_loss(run.trainable, norm, *vbatch)),
                config.multi_step_iters,
                every,
            ):
                break


class _timed:
    def __init__(self, say, what):
        self.say, self.what = say, what

    def __enter__(self):
        import time

        self.t0 = time.perf_counter()
        self.say(f"{self.what} ...")

    def __exit__(self, *exc):
        import time

        if exc[0] is None:
            self.say(f"{self.what}: done in {time.perf_counter() - self.t0:.1f} s")


def _fingerprint(config: FitConfig, ep: rdata.Episodes) -> str:
    import hashlib

    h = hashlib.sha256(repr(config).encode())
    for a in (ep.qpos, ep.qvel, ep.ctrl):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def save_fitted(out: Path, scene: Scene, fitted: Fitted, config: FitConfig, control_dt: float):
    """Writes ``meta.json`` and ``weights.msgpack`` (atomically)."""
    meta = {
        "format": "hybridsim-residual-1",
        "scene": scene.name,
        "nq": scene.nq,
        "nv": scene.nv,
        "nu": scene.nu,
        "control_dt": control_dt,
        "residual": dataclasses.asdict(config.residual) if fitted.residual is not None else None,
        "sysid": {k: np.asarray(v).tolist() for k, v in fitted.sysid.items()},
        "log": fitted.log,
    }
    if fitted.residual is not None:
        r = fitted.residual
        _save(out / "weights.msgpack", (r.params, r.feature_mean, r.feature_std, r.output_scale))
    with atomic_path(out / "meta.json", suffix=".json") as tmp:
        tmp.write_text(json.dumps(meta, indent=2))


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
        res = init_residual(scene, rc, meta["control_dt"])
        template = (res.params, res.feature_mean, res.feature_std, res.output_scale)
        (params, fmean, fstd, oscale), _ = _load(path / "weights.msgpack", template)
        residual = res.replace(
            params=params, feature_mean=fmean, feature_std=fstd, output_scale=oscale
        )
    sysid = {k: np.asarray(v) for k, v in meta["sysid"].items()}
    for k in sysid:
        if k not in PER_WORLD_FIELDS:
            raise DataFileError(f"{str(meta_path)!r}: unknown identified field {k!r}")
    return Fitted(residual=residual, sysid=sysid, log=meta.get("log", []))
