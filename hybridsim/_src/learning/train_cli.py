"""Argument parsing of a learning command (placeholder)."""

from __future__ import annotations


def add_parser(sub) -> None:
    sub.add_parser("train", help="(being written)")
