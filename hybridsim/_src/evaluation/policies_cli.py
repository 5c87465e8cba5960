"""``hybridsim eval policies`` (argument parsing only)."""

from __future__ import annotations


def add_parser(sub) -> None:
    sub.add_parser("policies", help="(being written)")
