"""Exported JAX programs on disk, so a second process skips Python tracing too.

JAX's persistent compilation cache (``hs.enable_compilation_cache()``) saves the XLA
compile, but a new process still traces MJX in Python before it can look the program up:
4.7-12 s per scene on a CPU. ``cached_jit`` removes that: the first process traces the
function once with ``jax.export``, writes the serialized StableHLO beside the compilation
cache, and every later process with the same program key deserializes it (milliseconds)
and runs it, its executable coming from the compilation cache.

How a call runs (``CachedJit.__call__``):

1. The positional and non-static keyword arguments are flattened to array leaves; the
   static keyword arguments (``static_argnames``) are bound, as in ``jax.jit``.
2. Plain ``jax.jit(fn, static_argnames=...)`` runs instead when any leaf is a JAX tracer
   (the call is inside ``jit``/``grad``/``vmap``: exported programs carry no derivative
   rules), when ``HYBRIDSIM_EXPORT=0``, when the persistent compilation cache is off,
   when a static argument has no stable fingerprint, or when ``jax.export`` fails on the
   function (e.g. FFI custom calls). Each reason but the cache being off (the default
   until ``hs.enable_compilation_cache()``) prints one line, once per program and reason.
3. Otherwise the program of these static values and input shapes is taken from the
   in-process memo, or else from ``$HYBRIDSIM_CACHE_DIR/exported/<name>-<key>.bin``
   (``export_dir()``), or else exported and written there (atomically). A file that does
   not load is deleted and replaced.

The exported function takes and returns flat lists of leaves; the input tree is rebuilt
inside it, the output tree is pickled beside the serialized program. The key hashes:
the name; the static arguments' fingerprints (``fingerprint``); the pickled input
treedef (static pytree fields, e.g. an ``mjx.Model``'s numpy constants, are in it); each
leaf's shape, dtype, weak type and sharding; the platform, device count and x64 flag;
the versions of jax, jaxlib, mujoco, mujoco-mjx and flax; and a digest of hybridsim's own
source files, so editing hybridsim invalidates every stored program. Code a caller brings
from outside hybridsim (e.g. a hook class) is keyed only by its fingerprint.

The files hold pickles: keep the cache folder private to the user who runs hybridsim.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import os
import pickle
import sys
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import mujoco
import numpy as np

from hybridsim._src.io import atomic_path
from hybridsim._src.jax_cache import default_cache_dir

ENV_SWITCH = "HYBRIDSIM_EXPORT"
"""Set to ``0`` to run every ``cached_jit`` program through plain ``jax.jit``."""

_FORMAT = "hybridsim-exported-v1"


@dataclasses.dataclass(frozen=True)
class ProgramStats:
    """Counts since the process started, over every ``cached_jit`` program."""

    exported: int
    """Programs traced with ``jax.export`` and written to disk."""
    loaded: int
    """Programs deserialized from disk (no Python tracing)."""
    replaced: int
    """Stored files that did not load and were deleted (then re-exported)."""
    fallback: int
    """Calls that ran through plain ``jax.jit``."""


_counts = {"exported": 0, "loaded": 0, "replaced": 0, "fallback": 0}


def stats() -> ProgramStats:
    """The counters of every ``cached_jit`` program in this process."""
    return ProgramStats(**_counts)


@dataclasses.dataclass(frozen=True)
class _Program:
    call: Callable[..., Any]
    """``jax.jit(exported.call)``: flat input leaves -> flat output leaves."""
    out_tree: Any
    """The ``PyTreeDef`` that rebuilds ``fn``'s output from the leaves."""


class _NoExport(Exception):
    """This program runs through plain ``jax.jit``; the message says why."""

    def __init__(self, reason: str, say: bool = True):
        super().__init__(reason)
        self.say = say


