"""Throughput of hybridsim's rollout against raw MuJoCo / MJX / MuJoCo Warp.

Runs ``hybridsim.bench.run_throughput`` over a plan of (scenes, backend, batch sizes,
physics steps), prints a table, writes JSON and ends with PASS/FAIL lines for the targets:

- wrapper overhead (raw steps/s / hybridsim steps/s - 1) <= 10% at B >= 64, every backend;
- ``c`` real-time factor >= 500x on ``tabletop`` at B = 1024 (substeps = 1, the scene's
  own timestep).

Usage::

    python benchmarks/throughput.py                      # default plan, ~10 min on 2 CPU cores
    python benchmarks/throughput.py --quick --backends c # seconds: smoke run
    python benchmarks/throughput.py --backends mjx warp --scenes arm2 quadruped \\
        --batch-sizes 1024 4096 16384 --steps 20 --out results/gpu.json

Without ``--scenes/--batch-sizes/--steps`` each backend uses its own default plan (see
``DEFAULT_PLAN``), sized for a 2-core CPU: MJX-JAX on CPU is ~40x slower than MuJoCo C on
contact scenes, and MuJoCo Warp on CPU slower still, so those run fewer steps (``warp``
only at B in {1, 64} with 20 steps). Each row records the steps it used.

Cases on the JAX backends run each in a fresh process (``--isolate auto``) under
``--case-timeout``: on this CPU an MJX rollout of a contact scene sometimes never returns
(XLA CPU execution stalls with every thread idle), and a stalled case is then recorded as
an error row instead of stopping the whole run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from hybridsim import bench

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "throughput_cpu.json"

OVERHEAD_TARGET = 0.10
OVERHEAD_MIN_B = 64
RTF_TARGET = 500.0
RTF_SCENE, RTF_B = "tabletop", 1024

# backend -> list of (scenes, batch sizes, physics steps per world).
DEFAULT_PLAN: dict[str, list[tuple[tuple[str, ...], tuple[int, ...], int]]] = {
    "c": [(("arm2", "quadruped", "tabletop"), (1, 64, 1024, 4096), 50)],
    "mjx": [
        (("arm2",), (1, 64, 1024, 4096), 20),
        (("quadruped",), (1, 64, 1024), 10),
        (("quadruped",), (4096,), 5),
    ],
    "warp": [(("arm2", "quadruped"), (1, 64), 20)],
}
DEFAULT_BACKENDS = ("c", "mjx", "warp")

QUICK_PLAN: dict[str, list[tuple[tuple[str, ...], tuple[int, ...], int]]] = {
    "c": [(("arm2",), (1, 64), 20)],
    "mjx": [(("arm2",), (4,), 5)],
    "warp": [(("arm2",), (4,), 5)],
}


def build_plan(args: argparse.Namespace) -> list[tuple[tuple[str, ...], str, tuple[int, ...], int]]:
    """(scenes, backend, batch sizes, steps) groups; explicit flags override the plan."""
    base = QUICK_PLAN if args.quick else DEFAULT_PLAN
    plan = []
    for backend in args.backends:
        groups = base.get(backend, base["c"])
        if args.scenes or args.batch_sizes or args.steps:
            scenes = (
                tuple(args.scenes)
                if args.scenes
                else tuple(dict.fromkeys(s for g in groups for s in g[0]))
            )
            sizes = (
                tuple(args.batch_sizes)
                if args.batch_sizes
                else tuple(sorted({b for g in groups for b in g[1]}))
            )
            steps = args.steps if args.steps else min(g[2] for g in groups)
            groups = [(scenes, sizes, steps)]
        k = args.substeps
        for scenes, sizes, steps in groups:
            # Physics steps, rounded up to a whole number of control steps.
            plan.append((scenes, backend, sizes, -(-steps // k) * k))
    return plan


def evaluate_targets(rows: list[dict]) -> list[tuple[str, bool | None, str]]:
    """(name, passed or None when not measured, detail) for each target."""
    results = []
    for backend in dict.fromkeys(r["backend"] for r in rows):
        rows_b = [r for r in rows if r["backend"] == backend and r["batch_size"] >= OVERHEAD_MIN_B]
        big = [r for r in rows_b if r.get("overhead") is not None]
        failed = [f"{r['scene']}/B={r['batch_size']}" for r in rows_b if r not in big]
        name = f"overhead <= {OVERHEAD_TARGET:.0%} vs raw at B >= {OVERHEAD_MIN_B} on {backend}"
        if not big:
            results.append((name, None, "no measured rows with B >= 64"))
            continue
        worst = max(big, key=lambda r: r["overhead"])
        detail = (
            f"worst {worst['overhead']:+.1%} ({worst['scene']} B={worst['batch_size']}); "
            + ", ".join(f"{r['scene']}/B={r['batch_size']}: {r['overhead']:+.1%}" for r in big)
        )
        if failed:
            detail += f"; not measured: {', '.join(failed)}"
        results.append((name, worst["overhead"] <= OVERHEAD_TARGET, detail))
    name = f"c real-time factor >= {RTF_TARGET:.0f}x on {RTF_SCENE} at B={RTF_B} (substeps=1)"
    hits = [
        r
        for r in rows
        if r["backend"] == "c"
        and r["scene"] == RTF_SCENE
        and r["batch_size"] == RTF_B
        and r["substeps"] == 1
        and r.get("rtf") is not None
    ]
    if hits:
        r = hits[0]
        results.append(
            (
                name,
                r["rtf"] >= RTF_TARGET,
                f"{r['rtf']:,.1f}x ({r['hs_sps']:,.0f} steps/s x {r['timestep']} s; "
                f"raw {r['raw_rtf']:,.1f}x)",
            )
        )
    else:
        results.append((name, None, "not measured in this run"))
    return results


_CASE_MARK = "THROUGHPUT_ROW "


def _child_progress(msg: str) -> None:
    print(f"          {msg}", file=sys.stderr, flush=True)


def run_case_in_subprocess(
    scene: str, backend: str, bsz: int, steps: int, args: argparse.Namespace
) -> dict:
    """One (scene, backend, B) measured in a fresh process, so that a stalled XLA CPU
    execution (seen with MJX on contact scenes: every thread idle, the call never
    returns) costs at most ``--case-timeout`` seconds and shows up as an error row."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--case",
        scene,
        backend,
        str(bsz),
        str(steps),
        "--substeps",
        str(args.substeps),
        "--repeats",
        str(args.repeats),
        "--min-seconds",
        str(args.min_seconds),
    ]
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=args.case_timeout)
    except subprocess.TimeoutExpired:
        return bench.error_row(
            scene, backend, bsz, steps, args.substeps, f"timed out after {args.case_timeout:.0f} s"
        )
    for line in proc.stdout.splitlines():
        if line.startswith(_CASE_MARK):
            return json.loads(line[len(_CASE_MARK) :])
    return bench.error_row(
        scene,
        backend,
        bsz,
        steps,
        args.substeps,
        f"measurement process exited with {proc.returncode}",
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenes", nargs="+", help="scenes (default: per-backend plan)")
    p.add_argument(
        "--backends",
        nargs="+",
        default=list(DEFAULT_BACKENDS),
        choices=["c", "mjx", "warp"],
        help="backends (default: c mjx warp)",
    )
    p.add_argument("--batch-sizes", nargs="+", type=int, help="batch sizes B")
    p.add_argument("--steps", type=int, help="physics steps per world")
    p.add_argument("--substeps", type=int, default=1, help="physics steps per control step")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per side (best counts)")
    p.add_argument(
        "--min-seconds",
        type=float,
        default=2.0,
        help="after --repeats, keep timing (up to 20 calls per side) until each side has "
        "this many seconds of timed calls (0: exactly --repeats)",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output path")
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny smoke run (seconds for c; mjx/warp still compile)",
    )
    p.add_argument(
        "--isolate",
        choices=["auto", "always", "never"],
        default="auto",
        help="measure each case in its own process with --case-timeout "
        "(auto: the JAX backends mjx and warp)",
    )
    p.add_argument(
        "--case-timeout",
        type=float,
        default=180.0,
        help="seconds an isolated case may take before it is recorded as failed",
    )
    p.add_argument(
        "--case", nargs=4, metavar=("SCENE", "BACKEND", "B", "STEPS"), help=argparse.SUPPRESS
    )
    args = p.parse_args(argv)
    if args.case:
        scene, backend, bsz, steps = args.case
        (row,) = bench.run_throughput(
            [scene],
            [backend],
            [int(bsz)],
            int(steps),
            substeps=args.substeps,
            repeats=args.repeats,
            progress=_child_progress,
            min_seconds=args.min_seconds,
        )
        print(_CASE_MARK + json.dumps(bench.jsonable(row)), flush=True)
        return 0
    if args.quick:
        args.repeats, args.min_seconds = 1, 0.0

    plan = build_plan(args)
    start = time.perf_counter()

    def progress(msg: str) -> None:
        print(f"[{time.perf_counter() - start:7.1f}s] {msg}", file=sys.stderr, flush=True)

    meta = {
        "script": "benchmarks/throughput.py",
        "argv": sys.argv[1:] if argv is None else list(argv),
        "quick": args.quick,
        "plan": [
            {"scenes": list(s), "backend": b, "batch_sizes": list(z), "steps": n}
            for s, b, z, n in plan
        ],
    }
    rows: list[dict] = []
    for scenes, backend, sizes, steps in plan:
        for scene in scenes:
            for bsz in sizes:
                isolate = args.isolate == "always" or (
                    args.isolate == "auto" and backend in bench.JAX_BACKENDS
                )
                if isolate:
                    rows.append(run_case_in_subprocess(scene, backend, bsz, steps, args))
                    if rows[-1].get("error"):
                        progress(f"{scene} {backend} B={bsz}: {rows[-1]['error']}")
                else:
                    rows += bench.run_throughput(
                        [scene],
                        [backend],
                        [bsz],
                        steps,
                        substeps=args.substeps,
                        repeats=args.repeats,
                        progress=progress,
                        min_seconds=args.min_seconds,
                    )
                # Rewritten after every row: a run cut short keeps what it measured.
                bench.write_json(args.out, rows, {**meta, "complete": False})
    wall = time.perf_counter() - start

    print(bench.format_table(rows))
    print()
    targets = evaluate_targets(rows)
    bench.print_targets(targets)
    print(f"\nwall time {wall:.1f} s")
    meta.update(
        complete=True,
        wall_seconds=wall,
        targets=[{"target": n, "passed": ok, "detail": d} for n, ok, d in targets],
    )
    path = bench.write_json(args.out, rows, meta)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
