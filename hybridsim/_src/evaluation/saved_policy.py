"""Saved policy folders: a Flax NNX module checkpointed with orbax and how to build it.

A folder holds::

    policy.json   {"format": "hybridsim-policy-1",
                   "module": "pkg.mod:ClassName" or "module.py:ClassName",
                   "kwargs": {...},                      # JSON constructor arguments
                   "obs": ["qpos", "qvel"],             # Observation fields, in order
                   "task": "hybridsim/Reach-v0"}        # only with "obs": ["task"]
    module.py     the class's source, when it was given as FILE.py:ClassName
    state/        the orbax checkpoint of the module's ``nnx.State``

Loading builds ``ClassName(**kwargs, rngs=nnx.Rngs(0))`` (``rngs`` only when the
constructor takes it) abstractly, restores the state into it and wraps it as a policy:
``policy(obs) = module(concat([obs.qpos, obs.qvel, ...], -1)) -> ctrl (B, nu)``, the
fields listed in ``obs`` concatenated along the last axis (``time (B,)`` as one column).
The module runs jitted, on NumPy and traced observations alike, so the policy works on
every backend.

A *task policy* has ``"obs": ["task"]`` (and usually ``"task"``, the registered task id
it was trained on): its module maps the task env's observation ``(B, observation_size)``
float32 to an action ``(B, action_size)`` in [-1, 1]. Loaded, it is called with that
array directly and ``is_task_policy`` is True; ``TaskWorld`` feeds it the env observation
and steps the env with its output. APG, SHAC and PPO save their policies this way.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hybridsim._src.errors import PolicyError

FORMAT = "hybridsim-policy-1"
OBS_FIELDS = ("qpos", "qvel", "time", "sensordata")
TASK_OBS = "task"
"""The ``obs`` entry of a task policy: the env observation, whole."""


def _check_build(build: dict[str, Any], where: str) -> None:
    if not isinstance(build.get("module"), str) or ":" not in build["module"]:
        raise PolicyError(f"{where}: 'module' must be 'pkg.mod:ClassName' or 'FILE.py:ClassName'")
    if not isinstance(build.get("kwargs", {}), dict):
        raise PolicyError(f"{where}: 'kwargs' must be a JSON object")
    obs = build.get("obs")
    if obs == [TASK_OBS]:
        if not isinstance(build.get("task", ""), str):
            raise PolicyError(f"{where}: 'task' must be a registered task id string")
        return
    if not (isinstance(obs, list) and obs and all(o in OBS_FIELDS for o in obs)):
        raise PolicyError(
            f"{where}: 'obs' must be [{TASK_OBS!r}] (a task policy) or a non-empty list of "
            f"{list(OBS_FIELDS)}"
        )


def _construct(cls: type, kwargs: dict[str, Any]):
    from flax import nnx

    takes_rngs = "rngs" in inspect.signature(cls.__init__).parameters
    return cls(**kwargs, rngs=nnx.Rngs(0)) if takes_rngs else cls(**kwargs)


def save_policy(path: str | Path, module: Any, build: dict[str, Any]) -> Path:
    """Writes the NNX ``module`` to the folder ``path`` with ``build`` (``module``,
    ``kwargs``, ``obs`` and, for a task policy, ``task`` as in the module doc), atomically:
    a temporary folder renamed onto ``path``, which must not exist or be empty. A
    ``FILE.py:ClassName`` module is copied into the folder so that the folder is
    self-contained."""
    import orbax.checkpoint as ocp
    from flax import nnx

    path = Path(path)
    _check_build(build, "save_policy")
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise PolicyError(f"{str(path)!r} exists and is not an empty folder")
    build = {"format": FORMAT, "kwargs": {}, **build}
    source, _, cls_name = build["module"].rpartition(":")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        if source.endswith(".py"):
            shutil.copyfile(source, tmp / "module.py")
            build["module"] = f"module.py:{cls_name}"
        with ocp.StandardCheckpointer() as ckpt:
            ckpt.save((tmp / "state").absolute(), nnx.state(module))
        (tmp / "policy.json").write_text(json.dumps(build, indent=2))
        if path.exists():
            path.rmdir()
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return path


@dataclasses.dataclass(frozen=True, eq=False)
class SavedPolicy:
    """A loaded NNX module as ``policy(obs) -> ctrl (B, nu)``, or for a task policy
    ``policy(obs (B, observation_size)) -> action (B, action_size)`` (module doc)."""

    path: str
    obs: tuple[str, ...]
    _apply: Any  # jitted (state, x (B, d)) -> (B, nu)
    _state: Any
    task: str | None = None
    """The registered task id a task policy was trained on (None: not recorded)."""

    @property
    def is_task_policy(self) -> bool:
        """True when the policy takes the task env's observation array (``"obs": ["task"]``)."""
        return self.obs == (TASK_OBS,)

    def __call__(self, obs):
        import jax.numpy as jnp

        if self.is_task_policy:
            if hasattr(obs, "qpos"):
                raise PolicyError(
                    f"{self.path!r} is a task policy (it reads a task env's observation): run "
                    "it in a task (TaskWorld, --task)"
                )
            return self._apply(self._state, jnp.asarray(obs, jnp.float32))
        parts = []
        for name in self.obs:
            x = jnp.asarray(getattr(obs, name))
            parts.append(x[:, None] if x.ndim == 1 else x)
        return self._apply(self._state, jnp.concatenate(parts, axis=-1))


def load_policy_folder(path: str | Path) -> SavedPolicy:
    """The policy saved in folder ``path`` by ``save_policy``; PolicyError when the folder
    is not one, its class does not import, or its checkpoint does not fit the class."""
    import jax
    import orbax.checkpoint as ocp
    from flax import nnx

    from hybridsim._src.evaluation.policy_eval import load_object

    path = Path(path)
    meta_path = path / "policy.json"
    if not meta_path.is_file():
        raise PolicyError(f"policy folder {str(path)!r} has no policy.json")
    try:
        build = json.loads(meta_path.read_text())
    except json.JSONDecodeError as e:
        raise PolicyError(f"{str(meta_path)!r} is not valid JSON: {e}") from None
    if build.get("format") != FORMAT:
        raise PolicyError(
            f"{str(meta_path)!r}: format {build.get('format')!r}, expected {FORMAT!r}"
        )
    _check_build(build, str(meta_path))
    source, _, cls_name = build["module"].rpartition(":")
    if source.endswith(".py") and not Path(source).is_absolute():
        source = str(path / source)
    cls = load_object(f"{source}:{cls_name}", "policy class")
    try:
        abstract = nnx.eval_shape(lambda: _construct(cls, build.get("kwargs", {})))
        graphdef, abstract_state = nnx.split(abstract)
        with ocp.StandardCheckpointer() as ckpt:
            state = ckpt.restore((path / "state").absolute(), abstract_state)
    except Exception as e:  # orbax and the user's class raise many types
        raise PolicyError(
            f"policy folder {str(path)!r} does not load: {type(e).__name__}: {e}".splitlines()[0]
        ) from None

    @jax.jit
    def apply(state, x):
        return nnx.merge(graphdef, state)(x)

    return SavedPolicy(str(path), tuple(build["obs"]), apply, state, build.get("task"))
