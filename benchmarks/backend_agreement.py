"""How far MJX (JAX and Warp) drift from MuJoCo C on every bundled scene.

Rolls out the same random controls (uniform in the control range, seed 0) from the first
keyframe on `c`, `mjx` and `warp`, and reports the max |qpos| difference against `c` after
10, 100 and `--steps` control steps. Prints a table and writes JSON.

    python benchmarks/backend_agreement.py --steps 500 --out benchmarks/results/agreement_cpu.json
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

import hybridsim as hs  # noqa: E402
from hybridsim import bench  # noqa: E402


def measure(scene_name: str, steps: int, batch: int, backends: list[str]) -> dict:
    scene = hs.load_scene(scene_name)
    ctrl = bench.random_controls(scene, batch, steps, seed=0)
    ref_model = hs.make_model(scene, batch, backend="c")
    ref = hs.rollout(ref_model, hs.init(ref_model), ctrl).qpos
    row = {
        "scene": scene_name,
        "batch": batch,
        "steps": steps,
        "contacts": bool(scene.mj_model.ngeom and np.any(scene.mj_model.geom_contype)),
    }
    for backend in backends:
        model = hs.make_model(scene, batch, backend=backend)
        got = np.asarray(hs.rollout(model, hs.init(model), ctrl).qpos, dtype=np.float64)
        err = np.abs(got - ref).max(axis=(0, 2))  # (T+1,)
        for t in sorted({10, 100, steps}):
            if t <= steps:
                row[f"{backend}_vs_c_at_{t}"] = float(err[t])
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", nargs="+", default=None)
    p.add_argument("--backends", nargs="+", default=["mjx", "warp"])
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--out", default="benchmarks/results/agreement_cpu.json")
    args = p.parse_args()
    hs.enable_compilation_cache()
    rows = [
        measure(s, args.steps, args.batch, args.backends)
        for s in (args.scenes or hs.bundled_scenes())
    ]
    keys = [k for k in rows[0] if "_vs_c_at_" in k]
    print(f"{'scene':10s} " + " ".join(f"{k:>18s}" for k in keys))
    for r in rows:
        print(f"{r['scene']:10s} " + " ".join(f"{r.get(k, float('nan')):18.2e}" for k in keys))
    meta = {
        "command": " ".join(["python", "benchmarks/backend_agreement.py", *sys.argv[1:]]),
        "metric": "max |qpos - qpos_c| over worlds and dofs",
    }
    print(f"wrote {bench.write_json(args.out, rows, meta)}")


if __name__ == "__main__":
    main()
