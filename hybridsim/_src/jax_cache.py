"""JAX's persistent compilation cache, so a second run skips XLA compilation."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """``$HYBRIDSIM_CACHE_DIR`` or ``~/.cache/hybridsim``."""
    root = os.environ.get("HYBRIDSIM_CACHE_DIR")
    if root:
        return Path(root).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hybridsim"


def enable_compilation_cache(path: str | Path | None = None) -> Path:
    """Turns on JAX's persistent compilation cache under ``path`` (default:
    ``default_cache_dir() / "jax"``) and returns the folder used."""
    import jax

    folder = Path(path) if path is not None else default_cache_dir() / "jax"
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder
