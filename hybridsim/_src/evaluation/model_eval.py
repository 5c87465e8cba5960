"""Open-loop fidelity of a world model against horizon, and the calibration of its ensemble.

Error. For each horizon H (control steps) every model rolls out open loop with the
recorded controls from the recorded states at window starts t = 0, H, 2H, ... of every
episode while t + H is within the episode (the windows rule of
``hybridsim._src.residual.evaluate``). Its error is the qpos RMSE at step H over all
windows and recorded qpos entries: ``evaluate(scene, episodes, H, ...)["rollout_rmse"]``.
The models are nominal physics, the hybrid (physics with the fitted system-identified
parameters, if any, plus the residual) and the pure-neural model.

Calibration (an ensemble of E > 1 members). ``hybrid_rollout``'s ``uncertainty`` of a
window is the ensemble spread of the residual's output, ``sqrt(sum_o var_e out[e, o])``,
averaged over the window's H control steps; it is in the units of the residual's output
(N or N m for a force residual; m or rad, and per second, for state and neural ones), not
of qpos. For each horizon:

- ``spread``: the mean of that uncertainty over the windows;
- ``rmse``: the qpos RMSE at step H of the ensemble mean (the model's error above);
- ``spearman``: the rank correlation, across windows, of a window's spread and its own
  qpos RMSE at step H (over the recorded entries): does the model know where it is wrong?
  NaN when fewer than 3 windows or when either side is constant;
- ``ratio``: ``rmse / spread``, qpos error per unit of spread. Its units differ between
  residual kinds, so compare it across horizons of one model, not between models.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hybridsim._src.errors import DataFileError, ShapeError
from hybridsim._src.loader import Scene
from hybridsim._src.residual import data as rdata
from hybridsim._src.residual.evaluate import rollout_rmse
from hybridsim._src.residual.fit import Fitted
from hybridsim._src.residual.model import Residual, hybrid_rollout

DEFAULT_HORIZONS = (1, 5, 10, 25, 50)


@dataclasses.dataclass(frozen=True)
class Calibration:
    """The ensemble's spread against its error, one entry per horizon (module docstring)."""

    model: str
    """``"hybrid"`` or ``"neural"``: the model whose ensemble this is."""
    ensemble: int
    """Ensemble members E (> 1)."""
    spread: tuple[float, ...]
    """Mean predicted spread over the windows (units of the residual's output)."""
    rmse: tuple[float, ...]
    """qpos RMSE at step H of the ensemble mean (m, rad)."""
    spearman: tuple[float, ...]
    """Rank correlation across windows of spread and error (NaN: not defined)."""
    ratio: tuple[float, ...]
    """``rmse / spread``."""
    window_spread: tuple[np.ndarray, ...]
    """(W_h,) float64 per horizon: each window's spread."""
    window_error: tuple[np.ndarray, ...]
    """(W_h,) float64 per horizon: each window's qpos RMSE at step H (m, rad)."""

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "ensemble": self.ensemble,
            "spread": _floats(self.spread),
            "rmse": _floats(self.rmse),
            "spearman": _floats(self.spearman),
            "ratio": _floats(self.ratio),
        }


@dataclasses.dataclass(frozen=True)
class ModelReport:
    """Open-loop error against horizon of physics, the hybrid and the pure-neural model."""

    horizons: tuple[int, ...]
    """Open-loop horizons H (control steps)."""
    windows: tuple[int, ...]
    """Rollout windows scored at each horizon."""
    physics: tuple[float, ...]
    """qpos RMSE at step H of nominal physics (m, rad)."""
    hybrid: tuple[float, ...] | None
    """qpos RMSE at step H of the hybrid; None when the fitted model is pure-neural."""
    neural: tuple[float, ...] | None
    """qpos RMSE at step H of the pure-neural model; None when not given."""
    calibration: Calibration | None
    """The ensemble's calibration; None when not available (``calibration_note`` says why)."""
    calibration_note: str
    """Why there is no calibration ("" when there is one)."""

    @property
    def gap_closure(self) -> tuple[float, ...]:
        """``1 - model / physics`` per horizon for the hybrid (the neural model when there
        is no hybrid; NaN when there is neither)."""
        best = self.hybrid if self.hybrid is not None else self.neural
        if best is None:
            return tuple(float("nan") for _ in self.horizons)
        return tuple(
            1.0 - m / p if p > 0 else float("nan") for m, p in zip(best, self.physics, strict=True)
        )

    def to_json(self) -> dict:
        """The ``hybridsim eval model --json`` object (NaN written as null)."""
        return {
            "horizons": list(self.horizons),
            "windows": list(self.windows),
            "physics": _floats(self.physics),
            "hybrid": _floats(self.hybrid) if self.hybrid is not None else None,
            "neural": _floats(self.neural) if self.neural is not None else None,
            "calibration": self.calibration.to_json() if self.calibration else None,
            "gap_closure": dict(
                zip(map(str, self.horizons), _floats(self.gap_closure), strict=True)
            ),
        }


