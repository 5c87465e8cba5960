"""``hybridsim data import`` (argument parsing only)."""

from __future__ import annotations


def add_parser(sub) -> None:
    sub.add_parser("import", help="(being written)")
