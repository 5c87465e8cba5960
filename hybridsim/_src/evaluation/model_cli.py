"""``hybridsim eval model`` (argument parsing only)."""

from __future__ import annotations


def add_parser(sub) -> None:
    sub.add_parser("model", help="(being written)")
