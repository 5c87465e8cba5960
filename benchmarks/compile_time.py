"""First-call compile time of an ``mjx`` rollout, cold and warm, for every bundled scene.

For each scene the measurement runs in a fresh subprocess twice, both pointing JAX's
persistent compilation cache (``hs.enable_compilation_cache``) at the same new, empty
folder:

- cold: the first process compiles from scratch and fills the cache;
- warm: the second process traces again but loads the XLA executable from the cache.

Each process reports the wall time of its first ``hs.rollout`` call (trace + compile or
cache load + one run, blocked on the result), of a second call (run only), and their
difference, the compile time. Targets: cold < 20 s on ``arm2`` and ``pusher``; warm < 2 s.

Usage::

    python benchmarks/compile_time.py                       # all bundled scenes
    python benchmarks/compile_time.py --scenes arm2 pusher --out /tmp/compile.json

A scene whose process exceeds ``--timeout`` seconds is recorded with ``"error"``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "compile_cpu.json"
COLD_TARGET_S = 20.0
COLD_TARGET_SCENES = ("arm2", "pusher")
WARM_TARGET_S = 2.0
_MARK = "COMPILE_TIME_RESULT "


def child(scene: str, cache_dir: str, batch_size: int, steps: int, backend: str) -> None:
    """Runs in the subprocess: prints one JSON line with the timings."""
    import jax
    import numpy as np

    import hybridsim as hs
    from hybridsim._src.bench import random_controls

    hs.enable_compilation_cache(cache_dir)
    model = hs.make_model(scene, batch_size=batch_size, backend=backend)
    state = hs.init(model)
    ctrl = random_controls(model.scene, batch_size, steps, seed=0)
    t0 = time.perf_counter()
    traj = jax.block_until_ready(hs.rollout(model, state, ctrl))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(hs.rollout(model, state, ctrl))
    second = time.perf_counter() - t0
    files = sum(1 for p in Path(cache_dir).rglob("*") if p.is_file())
    print(
        _MARK
        + json.dumps(
            {
                "first_call_seconds": first,
                "run_seconds": second,
                "compile_seconds": max(first - second, 0.0),
                "cache_files": files,
                "flagged_worlds": int(np.count_nonzero(np.asarray(traj.status))),
                "jax_devices": [str(d) for d in jax.devices()],
            }
        ),
        flush=True,
    )


def _run_child(scene: str, cache_dir: str, args: argparse.Namespace) -> dict:
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        scene,
        "--cache-dir",
        cache_dir,
        "--batch-size",
        str(args.batch_size),
        "--steps",
        str(args.steps),
        "--backend",
        args.backend,
    ]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {
            "error": f"timed out after {args.timeout:.0f} s",
            "process_seconds": time.perf_counter() - t0,
        }
    wall = time.perf_counter() - t0
    for line in proc.stdout.splitlines():
        if line.startswith(_MARK):
            out = json.loads(line[len(_MARK) :])
            out["process_seconds"] = wall
            return out
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    return {"error": f"exit {proc.returncode}: " + " | ".join(tail), "process_seconds": wall}


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def format_table(rows: list[dict]) -> str:
    headers = (
        "scene",
        "cold first call s",
        "cold compile s",
        "warm first call s",
        "warm compile s",
        "run s",
        "note",
    )
    body = []
    for r in rows:
        cold, warm = r["cold"], r["warm"]
        note = "; ".join(
            f"{k}: {v['error']}" for k, v in (("cold", cold), ("warm", warm)) if "error" in v
        )
        body.append(
            (
                r["scene"],
                _fmt(cold.get("first_call_seconds")),
                _fmt(cold.get("compile_seconds")),
                _fmt(warm.get("first_call_seconds")),
                _fmt(warm.get("compile_seconds")),
                _fmt(warm.get("run_seconds", cold.get("run_seconds"))),
                note,
            )
        )
    from hybridsim._src import bench

    return bench.aligned_table(headers, body, left={0, 6})


def evaluate_targets(rows: list[dict]) -> list[tuple[str, bool | None, str]]:
    results = []
    by_scene = {r["scene"]: r for r in rows}
    for scene in COLD_TARGET_SCENES:
        name = f"cold compile < {COLD_TARGET_S:.0f} s on {scene}"
        r = by_scene.get(scene)
        if r is None or "compile_seconds" not in r["cold"]:
            results.append((name, None, "not measured" if r is None else r["cold"]["error"]))
            continue
        c = r["cold"]
        results.append(
            (
                name,
                c["compile_seconds"] < COLD_TARGET_S,
                f"{c['compile_seconds']:.2f} s (first call {c['first_call_seconds']:.2f} s)",
            )
        )
    measured = [r for r in rows if "compile_seconds" in r["warm"]]
    name = f"warm compile < {WARM_TARGET_S:.0f} s (second process, same cache)"
    if not measured:
        results.append((name, None, "not measured"))
    else:
        ok = all(r["warm"]["compile_seconds"] < WARM_TARGET_S for r in measured)
        missing = [r["scene"] for r in rows if r not in measured]
        detail = ", ".join(f"{r['scene']}: {r['warm']['compile_seconds']:.2f} s" for r in measured)
        if missing:
            detail += f"; not measured: {', '.join(missing)}"
        results.append((name, ok, detail))
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenes", nargs="+", help="scenes (default: every bundled scene)")
    p.add_argument("--backend", default="mjx", choices=["mjx", "warp"])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=10, help="control steps of the rollout")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per process")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output path")
    p.add_argument("--child", metavar="SCENE", help=argparse.SUPPRESS)
    p.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child, args.cache_dir, args.batch_size, args.steps, args.backend)
        return 0

    import hybridsim as hs
    from hybridsim._src import bench

    scenes = args.scenes or hs.bundled_scenes()
    start = time.perf_counter()
    rows = []
    for scene in scenes:
        with tempfile.TemporaryDirectory(prefix=f"hs-compile-{scene}-") as cache:
            row = {
                "scene": scene,
                "backend": args.backend,
                "batch_size": args.batch_size,
                "control_steps": args.steps,
            }
            for phase in ("cold", "warm"):
                print(
                    f"[{time.perf_counter() - start:6.1f}s] {scene}: {phase} process",
                    file=sys.stderr,
                    flush=True,
                )
                row[phase] = _run_child(scene, cache, args)
                if phase == "cold" and "error" in row["cold"]:
                    row["warm"] = {"error": "skipped (cold run failed)"}
                    break
        rows.append(row)
    wall = time.perf_counter() - start

    print(format_table(rows))
    print()
    targets = evaluate_targets(rows)
    bench.print_targets(targets)
    print(f"\nwall time {wall:.1f} s")
    meta = {
        "script": "benchmarks/compile_time.py",
        "argv": sys.argv[1:] if argv is None else list(argv),
        "wall_seconds": wall,
        "targets": [{"target": n, "passed": ok, "detail": d} for n, ok, d in targets],
    }
    path = bench.write_json(args.out, rows, meta)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
