"""Resting penetration and build time of bundled, example-spec and generated scenes.

For each scene: build (or load) it, simulate 2 s from its first keyframe with the keyframe's
controls on each backend (1 world, 10 physics steps per control step), and report the
deepest contact with static geometry (table, floor, terrain; MuJoCo's ``contact.dist``) and
the largest drop of a free object's centre (builder scenes, whose objects start 0.5 mm above
their support). The conformance test (tests/test_scene_conformance.py) bounds both by 5 mm.

    JAX_PLATFORMS=cpu python benchmarks/scene_conformance.py                 # c, ~10 s
    JAX_PLATFORMS=cpu python benchmarks/scene_conformance.py --backends c mjx --mjx-scenes \
        pusher table-seed11-n3 rough-seed0                                   # + MJX, ~3 min
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import mujoco
import numpy as np

import hybridsim as hs
from hybridsim import builder

ROOT = Path(__file__).resolve().parents[1]


def scenes() -> dict:
    out = {name: (lambda n=name: hs.load_scene(n), False) for name in hs.bundled_scenes()}
    for s, n in ((0, 2), (1, 3), (2, 4), (11, 3)):
        out[f"table-seed{s}-n{n}"] = (
            lambda s=s, n=n: builder.build(builder.generate_table_scene(s, n)).finalize(),
            True,
        )
    for k in ("rough", "stairs", "slopes"):
        spec = builder.generate_terrain_scene(k, 0, size=(3.0, 3.0), n_objects=2)
        out[f"{k}-seed0"] = (lambda spec=spec: builder.build(spec).finalize(), True)
    out["spec-table_objects"] = (
        lambda: builder.build(
            builder.read_spec(ROOT / "assets/specs/table_objects.toml")
        ).finalize(),
        True,
    )
    return out


def measure(scene, backend: str, seconds: float = 2.0) -> dict:
    m = scene.mj_model
    substeps = 10
    steps = int(round(seconds / (m.opt.timestep * substeps)))
    model = hs.make_model(scene, 1, backend=backend, substeps=substeps)
    ctrl = np.broadcast_to(scene.initial_ctrl(), (1, steps, scene.nu))
    t0 = time.perf_counter()
    traj = hs.rollout(model, hs.init(model), ctrl)
    qpos = np.asarray(traj.qpos, dtype=np.float64)[0]
    wall = time.perf_counter() - t0
    d = mujoco.MjData(m)
    d.qpos[:] = qpos[-1]
    mujoco.mj_forward(m, d)
    static = [m.body_weldid[m.geom_bodyid[g]] == 0 for g in range(m.ngeom)]
    dists = [c.dist for c in d.contact[: d.ncon] if static[c.geom1] != static[c.geom2]]
    free = [m.jnt_qposadr[j] + 2 for j in range(m.njnt) if m.jnt_type[j] == 0]
    drop = [qpos[0, a] - qpos[-1, a] for a in free]
    return {
        "finite": bool(np.all(np.isfinite(qpos))),
        "max_penetration_mm": round(max(0.0, -min(dists, default=0.0)) * 1e3, 3),
        "max_drop_mm": round(max(drop, default=0.0) * 1e3, 3),
        "wall_s_incl_compile": round(wall, 2),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--backends", nargs="+", default=["c"], choices=["c", "mjx", "warp"])
    p.add_argument("--mjx-scenes", nargs="*", default=None, help="scenes for mjx/warp (all)")
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/scene_conformance.json"))
    args = p.parse_args()
    hs.enable_compilation_cache()
    rows = []
    print(f"{'scene':22s} {'backend':7s} {'build s':>8s} {'penetration mm':>15s} {'drop mm':>8s}")
    for name, (factory, _) in scenes().items():
        t0 = time.perf_counter()
        scene = factory()
        build_s = time.perf_counter() - t0
        for backend in args.backends:
            if backend != "c" and args.mjx_scenes is not None and name not in args.mjx_scenes:
                continue
            row = {"scene": name, "backend": backend, "build_s": round(build_s, 3)}
            row |= measure(scene, backend)
            rows.append(row)
            print(
                f"{name:22s} {backend:7s} {build_s:8.3f} {row['max_penetration_mm']:15.3f} "
                f"{row['max_drop_mm']:8.3f}",
                flush=True,
            )
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "platform": platform.platform(),
        "mujoco": mujoco.__version__,
        "command": " ".join(sys.argv),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
