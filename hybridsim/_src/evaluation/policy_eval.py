"""Policies and scores from specs, initial states, and closed-loop evaluation with
confidence intervals.

A policy is ``policy(obs: Observation) -> ctrl (B, nu)``; a score is
``score(traj) -> (B,)`` (higher is better) on the closed-loop trajectory. Specs:

- ``FILE.py:NAME``: attribute ``NAME`` of the Python file (imported once per path);
- ``module:NAME``: attribute ``NAME`` of an importable module;
- ``DIR``: a saved policy folder (``saved_policy.save_policy``).

``NAME`` must be the callable itself (a function, or an object with ``__call__``), not a
factory that makes one.

Every policy runs from the same initial states (common random numbers: differences
between policies are not blurred by different starts). The 95% confidence interval of a
policy's mean score is the seeded percentile bootstrap over its N episodes:
``BOOTSTRAP_RESAMPLES`` resamples of N episodes drawn with replacement, the 2.5th and
97.5th percentiles of their means.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hybridsim._src.errors import HybridsimError, PolicyError
from hybridsim._src.loader import Scene
from hybridsim._src.types import Policy

BOOTSTRAP_RESAMPLES = 2000


# ------------------------------------------------------------------------------- specs


def _import_file(path: Path):
    """The module of a ``.py`` file, executed once per resolved path."""
    path = path.resolve()
    name = "_hybridsim_spec_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_object(spec: str, what: str) -> Any:
    """The object named by ``FILE.py:NAME`` or ``module:NAME``; a PolicyError of one line
    when the file is missing, does not import (syntax error, failing import) or lacks NAME."""
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name:
        raise PolicyError(
            f"{what} {spec!r}: expected FILE.py:NAME or module:NAME"
            + (" or a saved policy folder" if what == "policy" else "")
        )
    try:
        if target.endswith(".py"):
            if not Path(target).is_file():
                raise PolicyError(f"{what} {spec!r}: file {target!r} does not exist")
            module = _import_file(Path(target))
        else:
            module = importlib.import_module(target)
    except HybridsimError:
        raise
    except SyntaxError as e:
        raise PolicyError(
            f"{what} {spec!r}: syntax error in {e.filename}, line {e.lineno}: {e.msg}"
        ) from None
    except Exception as e:  # whatever the user's module raises while importing
        raise PolicyError(f"{what} {spec!r} does not import: {type(e).__name__}: {e}") from None
    if not hasattr(module, name):
        public = sorted(n for n in vars(module) if not n.startswith("_"))
        raise PolicyError(f"{what} {spec!r}: {target!r} has no {name!r}; it defines {public}")
    return getattr(module, name)


def load_policy(spec: str) -> Policy:
    """The policy of ``spec`` (module doc): ``FILE.py:NAME``, ``module:NAME`` or a saved
    policy folder. Raises PolicyError (one line) when it cannot be loaded or is not
    callable."""
    if Path(spec).is_dir():
        from hybridsim._src.evaluation.saved_policy import load_policy_folder

        return load_policy_folder(spec)
    policy = load_object(spec, "policy")
    if not callable(policy):
        raise PolicyError(
            f"policy {spec!r} is a {type(policy).__name__}, not a callable obs -> ctrl (B, nu)"
        )
    return policy


def load_score(spec: str) -> Callable[[Any], np.ndarray]:
    """The score function of ``FILE.py:NAME`` or ``module:NAME``: ``score(traj) -> (B,)``."""
    score = load_object(spec, "score")
    if not callable(score):
        raise PolicyError(f"score {spec!r} is a {type(score).__name__}, not a callable")
    return score


# ----------------------------------------------------------------------- initial states


def initial_states(
    scene: Scene,
    episodes: int,
    seed: int,
    init_data: str | Path | dict[str, np.ndarray] | None = None,
    init_noise: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(qpos0 (N, nq), qvel0 (N, nv))`` for N = ``episodes`` episodes.

    The scene's first keyframe (``qpos0`` without one); or, with ``init_data`` (an
    interchange ``.npz`` path or its loaded dict), states drawn uniformly with replacement
    from the valid steps of its episodes (steps ``0..episode_len``); then, with
    ``init_noise`` = sigma > 0, Gaussian noise of that standard deviation (rad or m) added
    to the positions of every hinge and slide joint. All draws come from ``seed``.
    """
    if not isinstance(episodes, int | np.integer) or episodes < 1:
        raise PolicyError(f"episodes must be a positive int, got {episodes!r}")
    if not (np.isfinite(init_noise) and init_noise >= 0):
        raise PolicyError(f"init noise must be a finite sigma >= 0, got {init_noise!r}")
    rng = np.random.default_rng(seed)
    q0, v0, _ = scene.initial_state()
    if init_data is None:
        qpos = np.repeat(q0[None], episodes, 0)
        qvel = np.repeat(v0[None], episodes, 0)
    else:
        qpos, qvel = _sample_states(scene, init_data, episodes, rng)
    if init_noise > 0:
        adr = _hinge_slide_qpos(scene)
        qpos[:, adr] += init_noise * rng.standard_normal((episodes, len(adr)))
    return qpos, qvel