def evaluate_model(
    scene: Scene,
    episodes: rdata.Episodes,
    fitted: Fitted,
    neural: Fitted | None = None,
    horizons: Sequence[int] = DEFAULT_HORIZONS,
    precision: str = "float32",
) -> ModelReport:
    """Open-loop error against horizon and calibration (module docstring).

    ``fitted`` is the hybrid (its residual plus its sysid parameters); when its residual
    is pure-neural it is the neural model and there is no hybrid. ``neural`` is a
    pure-neural model to compare with. ``precision`` is the residual's inference precision
    (``hybrid_rollout``'s). Raises DataFileError for horizons outside ``1 ..
    episodes.longest``, ShapeError for models that do not fit the data or each other."""
    horizons = tuple(int(h) for h in horizons)
    _check_inputs(episodes, fitted, neural, horizons)
    windows = tuple(len(rdata.window_starts(episodes, h, h)[0]) for h in horizons)
    physics = tuple(rollout_rmse(scene, episodes, h) for h in horizons)
    own = fitted.residual
    own_is_neural = own is not None and own.config.kind == "neural"
    params = None if own_is_neural else (fitted.sysid or None)
    own_rmse, calibration, note = _own_model(
        scene, episodes, own, params, horizons, precision, "neural" if own_is_neural else "hybrid"
    )
    if neural is not None:
        neural_rmse = tuple(
            rollout_rmse(scene, episodes, h, neural.residual, precision=precision) for h in horizons
        )
    else:
        neural_rmse = own_rmse if own_is_neural else None
    return ModelReport(
        horizons=horizons,
        windows=windows,
        physics=physics,
        hybrid=None if own_is_neural else own_rmse,
        neural=neural_rmse,
        calibration=calibration,
        calibration_note=note,
    )


def _own_model(scene, episodes, residual, params, horizons, precision, name):
    """Error per horizon of the fitted model and, for an ensemble, its calibration."""
    if residual is None:  # system identification only: physics with the fitted parameters
        rmse = tuple(rollout_rmse(scene, episodes, h, params=params) for h in horizons)
        return rmse, None, "the fitted model has no residual (system identification only)"
    cols = [
        window_errors(scene, episodes, h, residual, params, precision=precision) for h in horizons
    ]
    rmse = tuple(float(np.sqrt(np.mean(sq))) for sq, _ in cols)
    ensemble = residual.config.ensemble
    if ensemble < 2:
        return rmse, None, "single-member ensemble; fit with --ensemble 2 or more"
    errors = tuple(np.sqrt(np.mean(sq, axis=1)) for sq, _ in cols)
    spreads = tuple(s for _, s in cols)
    mean_spread = tuple(float(np.mean(s)) for s in spreads)
    calibration = Calibration(
        model=name,
        ensemble=ensemble,
        spread=mean_spread,
        rmse=rmse,
        spearman=tuple(spearman(s, e) for s, e in zip(spreads, errors, strict=True)),
        ratio=tuple(
            r / s if s > 0 else float("nan") for r, s in zip(rmse, mean_spread, strict=True)
        ),
        window_spread=spreads,
        window_error=errors,
    )
    return rmse, calibration, ""


def window_errors(
    scene: Scene,
    episodes: rdata.Episodes,
    horizon: int,
    residual: Residual,
    params: dict[str, np.ndarray] | None = None,
    precision: str = "float32",
) -> tuple[np.ndarray, np.ndarray]:
    """``(squared error (W, n_obs), spread (W,))`` of the hybrid (or neural) model's
    open-loop rollouts: the squared qpos error at step ``horizon`` of each window's
    recorded entries (m^2, rad^2) and ``hybrid_rollout``'s uncertainty of the window.
    The windows, stepping and histories are ``evaluate``'s, so that
    ``sqrt(mean(squared error))`` is its ``rollout_rmse``."""
    from hybridsim._src import sim

    scene, substeps = rdata.stepping(scene, episodes)
    e, s = rdata.window_starts(episodes, horizon, horizon)
    w = len(e)
    hist = rdata.histories(episodes, residual.config.history)[e, s]
    ctrl = rdata.gather_steps(episodes.ctrl, e, s, horizon)
    fields = None
    if params and residual.config.kind != "neural":
        fields = {k: np.broadcast_to(v, (w, *np.shape(v))) for k, v in params.items()}
    model = sim.make_model(scene, w, backend="c", substeps=substeps, params=fields)
    state = sim.init(model, qpos=episodes.qpos[e, s], qvel=episodes.qvel[e, s])
    out = hybrid_rollout(model, residual, state, ctrl, history=hist, precision=precision)
    pred = np.asarray(out.traj.qpos, np.float64)[:, -1]
    err = (pred - episodes.qpos[e, s + horizon])[:, episodes.qpos_observed]
    return err**2, np.asarray(out.uncertainty, np.float64)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two (W,) samples (``ranking.spearman``: average ranks
    for ties); NaN when W < 3 or either sample is constant."""
    from hybridsim._src.evaluation import ranking

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float("nan") if len(a) < 3 else ranking.spearman(a, b)


def _check_inputs(episodes, fitted: Fitted, neural: Fitted | None, horizons) -> None:
    if not horizons:
        raise DataFileError("give at least one horizon")
    bad = [h for h in horizons if h < 1 or h > episodes.longest]
    if bad:
        raise DataFileError(
            f"horizons {bad} must be between 1 and the longest episode's "
            f"{episodes.longest} control steps"
        )
    own = fitted.residual
    if neural is not None:
        if own is not None and own.config.kind == "neural":
            raise ShapeError(
                "the fitted model is itself pure-neural (it is the neural row); give a hybrid "
                "residual with the neural model beside it"
            )
        if neural.residual is None or neural.residual.config.kind != "neural":
            kind = "none" if neural.residual is None else neural.residual.config.kind
            raise ShapeError(f"the neural model must be a 'neural' residual, got kind {kind!r}")
    for res in (own, neural.residual if neural is not None else None):
        if res is not None and abs(res.dims.control_dt - episodes.control_dt) > 1e-12:
            raise ShapeError(
                f"a residual fitted at control_dt={res.dims.control_dt:g} s cannot be scored "
                f"on data recorded at control_dt={episodes.control_dt:g} s"
            )


def _floats(xs) -> list[float | None]:
    """Floats for JSON: NaN and infinities as None."""
    return [float(x) if np.isfinite(x) else None for x in xs]


def plot_model_report(path: str | Path, report: ModelReport, title: str) -> Path:
    """Writes a two-panel PNG (atomically): open-loop error against horizon (log y, one
    line per model) and, per window, the ensemble's spread against its error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hybridsim._src.io import atomic_path

    curves = {"physics": report.physics, "hybrid": report.hybrid, "neural": report.neural}
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4), dpi=120)
    for name, ys in curves.items():
        if ys is not None:
            ax.plot(report.horizons, ys, marker="o", label=name)
    ax.set_xlabel("open-loop horizon (control steps)")
    ax.set_ylabel("qpos RMSE at the horizon")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    cal = report.calibration
    if cal is None:
        note = f"calibration not available:\n{report.calibration_note}"
        bx.text(0.5, 0.5, note, ha="center", va="center", wrap=True, transform=bx.transAxes)
        bx.set_axis_off()
    else:
        for h, s, e, rho in zip(
            report.horizons, cal.window_spread, cal.window_error, cal.spearman, strict=True
        ):
            bx.scatter(s, e, s=10, alpha=0.6, label=f"H={h} (Spearman {rho:.2f})")
        bx.set_xlabel(
            f"{cal.model} ensemble spread (residual output units, {cal.ensemble} members)"
        )
        bx.set_ylabel("window qpos RMSE at the horizon")
        bx.set_xscale("log")
        bx.set_yscale("log")
        bx.set_title("uncertainty against error, per window")
        bx.grid(True, alpha=0.3)
        bx.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
