"""Files of a fit: orbax checkpoints of a running fit, msgpack weights, the fingerprint.

A checkpoint holds ``(trainable, opt_state, best_params)`` and a small JSON ``meta``
(phase, step, early-stopping counters, fingerprint). Orbax writes into a temporary folder
and renames it when complete, so an interruption leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from hybridsim._src.errors import DataFileError
from hybridsim._src.io import atomic_path

# Orbax numbers checkpoints by step, increasing; the multi-step phase counts its steps from
# zero again, so its checkpoints are numbered from this offset.
_PHASE_OFFSET = {"one_step": 0, "multi_step": 10**9}


def fingerprint(config: Any, *arrays: np.ndarray) -> str:
    """SHA-256 of the fit configuration's repr and the data arrays: a checkpoint resumes
    only a fit with the same of both."""
    h = hashlib.sha256(repr(config).encode())
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _manager(path: Path):
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=False)
    return ocp, ocp.CheckpointManager(path.absolute(), options=options)


def save_checkpoint(path: Path, arrays: Any, meta: dict[str, Any]) -> None:
    """An orbax checkpoint of the pytree ``arrays`` and the JSON-able ``meta`` (which names
    its ``phase`` and ``step``), replacing the previous one."""
    ocp, mgr = _manager(path)
    with mgr:
        mgr.save(
            _PHASE_OFFSET[meta["phase"]] + meta["step"],
            args=ocp.args.Composite(
                arrays=ocp.args.StandardSave(arrays), meta=ocp.args.JsonSave(meta)
            ),
            force=True,
        )


def load_checkpoint(path: Path, template: Any, fingerprint: str) -> tuple[Any, dict] | None:
    """The latest checkpoint under ``path`` in the structure of ``template``, or None when
    it belongs to another configuration or data set (its meta names another fingerprint)."""
    ocp, mgr = _manager(path)
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


def save_arrays(path: Path, arrays: Any, meta: dict | None = None) -> None:
    """Writes the leaves of a pytree (and plain metadata) as msgpack, atomically."""
    payload = {"leaves": [np.asarray(x) for x in jax.tree.leaves(arrays)], "meta": meta or {}}
    with atomic_path(path, suffix=".msgpack") as tmp:
        tmp.write_bytes(serialization.msgpack_serialize(payload))


def load_arrays(path: Path, template: Any) -> tuple[Any, dict]:
    """Reads what ``save_arrays`` wrote into the structure of ``template``."""
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