def _sample_states(scene, data, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    from hybridsim._src.io import load_trajectory

    if not isinstance(data, dict):
        data = load_trajectory(data, scene)
    steps = data["ctrl"].shape[1]
    lens = data.get("episode_len", np.full(data["ctrl"].shape[0], steps))
    episode = np.repeat(np.arange(len(lens)), lens + 1)
    step = np.concatenate([np.arange(int(L) + 1) for L in lens])
    pick = rng.integers(0, len(episode), n)
    e, t = episode[pick], step[pick]
    return np.array(data["qpos"][e, t], np.float64), np.array(data["qvel"][e, t], np.float64)


def _hinge_slide_qpos(scene: Scene) -> np.ndarray:
    import mujoco

    m = scene.mj_model
    kinds = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
    return np.array([m.jnt_qposadr[j] for j in range(m.njnt) if int(m.jnt_type[j]) in kinds], int)


# --------------------------------------------------------------------------- evaluation


@dataclasses.dataclass(frozen=True)
class PolicyResult:
    """One policy's evaluation: its scores over N episodes and their summary."""

    spec: str
    """The policy's spec as given (its name in tables and JSON)."""
    mean: float
    """Mean score over the episodes (NaN when ``error``)."""
    ci95: tuple[float, float]
    """95% bootstrap confidence interval of ``mean`` (module doc)."""
    n: int
    """Episodes scored (0 when ``error``)."""
    scores: np.ndarray
    """(N,) float64 score of every episode."""
    error: str | None = None
    """Why the policy could not be evaluated (it raised, returned a wrong shape or
    non-finite controls); None when it was."""
    wall_s: float = 0.0
    """Seconds the world took to run the policy's episodes (compilation included)."""
    success_rate: float | None = None
    """Fraction of episodes that ended in success, for tasks that report it."""
    worst_qpos: np.ndarray | None = None
    """(T+1, nq) positions of the lowest-scoring episode (for the report's video)."""


def bootstrap_ci(scores: np.ndarray, seed: int) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean of ``scores (N,)`` (module doc)."""
    scores = np.asarray(scores, np.float64)
    if len(scores) < 2:
        return float(scores.mean()), float(scores.mean())
    rng = np.random.default_rng(seed)
    means = scores[rng.integers(0, len(scores), (BOOTSTRAP_RESAMPLES, len(scores)))].mean(1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def evaluate_policies(
    world: Any,
    policies: dict[str, Policy],
    score: Callable[[Any], np.ndarray],
    *,
    steps: int,
    qpos0: np.ndarray,
    qvel0: np.ndarray,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, PolicyResult]:
    """Runs every policy closed loop in ``world`` for ``steps`` control steps from
    ``qpos0 (N, nq)``, ``qvel0 (N, nv)`` and scores its trajectory with ``score``.

    A policy that raises, returns controls of the wrong shape or non-finite controls gets
    a PolicyResult with ``error`` and the others are still evaluated. A score that raises
    or does not return N finite values raises PolicyError: it is wrong for every policy.
    """
    say = progress or (lambda _: None)
    results = {}
    for spec, policy in policies.items():
        say(f"policy {spec}: {len(qpos0)} episodes x {steps} steps in {world.name}")
        t0 = time.perf_counter()
        try:
            traj = world.run(policy, qpos0, qvel0, steps, seed)
        except Exception as e:  # the policy's own failure, reported per policy
            results[spec] = _failed(spec, f"{type(e).__name__}: {e}".splitlines()[0])
            continue
        wall = time.perf_counter() - t0
        bad = ~np.isfinite(np.asarray(traj.ctrl))
        if bad.any():
            ep, t, _ = np.argwhere(bad)[0]
            results[spec] = _failed(
                spec, f"policy returned non-finite controls (episode {ep}, step {t})"
            )
            continue
        scores = _scores(score, traj, len(qpos0))
        success = getattr(traj, "success", None)
        rate = None if success is None or np.all(np.isnan(success)) else float(success.mean())
        results[spec] = PolicyResult(
            spec=spec,
            mean=float(scores.mean()),
            ci95=bootstrap_ci(scores, seed),
            n=len(scores),
            scores=scores,
            wall_s=wall,
            success_rate=rate,
            worst_qpos=np.asarray(traj.qpos[int(np.argmin(scores))]),
        )
    return results


def _failed(spec: str, error: str) -> PolicyResult:
    nan = float("nan")
    return PolicyResult(spec=spec, mean=nan, ci95=(nan, nan), n=0, scores=np.zeros(0), error=error)


def _scores(score, traj, n: int) -> np.ndarray:
    try:
        s = np.asarray(score(traj), np.float64)
    except Exception as e:  # the user's score function failed
        raise PolicyError(f"score raised {type(e).__name__}: {e}".splitlines()[0]) from None
    if s.shape != (n,):
        raise PolicyError(f"score returned shape {s.shape}; expected ({n},), one per episode")
    if not np.all(np.isfinite(s)):
        raise PolicyError(
            f"score returned non-finite values for {np.sum(~np.isfinite(s))} episodes"
        )
    return s
