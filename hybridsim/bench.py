"""Benchmark helpers: throughput against raw MuJoCo/MJX, random controls, tables, JSON.

What the scripts in ``benchmarks/`` (and ``hybridsim bench``) share::

    from hybridsim import bench

    rows = bench.run_throughput(["arm2"], ["c"], [64], steps=1000)
    print(bench.format_table(rows))
    bench.write_json("out/throughput.json", rows, {"command": "..."})

Every row is a plain dict (``ROW_KEYS`` for ``run_throughput``); ``write_json`` writes
``{"meta": environment_meta() | meta, "rows": rows}`` atomically.
"""

from hybridsim._src.bench import (
    JAX_BACKENDS,
    ROW_KEYS,
    aligned_table,
    environment_meta,
    error_row,
    format_rate,
    format_table,
    jsonable,
    print_targets,
    random_controls,
    run_throughput,
    write_json,
)

__all__ = [
    "JAX_BACKENDS",
    "ROW_KEYS",
    "aligned_table",
    "environment_meta",
    "error_row",
    "format_rate",
    "format_table",
    "jsonable",
    "print_targets",
    "random_controls",
    "run_throughput",
    "write_json",
]
