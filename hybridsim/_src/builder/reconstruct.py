"""Real-first geometry: meshes from depth captures and point clouds (Warp TSDF + marching cubes).

Depth capture file (``.npz``), the format ``load_depth_capture`` reads:

* ``depth``: ``(N, H, W)`` float, metres, z-depth along the optical axis (not the ray
  length). NaN, inf and values ``<= 0`` mark invalid pixels (no return): they are
  skipped, not treated as free space.
* ``intrinsics``: ``(3, 3)`` (shared) or ``(N, 3, 3)`` camera matrices
  ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` in pixels; pixel ``(u, v)`` = (column, row)
  has its centre at integer coordinates.
* ``poses``: ``(N, 4, 4)`` camera-to-world transforms, OpenCV camera axes (x right,
  y down, z forward). A MuJoCo camera (x right, y up, looking along -z) converts by
  ``pose @ diag(1, -1, -1, 1)``.

Point clouds: ``.npy`` of shape ``(P, 3)`` (points) or ``(P, 6)`` (points and normals),
or ``.ply`` (read with trimesh; normals when the file has them).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from hybridsim._src.errors import DataFileError, ReconstructionError, ShapeError

DEPTH_CAPTURE_KEYS = ("depth", "intrinsics", "poses")
# Connected pieces of a reconstruction with fewer faces than this fraction of the largest
# piece's are dropped as fragments.
MIN_COMPONENT_FRACTION = 0.05
# Default TSDF truncation distance, in voxels.
DEFAULT_TRUNCATION_VOXELS = 2.5


@dataclasses.dataclass(frozen=True)
class DepthCapture:
    """Depth images with their cameras, as ``load_depth_capture`` returns them.

    Attributes:
      depth: (N, H, W) float32, m, z-depth; NaN/inf/<=0: invalid pixel.
      intrinsics: (N, 3, 3) float32 camera matrices (pixels).
      poses: (N, 4, 4) float32 camera-to-world transforms (OpenCV axes).
    """

    depth: np.ndarray
    intrinsics: np.ndarray
    poses: np.ndarray


def _check_capture(depth: Any, intrinsics: Any, poses: Any, where: str) -> DepthCapture:
    """Shapes and values of a depth capture; ``where`` names the source in errors."""
    err = DataFileError if where != "arguments" else ShapeError
    depth = np.asarray(depth, dtype=np.float32)
    if depth.ndim == 2:
        depth = depth[None]
    if depth.ndim != 3 or depth.shape[0] < 1 or min(depth.shape[1:]) < 1:
        raise err(f"{where}: 'depth' expected shape (N, H, W), found {depth.shape}")
    n = depth.shape[0]
    intrinsics = np.asarray(intrinsics, dtype=np.float32)
    if intrinsics.shape == (3, 3):
        intrinsics = np.broadcast_to(intrinsics, (n, 3, 3))
    if intrinsics.shape != (n, 3, 3):
        raise err(
            f"{where}: 'intrinsics' expected shape (3, 3) or ({n}, 3, 3), found {intrinsics.shape}"
        )
    if not np.all(np.isfinite(intrinsics)) or np.any(intrinsics[:, [0, 1], [0, 1]] <= 0):
        raise err(f"{where}: 'intrinsics' must be finite with fx, fy > 0")
    poses = np.asarray(poses, dtype=np.float32)
    if poses.shape == (4, 4) and n == 1:
        poses = poses[None]
    if poses.shape != (n, 4, 4):
        raise err(f"{where}: 'poses' expected shape ({n}, 4, 4), found {poses.shape}")
    rot = poses[:, :3, :3].astype(np.float64)
    eye = np.broadcast_to(np.eye(3), rot.shape)
    if not np.all(np.isfinite(poses)) or not np.allclose(
        rot @ np.swapaxes(rot, 1, 2), eye, atol=1e-4
    ):
        raise err(f"{where}: 'poses' must be finite rigid transforms (orthonormal rotation)")
    return DepthCapture(
        np.ascontiguousarray(depth),
        np.ascontiguousarray(intrinsics),
        np.ascontiguousarray(poses),
    )


def load_depth_capture(path: str | Path) -> DepthCapture:
    """Reads a depth capture ``.npz`` (keys ``depth``, ``intrinsics``, ``poses``).

    A missing file, a missing key or a wrong shape is a ``DataFileError`` naming the key,
    the expected shape and the one found.
    """
    from hybridsim._src.io import load_npz

    arrays = load_npz(path)
    missing = [k for k in DEPTH_CAPTURE_KEYS if k not in arrays]
    if missing:
        raise DataFileError(
            f"depth capture {str(path)!r}: missing key(s) {missing}; expected "
            f"depth (N, H, W), intrinsics (3, 3) or (N, 3, 3), poses (N, 4, 4); "
            f"found {sorted(arrays)}"
        )
    return _check_capture(
        arrays["depth"], arrays["intrinsics"], arrays["poses"], f"depth capture {str(path)!r}"
    )


def save_depth_capture(
    path: str | Path, depth: np.ndarray, intrinsics: np.ndarray, poses: np.ndarray
) -> Path:
    """Writes a depth capture ``.npz`` atomically (checked like ``load_depth_capture``)."""
    from hybridsim._src.io import atomic_path

    cap = _check_capture(depth, intrinsics, poses, "arguments")
    path = Path(path)
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, depth=cap.depth, intrinsics=cap.intrinsics, poses=cap.poses)
    return path


def load_point_cloud(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Reads points ``(P, 3)`` m and normals ``(P, 3)`` or None from ``.npy`` or ``.ply``."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"point cloud {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    normals = None
    if suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise DataFileError(f"point cloud {str(path)!r} is not a readable .npy: {e}") from None
        if arr.ndim != 2 or arr.shape[1] not in (3, 6):
            raise DataFileError(
                f"point cloud {str(path)!r}: expected shape (P, 3) or (P, 6) "
                f"(points, normals), found {arr.shape}"
            )
        points = arr[:, :3]
        normals = arr[:, 3:] if arr.shape[1] == 6 else None
    elif suffix == ".ply":
        import trimesh

        try:
            geom = trimesh.load(path, process=False)
        except Exception as e:  # trimesh raises many types on corrupt files
            raise DataFileError(f"point cloud {str(path)!r} is not a readable .ply: {e}") from None
        points = np.asarray(getattr(geom, "vertices", np.zeros((0, 3))))
        if isinstance(geom, trimesh.Trimesh) and len(geom.faces):
            normals = np.asarray(geom.vertex_normals)
        else:
            attrs = getattr(geom, "metadata", {}).get("_ply_raw", {}).get("vertex", {})
            data = attrs.get("data") if isinstance(attrs, dict) else None
            if data is not None and all(n in data.dtype.names for n in ("nx", "ny", "nz")):
                normals = np.stack([data["nx"], data["ny"], data["nz"]], axis=1)
    else:
        raise DataFileError(f"point cloud {str(path)!r}: expected a .npy or .ply file")
    points = np.asarray(points, dtype=np.float64)
    if normals is not None:
        normals = np.asarray(normals, dtype=np.float64)
    return points, normals


def _grid(lower: np.ndarray, upper: np.ndarray, voxel_size: float) -> tuple[int, int, int]:
    shape = np.floor((upper - lower) / voxel_size).astype(int) + 1
    if np.any(shape < 2):
        raise ShapeError(f"bounds {lower.tolist()}..{upper.tolist()} are empty")
    if np.prod(shape.astype(np.int64)) > 512**3:
        raise ShapeError(
            f"a {tuple(shape)} voxel grid is too large; raise voxel_size ({voxel_size} m) "
            "or shrink the bounds"
        )
    return int(shape[0]), int(shape[1]), int(shape[2])


def _check_scalars(voxel_size: float, truncation: float | None) -> tuple[float, float]:
    if not (np.isfinite(voxel_size) and voxel_size > 0):
        raise ShapeError(f"voxel_size must be a positive length in m, got {voxel_size!r}")
    trunc = DEFAULT_TRUNCATION_VOXELS * voxel_size if truncation is None else float(truncation)
    if not (np.isfinite(trunc) and trunc >= voxel_size):
        raise ShapeError(f"truncation must be >= voxel_size ({voxel_size} m), got {truncation!r}")
    return float(voxel_size), trunc


def _bounds(bounds: Any, points: np.ndarray, pad: float) -> tuple[np.ndarray, np.ndarray]:
    if bounds is None:
        return points.min(axis=0) - pad, points.max(axis=0) + pad
    b = np.asarray(bounds, dtype=np.float64)
    if b.shape != (2, 3) or not np.all(np.isfinite(b)) or np.any(b[1] <= b[0]):
        raise ShapeError(f"bounds must be [[xmin, ymin, zmin], [xmax, ymax, zmax]], got {bounds!r}")
    return b[0], b[1]


def _extract(tsdf: np.ndarray, seen: np.ndarray, lower: np.ndarray, voxel_size: float) -> Any:
    """Marching cubes (Warp) on the zero level, keeping only observed sign changes."""
    import trimesh
    import warp as wp
    import warp.geometry

    shape = np.array(tsdf.shape)
    upper = lower + voxel_size * (shape - 1)
    field = wp.array(np.ascontiguousarray(tsdf, np.float32), dtype=float, device="cpu")
    verts_wp, faces_wp = warp.geometry.IsoSurfaceMarchingCubes.extract(
        field, 0.0, lower=tuple(map(float, lower)), upper=tuple(map(float, upper))
    )
    verts = verts_wp.numpy().astype(np.float64)
    faces = faces_wp.numpy().reshape(-1, 3)
    if len(faces):
        # A triangle lies inside one cell; keep it only if the cell's sign change is seen:
        # an observed corner inside and an observed corner outside. Cells that border
        # unobserved space (read as +1) otherwise add no surface.
        cell = np.floor((verts[faces].mean(axis=1) - lower) / voxel_size).astype(int)
        cell = np.clip(cell, 0, shape - 2)
        has_in = np.zeros(len(faces), bool)
        has_out = np.zeros(len(faces), bool)
        for dx in (0, 1):
            for dy in (0, 1):
                for dz in (0, 1):
                    idx = (cell[:, 0] + dx, cell[:, 1] + dy, cell[:, 2] + dz)
                    has_in |= seen[idx] & (tsdf[idx] < 0)
                    has_out |= seen[idx] & (tsdf[idx] >= 0)
        ok = has_in & has_out
        faces = faces[ok]
    mesh = trimesh.Trimesh(verts, faces, process=True)
    mesh.remove_unreferenced_vertices()
    if len(mesh.faces):
        # Fragments (projective-TSDF artefacts at sharp edges, stray points) are dropped:
        # components with under MIN_COMPONENT_FRACTION of the largest one's faces.
        parts = mesh.split(only_watertight=False)
        if len(parts) > 1:
            largest = max(len(p.faces) for p in parts)
            keep = [p for p in parts if len(p.faces) >= MIN_COMPONENT_FRACTION * largest]
            mesh = trimesh.util.concatenate(keep)
    if len(mesh.faces) == 0:
        raise ReconstructionError(
            "reconstruction found no surface: no zero crossing of the fused distance field "
            "inside the observed voxels (check the bounds, the poses and the depth units)"
        )
    # Marching cubes orients faces by the field's gradient; make normals point outward.
    if mesh.is_watertight and mesh.volume < 0:
        mesh.invert()
    return mesh


def _tsdf_kernels() -> Any:
    """The Warp kernels and their launchers (``hybridsim.kernels.tsdf``), Warp quieted."""
    from hybridsim._src.progress import quiet_warp
    from hybridsim.kernels import tsdf

    quiet_warp()
    return tsdf


def fuse_depth(
    capture: DepthCapture,
    voxel_size: float,
    truncation: float | None = None,
    bounds: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fuses a depth capture into a TSDF grid.

    Returns ``(tsdf (nx, ny, nz) in [-1, 1] in units of truncation, observed (nx, ny, nz)
    bool, origin (3,) m)``: voxel ``(i, j, k)`` sits at ``origin + voxel_size * (i, j,
    k)``. A voxel is observed when a view saw it (in front of, near, or hidden behind a
    surface); unobserved voxels read 1 and add no surface.
    """
    voxel_size, trunc = _check_scalars(voxel_size, truncation)
    k = _tsdf_kernels()
    points = k.backproject(capture.depth, capture.intrinsics, capture.poses).reshape(-1, 3)
    points = points[np.isfinite(points).all(axis=1)]
    if len(points) == 0:
        raise ReconstructionError(
            "depth capture has no valid pixel (all NaN, inf or <= 0): nothing to reconstruct"
        )
    lower, upper = _bounds(bounds, points, 2 * trunc)
    shape = _grid(lower, upper, voxel_size)
    w2c = np.linalg.inv(capture.poses.astype(np.float64)).astype(np.float32)
    sdf_sum, weight, occluded, blank = k.integrate_depth(
        lower, voxel_size, trunc, shape, capture.depth, capture.intrinsics, w2c
    )
    # Inside a closed object: most views that had the voxel in their image saw it hidden
    # (the others hit an invalid pixel: sensor dropouts must not open holes).
    seen = weight > 0
    interior = ~seen & (occluded > blank)
    return k.normalize(sdf_sum, weight, interior), seen | interior, lower


