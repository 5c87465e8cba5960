"""``hybridsim reconstruct``: a mesh from a depth capture (.npz) or a point cloud (.ply/.npy)."""

from __future__ import annotations

import argparse
from pathlib import Path

_MESH_SUFFIXES = (".obj", ".ply", ".stl")


def cmd_reconstruct(args: argparse.Namespace) -> int:
    from hybridsim._src.builder import reconstruct as rec
    from hybridsim._src.errors import DataFileError
    from hybridsim._src.io import atomic_path
    from hybridsim._src.progress import Progress

    progress = Progress(not args.quiet)
    src, out = Path(args.input), Path(args.out)
    if out.suffix.lower() not in _MESH_SUFFIXES:
        raise DataFileError(f"--out {str(out)!r}: expected a mesh file ending in {_MESH_SUFFIXES}")
    bounds = None
    if args.bounds is not None:
        bounds = [args.bounds[:3], args.bounds[3:]]
    mesh = rec.reconstruct_file(src, args.voxel_size, args.truncation, bounds, phase=progress.phase)
    with atomic_path(out, suffix=out.suffix) as tmp:
        mesh.export(tmp, file_type=out.suffix.lower().lstrip("."))
    closed = "watertight" if mesh.is_watertight else "not watertight"
    volume = f", volume {mesh.volume:.6g} m^3" if mesh.is_watertight else ""
    lo, hi = mesh.bounds
    print(
        f"wrote {out}: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces, {closed}"
        f"{volume}, bounds {lo.round(4).tolist()} .. {hi.round(4).tolist()} m"
    )
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``reconstruct`` to the ``hybridsim`` subparsers."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser(
        "reconstruct",
        formatter_class=fmt,
        help="a mesh from depth images (.npz) or a point cloud (.ply/.npy), for a scene",
        description="Real-first geometry. A depth capture .npz (depth (N, H, W) m z-depth, "
        "NaN/<=0 = no return; intrinsics (3, 3) or (N, 3, 3); poses (N, 4, 4) camera-to-"
        "world, OpenCV axes) is back-projected and fused into a TSDF with Warp kernels; a "
        "point cloud (.npy (P, 3) or (P, 6) with normals, or .ply) is splatted into one. "
        "Marching cubes (Warp) extracts the surface, written as OBJ, PLY or STL (m).",
        epilog="examples:\n"
        "  hybridsim reconstruct capture.npz --out object.obj --voxel-size 0.005\n"
        "  hybridsim reconstruct scan.ply --out object.ply --voxel-size 0.004",
    )
    p.add_argument("input", help="depth capture .npz, or point cloud .ply/.npy")
    p.add_argument("--out", required=True, help="output mesh .obj, .ply or .stl")
    p.add_argument("--voxel-size", type=float, required=True, help="voxel edge (m)")
    p.add_argument(
        "--truncation", type=float, default=None, help="TSDF truncation (m), default 2.5 voxels"
    )
    p.add_argument(
        "--bounds",
        type=float,
        nargs=6,
        default=None,
        metavar=("XMIN", "YMIN", "ZMIN", "XMAX", "YMAX", "ZMAX"),
        help="grid bounds (m); default: the data's bounding box, padded",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_reconstruct)
