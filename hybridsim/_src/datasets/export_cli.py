"""``hybridsim data export`` (argument parsing only)."""

from __future__ import annotations


def add_parser(sub) -> None:
    sub.add_parser("export", help="(being written)")
