"""How close real-first reconstruction gets to known geometry, and how long it takes.

Renders depth images of a sphere and a box with MuJoCo Warp's batch renderer from
cameras around them (moved per frame through the ``cam_pos``/``cam_quat`` world
parameters), fuses them with ``reconstruct_from_depth``, and reconstructs the same
shapes from sampled point clouds (with and without normals) with
``reconstruct_from_points``. Reports, in voxels, the max and 99th-percentile distance of
the mesh's vertices to the true surface, the volume error, watertightness and the wall
time of the reconstruction (not the rendering). Prints a table and writes JSON.

    JAX_PLATFORMS=cpu python benchmarks/reconstruction_accuracy.py
    JAX_PLATFORMS=cpu python benchmarks/reconstruction_accuracy.py --quick --out /tmp/r.json
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
import trimesh  # noqa: E402

import hybridsim as hs  # noqa: E402
from hybridsim import bench  # noqa: E402
from hybridsim.builder import (  # noqa: E402
    reconstruct_from_depth,
    reconstruct_from_points,
    render_depth,
)

RADIUS = 0.1  # m
HALF = np.array([0.0812, 0.0613, 0.0417])  # m, box half extents (off the voxel grid)


def orbit(distance: float, rings: tuple[float, ...], per_ring: int) -> tuple[np.ndarray, ...]:
    """Camera positions (n, 3) m and MuJoCo quaternions (n, 4) looking at the origin."""
    eyes = [
        distance * np.array([np.cos(a) * np.cos(e), np.sin(a) * np.cos(e), np.sin(e)])
        for e in rings
        for a in np.linspace(0, 2 * np.pi, per_ring, endpoint=False) + e
    ]
    eyes += [np.array([0.0, 0.0, distance]), np.array([0.0, 0.0, -distance])]
    quats = []
    for eye in eyes:  # MuJoCo camera: x right, y up, looking along -z
        back = eye / np.linalg.norm(eye)
        up = np.array([0.0, 0.0, 1.0]) if abs(back[2]) < 0.99 else np.array([0.0, 1.0, 0.0])
        x = np.cross(up, back)
        x /= np.linalg.norm(x)
        q = np.zeros(4)
        mujoco.mju_mat2Quat(q, np.stack([x, np.cross(back, x), back], axis=1).ravel())
        quats.append(q)
    return np.array(eyes), np.array(quats)


def surface_error(shape: str, v: np.ndarray) -> np.ndarray:
    """Distance (m) of points ``v (n, 3)`` to the true surface."""
    if shape == "sphere":
        return np.abs(np.linalg.norm(v, axis=1) - RADIUS)
    q = np.abs(v) - HALF
    return np.abs(np.where((q > 0).any(1), np.linalg.norm(np.maximum(q, 0), axis=1), q.max(1)))


def truth(shape: str) -> trimesh.Trimesh:
    if shape == "sphere":
        return trimesh.creation.icosphere(subdivisions=5, radius=RADIUS)
    return trimesh.creation.box(extents=2 * HALF)


def row(shape: str, source: str, mesh: trimesh.Trimesh, seconds: float, voxel: float) -> dict:
    err = surface_error(shape, mesh.vertices) / voxel
    return {
        "shape": shape,
        "source": source,
        "voxel_size_m": voxel,
        "max_err_voxels": float(err.max()),
        "p99_err_voxels": float(np.percentile(err, 99)),
        "volume_err": float(mesh.volume / truth(shape).volume - 1),
        "watertight": bool(mesh.is_watertight),
        "faces": int(len(mesh.faces)),
        "seconds": seconds,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer, smaller images and points")
    ap.add_argument("--voxel-size", type=float, default=0.005, help="m")
    ap.add_argument("--shapes", nargs="+", default=["sphere", "box"], choices=["sphere", "box"])
    ap.add_argument("--out", default="benchmarks/results/reconstruction_cpu.json")
    args = ap.parse_args(argv)
    voxel = args.voxel_size
    width, height = 128, 96
    n_points = 8000 if args.quick else 30000
    eyes, quats = orbit(0.5, (-0.6, 0.6) if args.quick else (-0.6, 0.0, 0.6), 4)
    rows = []
    for shape in args.shapes:
        geom = (
            f'type="sphere" size="{RADIUS}"'
            if shape == "sphere"
            else (f'type="box" size="{HALF[0]} {HALF[1]} {HALF[2]}"')
        )
        scene = hs.load_scene(
            f"""<mujoco><visual><map znear="0.01"/></visual><worldbody>
            <camera name="main" pos="0 -0.5 0" xyaxes="1 0 0 0 0 1"/>
            <geom {geom}/></worldbody></mujoco>"""
        )
        n = len(eyes)
        params = hs.world_params(scene, n, cam_pos=eyes[:, None], cam_quat=quats[:, None])
        depth, k, poses = render_depth(scene, np.zeros((n, 0)), width, height, params=params)
        reconstruct_from_depth(depth, k, poses, voxel)  # loads the kernels once
        t0 = time.perf_counter()
        mesh = reconstruct_from_depth(depth, k, poses, voxel)
        source = f"depth {n}x{width}x{height} (MuJoCo Warp)"
        rows.append(row(shape, source, mesh, time.perf_counter() - t0, voxel))
        points, face = trimesh.sample.sample_surface(truth(shape), n_points, seed=0)
        for normals, label in ((truth(shape).face_normals[face], "normals"), (None, "PCA")):
            t0 = time.perf_counter()
            mesh = reconstruct_from_points(points, normals, voxel_size=voxel)
            source = f"points {n_points} ({label})"
            rows.append(row(shape, source, mesh, time.perf_counter() - t0, voxel))
    print(
        f"{'shape':7s} {'source':34s} {'max vox':>8s} {'p99 vox':>8s} {'volume':>8s} "
        f"{'closed':>6s} {'ms':>6s}"
    )
    for r in rows:
        print(
            f"{r['shape']:7s} {r['source']:34s} {r['max_err_voxels']:8.2f} "
            f"{r['p99_err_voxels']:8.2f} {r['volume_err']:+8.2%} {str(r['watertight']):>6s} "
            f"{r['seconds'] * 1e3:6.0f}"
        )
    meta = {
        "command": "python benchmarks/reconstruction_accuracy.py"
        + (" --quick" if args.quick else ""),
    }
    print(f"wrote {bench.write_json(args.out, rows, meta)}")
    return rows


if __name__ == "__main__":
    main()