def reconstruct_from_depth(
    depth: Any,
    intrinsics: Any,
    poses: Any,
    voxel_size: float,
    truncation: float | None = None,
    bounds: Any = None,
) -> Any:
    """A surface mesh from depth images: back-projection, TSDF fusion, marching cubes.

    Args:
      depth: (N, H, W) m, z-depth along the optical axis; NaN, inf and values <= 0 are
        invalid pixels (skipped: they neither add surface nor carve free space).
      intrinsics: (3, 3) or (N, 3, 3) camera matrices (pixels).
      poses: (N, 4, 4) camera-to-world transforms, OpenCV axes (x right, y down, z
        forward).
      voxel_size: grid spacing (m).
      truncation: TSDF truncation distance (m), ``>= voxel_size``; default 2.5 voxels
        (``DEFAULT_TRUNCATION_VOXELS``).
      bounds: ``[[xmin, ymin, zmin], [xmax, ymax, zmax]]`` (m) of the grid; default: the
        back-projected points' bounding box padded by two truncation distances.

    Returns:
      ``trimesh.Trimesh`` in the world frame (m). Only cells with an observed corner on
      each side of the surface produce triangles, so unobserved space adds no surface;
      voxels that every view saw hidden behind the surface count as inside, so a closed
      object seen from all sides gives a closed mesh.
    """
    cap = _check_capture(depth, intrinsics, poses, "arguments")
    tsdf, observed, origin = fuse_depth(cap, voxel_size, truncation, bounds)
    return _extract(tsdf, observed, origin, float(voxel_size))