class CachedJit:
    """``jax.jit(fn, static_argnames=...)`` whose programs persist across processes.

    Build it with ``cached_jit``. Positional arguments and non-static keyword arguments
    are pytrees of arrays; static keyword arguments must be hashable (they key the
    in-process memo, as in ``jax.jit``) and have a stable ``fingerprint`` (they key the
    file on disk).
    """

    def __init__(self, fn: Callable[..., Any], name: str, static_argnames: Sequence[str]):
        self.fn = fn
        self.name = name
        self.static_argnames = tuple(static_argnames)
        self.jitted = jax.jit(fn, static_argnames=self.static_argnames)
        self._programs: dict[Any, _Program | str] = {}
        self._said: set[str] = set()
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        static = tuple((k, kwargs.pop(k)) for k in self.static_argnames if k in kwargs)
        leaves, in_tree = jax.tree.flatten((args, kwargs))
        if any(isinstance(x, jax.core.Tracer) for x in leaves):
            self._say_once("traced by jit/grad/vmap (exported programs have no derivatives)")
            return self._jit(args, kwargs, static)
        if os.environ.get(ENV_SWITCH, "1") == "0":
            self._say_once(f"{ENV_SWITCH}=0")
            return self._jit(args, kwargs, static)
        folder = export_dir()
        signature = (folder, static, in_tree, tuple(_leaf_spec(x) for x in leaves))
        program = self._programs.get(signature)
        if program is None:
            try:
                program = self._load_or_export(folder, static, in_tree, signature[-1])
            except _NoExport as why:
                program = str(why)
                if why.say:
                    self._say_once(program)
            self._programs[signature] = program
        if isinstance(program, str):
            return self._jit(args, kwargs, static)
        return jax.tree.unflatten(program.out_tree, program.call(*leaves))

    def _jit(self, args: tuple, kwargs: dict, static: tuple) -> Any:
        _counts["fallback"] += 1
        return self.jitted(*args, **kwargs, **dict(static))

    def _say_once(self, reason: str) -> None:
        if reason not in self._said:
            self._said.add(reason)
            print(f"[hybridsim] {self.name}: plain jax.jit, {reason}", file=sys.stderr)

    def _load_or_export(
        self, folder: Path | None, static: tuple, in_tree: Any, specs: tuple
    ) -> _Program:
        if folder is None:
            raise _NoExport("the persistent compilation cache is off", say=False)
        key = self._key(static, in_tree, specs)
        path = folder / f"{self.name}-{key[:40]}.bin"
        if path.exists():
            program = self._load(path, key)
            if program is not None:
                return program
        return self._export(path, key, static, in_tree, specs)

    def _key(self, static: tuple, in_tree: Any, specs: tuple) -> str:
        h = hashlib.sha256()
        for part in (_FORMAT, self.name, _environment()):
            h.update(part.encode() + b"\0")
        for name, value in static:
            fp = fingerprint(value)
            if fp is None:
                # A policy (a Python function) is expected to run through plain jit.
                raise _NoExport(
                    f"static argument {name}={value!r} has no stable fingerprint",
                    say=not callable(value),
                )
            h.update(f"{name}={fp}".encode() + b"\0")
        try:
            h.update(pickle.dumps(in_tree, protocol=5))
        except Exception as e:
            why = f"the input treedef does not pickle ({type(e).__name__}: {e})"
            raise _NoExport(why) from None
        h.update(repr(specs).encode())
        return h.hexdigest()

    def _load(self, path: Path, key: str) -> _Program | None:
        try:
            with open(path, "rb") as f:
                fmt, stored_key, blob, out_tree = pickle.load(f)
            if (fmt, stored_key) != (_FORMAT, key):
                raise ValueError("format or key does not match")
            exported = jax.export.deserialize(bytearray(blob))
        except Exception as e:
            print(
                f"[hybridsim] {self.name}: stored program {path} does not load "
                f"({type(e).__name__}: {e}); exporting it again",
                file=sys.stderr,
            )
            _counts["replaced"] += 1
            path.unlink(missing_ok=True)
            return None
        _counts["loaded"] += 1
        return _Program(jax.jit(exported.call), out_tree)

    def _export(self, path: Path, key: str, static: tuple, in_tree: Any, specs: tuple):
        out_trees = []

        def flat_fn(*flat_args):
            args, kwargs = jax.tree.unflatten(in_tree, flat_args)
            out_leaves, out_tree = jax.tree.flatten(self.fn(*args, **kwargs, **dict(static)))
            out_trees.append(out_tree)
            return out_leaves

        shapes = [
            jax.ShapeDtypeStruct(shape, dtype, weak_type=weak, sharding=sharding)
            for shape, dtype, weak, sharding in specs
        ]
        try:
            blob = jax.export.export(jax.jit(flat_fn))(*shapes).serialize()
            payload = pickle.dumps((_FORMAT, key, bytes(blob), out_trees[0]), protocol=5)
        except Exception as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise _NoExport(f"jax.export failed ({type(e).__name__}: {first[:200]})") from None
        with atomic_path(path, suffix=".bin") as tmp:
            tmp.write_bytes(payload)
        _counts["exported"] += 1
        # Run the deserialized program, as a later process will: the executable this
        # process compiles is then the one the persistent cache hands to that process.
        return _Program(jax.jit(jax.export.deserialize(blob).call), out_trees[0])


