"""Cold compile and warm start of an ``mjx`` rollout, for every bundled scene.

Each measurement is a fresh subprocess that calls ``hs.enable_compilation_cache()`` with
``$HYBRIDSIM_CACHE_DIR`` set to a per-scene, per-mode folder that starts empty. Per
scene and mode, two processes run one after the other on the same folder:

- cold: the first process traces, compiles and fills the folder (XLA executables in
  ``jax/``, exported programs in ``exported/``);
- warm: a second process, same program on the same shapes, same folder.

Modes: ``export`` (the default: the rollout's traced program is stored with
``jax.export`` and a warm process loads it without tracing) and ``jit``
(``HYBRIDSIM_EXPORT=0``: plain ``jax.jit``, a warm process traces MJX again and only the
XLA compile comes from the cache).

Each process reports ``start_seconds``, the wall time from ``hs.make_model`` returning
to the first rollout's result being ready (``hs.init``, the controls, ``hs.rollout``,
``jax.block_until_ready``), and ``run_seconds``, the same rollout called again (run
only). Their difference is the compile (cold) or load (warm) time. Targets: warm start
< 1 s with export on every scene; cold compile < 20 s on ``arm2`` and ``pusher``.

Usage::

    JAX_PLATFORMS=cpu python benchmarks/compile_time.py        # all bundled scenes
    python benchmarks/compile_time.py --scenes arm2 pusher --out /tmp/compile.json

A process that exceeds ``--timeout`` seconds is recorded with ``"error"``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "compile_time.json"
COLD_TARGET_S = 20.0
COLD_TARGET_SCENES = ("arm2", "pusher")
WARM_TARGET_S = 1.0
MODES = ("export", "jit")
_MARK = "COMPILE_TIME_RESULT "


def child(scene: str, batch_size: int, steps: int, backend: str) -> None:
    """Runs in the subprocess: prints one JSON line with the timings."""
    import jax
    import numpy as np

    import hybridsim as hs

    hs.enable_compilation_cache()
    t0 = time.perf_counter()
    model = hs.make_model(scene, batch_size=batch_size, backend=backend)
    made = time.perf_counter()
    state = hs.init(model)
    low, high = model.scene.ctrl_range()
    rng = np.random.default_rng(0)
    ctrl = rng.uniform(
        np.where(np.isfinite(low), low, -1.0),
        np.where(np.isfinite(high), high, 1.0),
        size=(batch_size, steps, model.scene.nu),
    )
    traj = jax.block_until_ready(hs.rollout(model, state, ctrl))
    started = time.perf_counter()
    jax.block_until_ready(hs.rollout(model, state, ctrl))
    run = time.perf_counter() - started
    start = started - made
    cache = Path(os.environ["HYBRIDSIM_CACHE_DIR"])
    out = {
        "make_model_seconds": made - t0,
        "start_seconds": start,
        "run_seconds": run,
        "compile_seconds": max(start - run, 0.0),
        "exported_files": sum(1 for _ in cache.glob("exported/*.bin")),
        "flagged_worlds": int(np.count_nonzero(np.asarray(traj.status))),
        "jax_devices": [str(d) for d in jax.devices()],
    }
    print(_MARK + json.dumps(out), flush=True)


def _run_child(scene: str, cache_dir: str, mode: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", scene]
    cmd += ["--batch-size", str(args.batch_size), "--steps", str(args.steps)]
    cmd += ["--backend", args.backend]
    env = {**os.environ, "HYBRIDSIM_CACHE_DIR": cache_dir, "HYBRIDSIM_EXPORT": "1"}
    if mode == "jit":
        env["HYBRIDSIM_EXPORT"] = "0"
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout:.0f} s"}
    wall = time.perf_counter() - t0
    for line in proc.stdout.splitlines():
        if line.startswith(_MARK):
            return {**json.loads(line[len(_MARK) :]), "process_seconds": wall}
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    return {"error": f"exit {proc.returncode}: " + " | ".join(tail), "process_seconds": wall}


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _table(headers: tuple[str, ...], body: list[tuple[str, ...]]) -> str:
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(
            c.ljust(w) if i in (0, len(cells) - 1) else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *map(line, body)])


def format_table(rows: list[dict]) -> str:
    headers = (
        "scene",
        "cold compile s",
        "warm start s",
        "warm start s (no export)",
        "cold compile s (no export)",
        "run s",
        "note",
    )
    body = []
    for r in rows:
        runs = {k: r[k] for k in ("cold_export", "warm_export", "cold_jit", "warm_jit")}
        note = "; ".join(f"{k}: {v['error']}" for k, v in runs.items() if "error" in v)
        body.append(
            (
                r["scene"],
                _fmt(runs["cold_export"].get("compile_seconds")),
                _fmt(runs["warm_export"].get("start_seconds")),
                _fmt(runs["warm_jit"].get("start_seconds")),
                _fmt(runs["cold_jit"].get("compile_seconds")),
                _fmt(runs["warm_export"].get("run_seconds")),
                note,
            )
        )
    return _table(headers, body)


def evaluate_targets(rows: list[dict]) -> list[tuple[str, bool | None, str]]:
    results = []
    by_scene = {r["scene"]: r for r in rows}
    for scene in COLD_TARGET_SCENES:
        name = f"cold compile < {COLD_TARGET_S:.0f} s on {scene}"
        cold = by_scene.get(scene, {}).get("cold_export", {"error": "not measured"})
        if "compile_seconds" not in cold:
            results.append((name, None, cold["error"]))
        else:
            results.append((name, cold["compile_seconds"] < COLD_TARGET_S, _fmt_s(cold)))
    name = f"warm start < {WARM_TARGET_S:.0f} s (second process, same cache) on every scene"
    measured = [r for r in rows if "start_seconds" in r["warm_export"]]
    missing = [r["scene"] for r in rows if r not in measured]
    detail = ", ".join(f"{r['scene']}: {r['warm_export']['start_seconds']:.2f} s" for r in measured)
    if missing:
        detail += f"; not measured: {', '.join(missing)}"
    ok = all(r["warm_export"]["start_seconds"] < WARM_TARGET_S for r in measured)
    results.append((name, (ok and not missing) if measured else None, detail))
    return results


def _fmt_s(run: dict) -> str:
    return f"{run['compile_seconds']:.2f} s (first call {run['start_seconds']:.2f} s)"


def _meta() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    meta = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    for dist in ("jax", "jaxlib", "mujoco", "mujoco-mjx", "hybridsim"):
        try:
            meta[dist] = version(dist)
        except PackageNotFoundError:
            meta[dist] = None
    return meta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenes", nargs="+", help="scenes (default: every bundled scene)")
    p.add_argument("--backend", default="mjx", choices=["mjx", "warp"])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=10, help="control steps of the rollout")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per process")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output path")
    p.add_argument("--child", metavar="SCENE", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child, args.batch_size, args.steps, args.backend)
        return 0

    import hybridsim as hs

    scenes = args.scenes or hs.bundled_scenes()
    start = time.perf_counter()
    rows = []
    for scene in scenes:
        row = {
            "scene": scene,
            "backend": args.backend,
            "batch_size": args.batch_size,
            "control_steps": args.steps,
        }
        for mode in MODES:
            with tempfile.TemporaryDirectory(prefix=f"hs-compile-{scene}-{mode}-") as cache:
                for phase in ("cold", "warm"):
                    clock = time.perf_counter() - start
                    print(f"[{clock:6.1f}s] {scene}: {phase}, {mode}", file=sys.stderr, flush=True)
                    row[f"{phase}_{mode}"] = _run_child(scene, cache, mode, args)
                    if "error" in row[f"cold_{mode}"]:
                        row[f"warm_{mode}"] = {"error": "skipped (cold run failed)"}
                        break
        rows.append(row)
    wall = time.perf_counter() - start

    print(format_table(rows))
    print()
    targets = evaluate_targets(rows)
    for name, ok, detail in targets:
        print(f"{'n/a ' if ok is None else ('PASS' if ok else 'FAIL')}  {name}: {detail}")
    print(f"\nwall time {wall:.1f} s")
    meta = {
        **_meta(),
        "script": "benchmarks/compile_time.py",
        "argv": sys.argv[1:] if argv is None else list(argv),
        "wall_seconds": wall,
        "targets": [{"target": n, "passed": ok, "detail": d} for n, ok, d in targets],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