def estimate_normals(points: np.ndarray, neighbours: int = 12) -> np.ndarray:
    """(P, 3) unit normals by PCA of each point's neighbours, pointed away from the centroid.

    The orientation rule suits one roughly star-shaped object (every surface point seen
    from the centroid); give normals for anything else.
    """
    from scipy.spatial import cKDTree

    k = min(neighbours, len(points))
    _, idx = cKDTree(points).query(points, k=k)
    nb = points[idx] - points[idx].mean(axis=1, keepdims=True)  # (P, k, 3)
    _, _, vt = np.linalg.svd(nb, full_matrices=False)
    normals = vt[:, -1]
    flip = np.einsum("ij,ij->i", normals, points - points.mean(axis=0)) < 0
    normals[flip] *= -1
    return normals


def reconstruct_from_points(
    points: Any,
    normals: Any = None,
    voxel_size: float = 0.005,
    truncation: float | None = None,
    bounds: Any = None,
    radius: int = 2,
) -> Any:
    """A surface mesh from a point cloud: oriented splatting into a TSDF, marching cubes.

    Args:
      points: (P, 3) m, world frame; non-finite rows are dropped.
      normals: (P, 3) outward normals (need not be unit); None: ``estimate_normals``
        (PCA, oriented away from the centroid: one roughly star-shaped object).
      voxel_size: grid spacing (m); the cloud should have a few points per voxel face.
      truncation: TSDF truncation distance (m), default 2.5 voxels
        (``DEFAULT_TRUNCATION_VOXELS``).
      bounds: ``[[xmin, ymin, zmin], [xmax, ymax, zmax]]`` (m); default: the points'
        bounding box padded by ``radius + 1`` voxels.
      radius: splat radius in voxels (each point writes a ``(2 radius + 1)^3`` block).

    Returns:
      ``trimesh.Trimesh`` (m), outward normals.
    """
    voxel_size, trunc = _check_scalars(voxel_size, truncation)
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ShapeError(f"points must have shape (P, 3), got {pts.shape}")
    keep = np.isfinite(pts).all(axis=1)
    if normals is not None:
        nrm = np.asarray(normals, dtype=np.float64)
        if nrm.shape != pts.shape:
            raise ShapeError(f"normals must have the points' shape {pts.shape}, got {nrm.shape}")
        length = np.linalg.norm(nrm, axis=1)
        keep &= np.isfinite(length) & (length > 0)
        nrm = nrm[keep] / length[keep, None]
    pts = pts[keep]
    if len(pts) < 4:
        raise ReconstructionError(
            f"a point cloud needs at least 4 finite points to reconstruct, got {len(pts)}"
        )
    if normals is None:
        nrm = estimate_normals(pts)
    if not isinstance(radius, int | np.integer) or radius < 1:
        raise ShapeError(f"radius must be a positive number of voxels, got {radius!r}")
    lower, upper = _bounds(bounds, pts, (radius + 1) * voxel_size)
    shape = _grid(lower, upper, voxel_size)
    k = _tsdf_kernels()
    sdf_sum, weight = k.splat_oriented_points(lower, voxel_size, trunc, radius, shape, pts, nrm)
    tsdf = k.normalize(sdf_sum, weight, np.zeros(shape, dtype=bool))
    return _extract(tsdf, weight > 0, lower, voxel_size)


