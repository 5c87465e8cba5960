"""One frozen pytree dataclass base for every hybridsim state and model type.

A field is a pytree leaf (traced by JAX) unless it is declared with
``static_field()``; static fields go into the treedef and must be hashable.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import jax

T = TypeVar("T")

_STATIC = "hybridsim_static"


def static_field(**kwargs: Any) -> Any:
    """A dataclass field stored in the treedef (not traced, must be hashable)."""
    metadata = dict(kwargs.pop("metadata", {}) or {})
    metadata[_STATIC] = True
    return dataclasses.field(metadata=metadata, **kwargs)


def pytree_dataclass(cls: type[T]) -> type[T]:
    """Makes ``cls`` a frozen dataclass registered as a JAX pytree."""
    cls = dataclasses.dataclass(frozen=True, eq=False)(cls)
    fields = dataclasses.fields(cls)
    data = [f.name for f in fields if not f.metadata.get(_STATIC, False)]
    meta = [f.name for f in fields if f.metadata.get(_STATIC, False)]
    jax.tree_util.register_dataclass(cls, data_fields=data, meta_fields=meta)

    def replace(self: T, **changes: Any) -> T:
        return dataclasses.replace(self, **changes)

    cls.replace = replace  # type: ignore[attr-defined]
    return cls
