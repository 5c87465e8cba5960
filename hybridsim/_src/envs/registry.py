"""Task names -> factories. Task modules are imported on first use."""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from hybridsim._src.envs.base import Env, EnvConfig
from hybridsim._src.errors import EnvError

# name -> (module, class name, multi-agent)
_TASKS: dict[str, tuple[str, str, bool]] = {
    "CartpoleSwingup": ("hybridsim._src.envs.tasks.cartpole", "CartpoleSwingup", False),
    "CoopPush": ("hybridsim._src.envs.tasks.coop_push", "CoopPush", True),
    "Push": ("hybridsim._src.envs.tasks.push", "Push", False),
    "QuadrupedWalk": ("hybridsim._src.envs.tasks.quadruped", "QuadrupedWalk", False),
    "Reach": ("hybridsim._src.envs.tasks.reach", "Reach", False),
}


def _module(name: str) -> tuple[Any, str]:
    if name not in _TASKS:
        raise EnvError(f"unknown task {name!r}; registered tasks: {registered()}")
    mod, cls, _ = _TASKS[name]
    return importlib.import_module(mod), cls


def registered() -> tuple[str, ...]:
    """Every registered task name, single- and multi-agent, sorted."""
    return tuple(sorted(_TASKS))


def multi_agent_tasks() -> tuple[str, ...]:
    """Names of the multi-agent tasks (per-agent observations, actions and rewards)."""
    return tuple(sorted(n for n, (_, _, ma) in _TASKS.items() if ma))


def single_agent_tasks() -> tuple[str, ...]:
    """Names of the single-agent tasks."""
    return tuple(sorted(n for n, (_, _, ma) in _TASKS.items() if not ma))


def default_config(name: str) -> EnvConfig:
    """The frozen default config of task ``name``."""
    mod, _ = _module(name)
    return mod.default_config()


def make(name: str, config: EnvConfig | None = None, **overrides: Any) -> Env:
    """Builds task ``name`` from ``config`` (default: ``default_config(name)``) with
    ``overrides`` of its fields, e.g. ``make("Reach", impl="warp", episode_length=100)``."""
    mod, cls = _module(name)
    config = mod.default_config() if config is None else config
    if overrides:
        known = {f.name for f in dataclasses.fields(config)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise EnvError(
                f"task {name!r} has no config field(s) {unknown}; its fields: {sorted(known)}"
            )
        config = dataclasses.replace(config, **overrides)
    return getattr(mod, cls)(config)


def register(name: str, module: str, cls: str, multi_agent: bool = False) -> None:
    """Adds a task: ``module`` defines ``default_config()`` and the Env subclass ``cls``
    whose constructor takes that config."""
    if name in _TASKS:
        raise EnvError(f"task {name!r} is already registered")
    _TASKS[name] = (module, cls, multi_agent)