def cached_jit(
    fn: Callable[..., Any] | None = None, *, name: str, static_argnames: Sequence[str] = ()
) -> Any:
    """``jax.jit(fn, static_argnames=...)`` whose traced programs persist on disk.

    Use as ``@cached_jit(name="mjx_rollout", static_argnames=("impl",))``. ``name``
    (letters, digits, ``_``, ``-``) names the stored files and the log lines. Results
    equal ``jax.jit``'s; see the module docstring for when it falls back to ``jax.jit``.
    """
    if fn is None:
        return functools.partial(cached_jit, name=name, static_argnames=static_argnames)
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"cached_jit name must be letters, digits, _ or -, got {name!r}")
    return CachedJit(fn, name, static_argnames)


def export_dir() -> Path | None:
    """``$HYBRIDSIM_CACHE_DIR/exported`` (default ``~/.cache/hybridsim/exported``), or
    None while JAX's persistent compilation cache is off: a stored program saves the
    tracing, the compilation cache the XLA compile; one is little use without the other."""
    if not jax.config.jax_compilation_cache_dir:
        return None
    return default_cache_dir() / "exported"


def _leaf_spec(x: Any) -> tuple:
    aval = jax.typeof(x)
    return (aval.shape, aval.dtype, aval.weak_type, getattr(x, "sharding", None))


_model_digests: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def fingerprint(value: Any) -> str | None:
    """A string that is equal across processes exactly when ``value`` is, or None.

    Handles None, bool, int, float, str, enums, tuples and lists of these, numpy arrays,
    ``mujoco.MjModel`` (SHA-256 of its binary, memoized per object) and dataclass
    instances (class path and field fingerprints). Anything else has none.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return f"{type(value).__name__}:{value!r}"
    if isinstance(value, enum.Enum):
        return f"{_class_path(type(value))}.{value.name}"
    if isinstance(value, tuple | list):
        parts = [fingerprint(v) for v in value]
        return None if None in parts else f"{type(value).__name__}({','.join(parts)})"
    if isinstance(value, np.ndarray):
        digest = hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()
        return f"ndarray:{value.dtype}{value.shape}:{digest}"
    if isinstance(value, mujoco.MjModel):
        digest = _model_digests.get(value)
        if digest is None:
            buf = np.empty(mujoco.mj_sizeModel(value), np.uint8)
            mujoco.mj_saveModel(value, None, buf)
            digest = _model_digests[value] = hashlib.sha256(buf).hexdigest()
        return f"MjModel:{digest}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        parts = [fingerprint(getattr(value, f.name)) for f in fields]
        if None in parts:
            return None
        body = ",".join(f"{f.name}={p}" for f, p in zip(fields, parts, strict=True))
        return f"{_class_path(type(value))}({body})"
    return None


def _class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


@functools.cache
def _environment() -> str:
    """Everything outside the arguments that changes the traced program."""
    from importlib.metadata import PackageNotFoundError, version

    versions = []
    for package in ("jax", "jaxlib", "mujoco", "mujoco-mjx", "flax"):
        try:
            versions.append(f"{package}={version(package)}")
        except PackageNotFoundError:
            versions.append(f"{package}=absent")
    devices = jax.devices()
    return ";".join(
        [
            *versions,
            f"platform={devices[0].platform}",
            f"devices={len(devices)}",
            f"x64={jax.config.jax_enable_x64}",
            f"hybridsim={_source_digest()}",
        ]
    )


def _source_digest() -> str:
    """SHA-256 over hybridsim's ``.py`` files (path and bytes), in path order."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()