def unsigned_distance_grid(
    points: Any, voxel_size: float, bounds: Any = None, radius: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Distance (m) from each voxel centre to the nearest point, up to ``radius`` voxels.

    Args:
      points: (P, 3) m; non-finite rows are dropped.
      voxel_size: grid spacing (m).
      bounds: ``[[xmin, ymin, zmin], [xmax, ymax, zmax]]`` (m); default: the points'
        bounding box padded by ``radius + 1`` voxels.
      radius: largest distance kept, in voxels.

    Returns:
      ``(distance (nx, ny, nz) m, exact up to radius * voxel_size and inf beyond;
      origin (3,) m)``.
    """
    voxel_size, _ = _check_scalars(voxel_size, None)
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) == 0:
        raise ShapeError(f"points must have shape (P, 3) with P > 0, got {pts.shape}")
    pts = pts[np.isfinite(pts).all(axis=1)]
    if len(pts) == 0:
        raise ShapeError("points: every row is non-finite; nothing to measure distances to")
    lower, upper = _bounds(bounds, pts, (radius + 1) * voxel_size)
    shape = _grid(lower, upper, voxel_size)
    # radius + 1: the cube around the point's nearest voxel holds the ball.
    out = _tsdf_kernels().splat_unsigned_distance(lower, voxel_size, radius + 1, shape, pts)
    out[out > radius * voxel_size] = np.inf
    return out, lower


def reconstruct_file(
    path: str | Path,
    voxel_size: float,
    truncation: float | None = None,
    bounds: Any = None,
    phase: Any = None,
) -> Any:
    """A surface mesh (``trimesh.Trimesh``, m) from a capture file: a depth capture ``.npz``
    (``load_depth_capture``) or a point cloud ``.ply``/``.npy`` (``load_point_cloud``).

    ``phase(message)``, when given, is a context manager that reports the work (the CLI's
    progress lines).
    """
    import contextlib

    src = Path(path)
    phase = phase or (lambda _msg: contextlib.nullcontext())
    suffix = src.suffix.lower()
    if suffix == ".npz":
        cap = load_depth_capture(src)
        n, h, w = cap.depth.shape
        with phase(f"fusing {n} depth images ({w}x{h}) of {src.name} into a TSDF"):
            return reconstruct_from_depth(
                cap.depth, cap.intrinsics, cap.poses, voxel_size, truncation, bounds
            )
    if suffix in (".ply", ".npy"):
        points, normals = load_point_cloud(src)
        how = "given" if normals is not None else "estimated"
        with phase(f"splatting {len(points)} points ({how} normals) of {src.name} into a TSDF"):
            return reconstruct_from_points(points, normals, voxel_size, truncation, bounds)
    raise DataFileError(
        f"capture {str(src)!r}: expected a depth capture .npz or a point cloud .ply/.npy"
    )
