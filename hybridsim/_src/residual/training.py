"""The training loop of ``fit``: one phase at a time, early stopping, checkpoints.

A phase is a fixed sequence of batches (drawn up front from the seed, so a resumed fit
sees the same ones), an update step and a validation score. Every ``eval_every`` steps the
loop scores the parameters, logs, updates the frozen ``EarlyStopping`` state and writes a
checkpoint; the phase's starting point is scored first and competes too, so a phase that
never beats it keeps it (e.g. the zero residual, which equals plain physics).
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hybridsim._src.errors import FitError
from hybridsim._src.residual import checkpoint


@dataclasses.dataclass(frozen=True)
class EarlyStopping:
    """The best validation score of the phase so far and the parameters that scored it."""

    best: float
    best_params: Any
    bad_evals: int = 0
    """Evaluations in a row that did not improve on ``best``."""


def start_early_stopping(params: Any) -> EarlyStopping:
    """Nothing scored yet: any finite score improves on it; ``params`` are kept until then."""
    return EarlyStopping(best=math.inf, best_params=params)


def update_early_stopping(state: EarlyStopping, val: float, params: Any) -> EarlyStopping:
    """Keeps ``params`` when ``val`` improves on the best score, else counts a bad one."""
    if val < state.best:
        return EarlyStopping(best=val, best_params=params, bad_evals=0)
    return dataclasses.replace(state, bad_evals=state.bad_evals + 1)


@dataclasses.dataclass(frozen=True)
class StopRule:
    patience: int
    """Evaluations without improvement before a phase stops."""
    min_fraction: float
    """A phase never stops before this fraction of its steps (warm-up, a noisy start)."""

    def should_stop(self, state: EarlyStopping, step: int, iters: int) -> bool:
        return state.bad_evals >= self.patience and step >= self.min_fraction * iters


@dataclasses.dataclass(frozen=True)
class TrainState:
    """Where a fit is: what a checkpoint holds."""

    trainable: Any
    """``{"net": nnx.State, "theta": {field: log-multipliers}}``"""
    opt_state: Any
    phase: str
    """``"one_step"`` or ``"multi_step"``."""
    step: int
    """Optimizer steps taken in this phase."""
    stopping: EarlyStopping


def initial_state(trainable: Any, opt_state: Any, phase: str) -> TrainState:
    return TrainState(trainable, opt_state, phase, 0, start_early_stopping(trainable))


def next_phase(state: TrainState, phase: str) -> TrainState:
    """The next phase starts from the best parameters of this one (optimizer state kept)."""
    return initial_state(state.stopping.best_params, state.opt_state, phase)


@dataclasses.dataclass(frozen=True)
class Phase:
    """One optimisation phase."""

    name: str
    batches: np.ndarray
    """(iters, b) indices of each step's batch into the phase's training data."""
    eval_every: int
    update: Callable[[Any, Any, np.ndarray], tuple[Any, Any, Any]]
    """``(trainable, opt_state, batch indices) -> (trainable, opt_state, loss)``."""
    score: Callable[[Any], float]
    """Validation score of ``trainable`` (lower is better)."""
    label: str
    """What ``score`` measures, for the progress lines."""

    @property
    def iters(self) -> int:
        return int(self.batches.shape[0])


def run_phase(
    state: TrainState,
    phase: Phase,
    rule: StopRule,
    save: Callable[[TrainState], None],
    say: Callable[[str], None],
) -> tuple[TrainState, list[dict[str, float]]]:
    """Runs ``phase`` from ``state.step`` to its end or an early stop; returns the final
    state and the log entries (``phase``, ``step``, ``train``, ``val``) it made."""
    name = phase.name.replace("_", "-")
    log: list[dict[str, float]] = []
    if state.step == 0:
        val = float(phase.score(state.trainable))
        log.append({"phase": phase.name, "step": 0, "train": math.nan, "val": val})
        say(f"{name} 0: {phase.label} {val:.4g} (starting point)")
        if np.isfinite(val):
            stopping = update_early_stopping(state.stopping, val, state.trainable)
            state = dataclasses.replace(state, stopping=stopping)
    for it in range(state.step, phase.iters):
        trainable, opt_state, loss = phase.update(
            state.trainable, state.opt_state, phase.batches[it]
        )
        state = dataclasses.replace(state, trainable=trainable, opt_state=opt_state, step=it + 1)
        if state.step % phase.eval_every and state.step != phase.iters:
            continue
        val = float(phase.score(state.trainable))
        log.append({"phase": phase.name, "step": state.step, "train": float(loss), "val": val})
        say(f"{name} {state.step}/{phase.iters}: train {float(loss):.4g} {phase.label} {val:.4g}")
        if not np.isfinite(val):
            raise FitError(
                f"{phase.name} validation loss became {val} at step {state.step}; the "
                "gradients or the data are not finite"
            )
        state = dataclasses.replace(
            state, stopping=update_early_stopping(state.stopping, val, state.trainable)
        )
        save(state)
        if rule.should_stop(state.stopping, state.step, phase.iters):
            say("early stop (validation loss stopped improving)")
            break
    return state, log


def save_state(path: Path, fingerprint: str, state: TrainState) -> None:
    """Checkpoints ``state`` under ``path`` (orbax, atomic)."""
    meta = {
        "step": state.step,
        "best": float(state.stopping.best),
        "bad": state.stopping.bad_evals,
        "phase": state.phase,
        "fingerprint": fingerprint,
    }
    arrays = (state.trainable, state.opt_state, state.stopping.best_params)
    checkpoint.save_checkpoint(path, arrays, meta)


def resume(
    path: Path, fingerprint: str, fresh: TrainState, say: Callable[[str], None]
) -> TrainState:
    """The state checkpointed under ``path`` (in the structure of ``fresh``), or ``fresh``
    when there is none; a checkpoint of another configuration or data set is deleted."""
    if not path.exists():
        return fresh
    template = (fresh.trainable, fresh.opt_state, fresh.trainable)
    found = checkpoint.load_checkpoint(path, template, fingerprint)
    if found is None:
        say(f"replacing {path}: it belongs to another configuration or data set")
        shutil.rmtree(path)
        return fresh
    (trainable, opt_state, best_params), meta = found
    state = TrainState(
        trainable,
        opt_state,
        str(meta["phase"]),
        int(meta["step"]),
        EarlyStopping(float(meta["best"]), best_params, int(meta["bad"])),
    )
    say(f"resuming from {path} at step {state.step} ({state.phase})")
    return state
