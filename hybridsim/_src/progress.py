"""Progress lines on stderr for work that takes more than a few seconds."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager


class Progress:
    """Prints ``[hybridsim] <phase> ... done (1.2 s)`` lines to stderr."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.start = time.perf_counter()

    def say(self, message: str) -> None:
        if self.enabled:
            print(
                f"[hybridsim {time.perf_counter() - self.start:6.1f}s] {message}",
                file=sys.stderr,
                flush=True,
            )

    @contextmanager
    def phase(self, message: str):
        t0 = time.perf_counter()
        self.say(f"{message} ...")
        yield
        self.say(f"{message}: done in {time.perf_counter() - t0:.1f} s")


def quiet_warp() -> None:
    """Stops Warp from printing a line per kernel module it loads."""
    import warp as wp

    wp.config.log_level = max(wp.config.log_level, wp.LOG_WARNING)
