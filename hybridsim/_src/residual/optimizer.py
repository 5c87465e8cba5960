"""The optimizer of ``fit``, built once per hyper-parameters so that jitted update steps
can take it as a static argument (optax optimizers are closures: two built separately
are different objects, and a jitted function keyed on them would compile twice)."""

from __future__ import annotations

import dataclasses
import functools

import optax


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """AdamW with gradient clipping and a warm-up cosine schedule (hashable)."""

    learning_rate: float
    weight_decay: float
    clip_norm: float
    total_steps: int
    """Optimizer steps of the whole fit (all phases): the length of the schedule."""


@functools.lru_cache(maxsize=32)
def make_optimizer(config: OptimizerConfig) -> optax.GradientTransformation:
    """The optimizer for ``config``; the same object for equal configs.

    A step whose gradient is not finite (MJX can give NaN gradients at some contact states)
    is skipped rather than applied; ten in a row end the fit with an error.
    """
    lr, total = config.learning_rate, config.total_steps
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, lr, max(1, min(100, total // 10)), max(2, total), 0.05 * lr
    )
    return optax.apply_if_finite(
        optax.chain(
            optax.clip_by_global_norm(config.clip_norm),
            optax.adamw(schedule, weight_decay=config.weight_decay),
        ),
        max_consecutive_errors=10,
    )
