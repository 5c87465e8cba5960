"""Warp kernels for real-first reconstruction: depth back-projection, TSDF fusion, splatting.

Grids are ``(nx, ny, nz)`` voxel-centre samples: voxel ``(i, j, k)`` sits at
``origin + voxel_size * (i, j, k)`` (m). Cameras follow the OpenCV convention (x right,
y down, z forward); depth is the z coordinate in the camera frame (m), not the ray
length; pixel ``(u, v)`` = (column, row) has its centre at integer coordinates.

Fusion keeps two grids: ``sdf_sum`` (sum of weight * truncated SDF) and ``weight``; the
fused TSDF is their ratio (``normalize``), the weighted running average of every
observation. Unobserved voxels keep weight 0.

Each kernel sits above the function that launches it; the launchers take and return
NumPy arrays and run on Warp's CPU device. Warp is imported at module import: import this
module lazily (inside functions).
"""

from __future__ import annotations

import numpy as np
import warp as wp

_DEVICE = "cpu"


@wp.kernel
def _backproject(
    # Data in:
    depth_in: wp.array3d[float],
    intrinsics_in: wp.array[wp.mat33],
    cam_to_world_in: wp.array[wp.mat44],
    # Data out:
    points_out: wp.array3d[wp.vec3],
):
    """Pixels to world points. Launch dim ``(N, H, W)``.

    depth_in: (N, H, W) m, z-depth; non-finite or <= 0 marks an invalid pixel.
    intrinsics_in: (N,) 3x3 camera matrices (pixels).
    cam_to_world_in: (N,) 4x4 camera-to-world poses.
    points_out: (N, H, W) world points (m); NaN for invalid pixels.
    """
    img, v, u = wp.tid()
    z = depth_in[img, v, u]
    if not wp.isfinite(z) or z <= 0.0:
        nan = wp.nan
        points_out[img, v, u] = wp.vec3(nan, nan, nan)
        return
    k = intrinsics_in[img]
    x = (float(u) - k[0, 2]) * z / k[0, 0]
    y = (float(v) - k[1, 2]) * z / k[1, 1]
    points_out[img, v, u] = wp.transform_point(cam_to_world_in[img], wp.vec3(x, y, z))


def backproject(depth: np.ndarray, intrinsics: np.ndarray, cam_to_world: np.ndarray) -> np.ndarray:
    """World points of every pixel: ``(N, H, W, 3)`` float32 m, NaN for invalid pixels.

    depth: (N, H, W) m, z-depth; intrinsics: (N, 3, 3) pixels; cam_to_world: (N, 4, 4).
    """
    n, h, w = depth.shape
    points = wp.empty((n, h, w), dtype=wp.vec3, device=_DEVICE)
    wp.launch(
        _backproject,
        dim=(n, h, w),
        inputs=[
            wp.array(depth, dtype=float, device=_DEVICE),
            wp.array(intrinsics, dtype=wp.mat33, device=_DEVICE),
            wp.array(cam_to_world, dtype=wp.mat44, device=_DEVICE),
        ],
        outputs=[points],
        device=_DEVICE,
    )
    return points.numpy()


@wp.kernel
def _integrate_depth(
    # Model:
    origin: wp.vec3,
    voxel_size: float,
    truncation: float,
    # Data in:
    depth_in: wp.array3d[float],
    intrinsics_in: wp.array[wp.mat33],
    world_to_cam_in: wp.array[wp.mat44],
    # Data out:
    sdf_sum_out: wp.array3d[float],
    weight_out: wp.array3d[float],
    occluded_out: wp.array3d[float],
    blank_out: wp.array3d[float],
):
    """Fuses depth images into a TSDF. Launch dim ``(N, nx, ny, nz)``.

    Each image adds, to every voxel in front of its surface or less than ``truncation``
    (m) behind it, the projective signed distance ``depth - z`` divided by ``truncation``
    and clipped to ``[-1, 1]``, with weight 1. A voxel deeper than ``truncation`` behind
    the surface counts one occluded view instead; a voxel that projects onto an invalid
    pixel counts one blank view (no information).

    depth_in: (N, H, W) m, z-depth; non-finite or <= 0 pixels are skipped.
    intrinsics_in: (N,) 3x3 camera matrices (pixels).
    world_to_cam_in: (N,) 4x4 world-to-camera transforms.
    sdf_sum_out: (nx, ny, nz) running sum of weight * TSDF (accumulated).
    weight_out: (nx, ny, nz) running sum of weights (accumulated).
    occluded_out: (nx, ny, nz) count of views that saw the voxel hidden (accumulated).
    blank_out: (nx, ny, nz) count of views where it fell on an invalid pixel (accumulated).
    """
    img, i, j, k = wp.tid()
    p = origin + voxel_size * wp.vec3(float(i), float(j), float(k))
    c = wp.transform_point(world_to_cam_in[img], p)
    if c[2] <= 0.0:
        return
    kk = intrinsics_in[img]
    u = int(wp.round(kk[0, 0] * c[0] / c[2] + kk[0, 2]))
    v = int(wp.round(kk[1, 1] * c[1] / c[2] + kk[1, 2]))
    if u < 0 or v < 0 or u >= depth_in.shape[2] or v >= depth_in.shape[1]:
        return
    d = depth_in[img, v, u]
    if not wp.isfinite(d) or d <= 0.0:
        wp.atomic_add(blank_out, i, j, k, 1.0)
        return
    sdf = d - c[2]
    if sdf < -truncation:
        wp.atomic_add(occluded_out, i, j, k, 1.0)
        return
    wp.atomic_add(sdf_sum_out, i, j, k, wp.min(sdf / truncation, 1.0))
    wp.atomic_add(weight_out, i, j, k, 1.0)


def integrate_depth(
    origin: np.ndarray,
    voxel_size: float,
    truncation: float,
    shape: tuple[int, int, int],
    depth: np.ndarray,
    intrinsics: np.ndarray,
    world_to_cam: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fuses depth images into a fresh ``shape`` grid whose voxel (0, 0, 0) sits at
    ``origin`` (3,) m, spacing ``voxel_size`` m.

    depth: (N, H, W) m; intrinsics: (N, 3, 3) pixels; world_to_cam: (N, 4, 4).
    Returns ``(sdf_sum, weight, occluded, blank)``, each ``shape`` float32 (see the kernel).
    """
    grids = [wp.zeros(shape, dtype=float, device=_DEVICE) for _ in range(4)]
    wp.launch(
        _integrate_depth,
        dim=(depth.shape[0], *shape),
        inputs=[
            wp.vec3(*map(float, origin)),
            float(voxel_size),
            float(truncation),
            wp.array(depth, dtype=float, device=_DEVICE),
            wp.array(intrinsics, dtype=wp.mat33, device=_DEVICE),
            wp.array(world_to_cam, dtype=wp.mat44, device=_DEVICE),
        ],
        outputs=grids,
        device=_DEVICE,
    )
    sdf_sum, weight, occluded, blank = (g.numpy() for g in grids)
    return sdf_sum, weight, occluded, blank


@wp.kernel
def _splat_oriented_points(
    # Model:
    origin: wp.vec3,
    voxel_size: float,
    truncation: float,
    radius: int,
    # Data in:
    points_in: wp.array[wp.vec3],
    normals_in: wp.array[wp.vec3],
    # Data out:
    sdf_sum_out: wp.array3d[float],
    weight_out: wp.array3d[float],
):
    """Splats oriented points into a TSDF. Launch dim ``(P,)``.

    Every voxel within ``radius`` voxels (a cube) of a point gets that point's tangent-plane
    distance ``dot(x - p, n) / truncation`` (clipped to ``[-1, 1]``) with a Gaussian weight
    of the voxel's distance to the point (sigma = ``radius * voxel_size / 2``).

    points_in: (P,) m, world frame.
    normals_in: (P,) unit outward normals.
    sdf_sum_out: (nx, ny, nz) running sum of weight * TSDF (accumulated).
    weight_out: (nx, ny, nz) running sum of weights (accumulated).
    """
    pid = wp.tid()
    p = points_in[pid]
    n = normals_in[pid]
    g = (p - origin) / voxel_size
    ci = int(wp.round(g[0]))
    cj = int(wp.round(g[1]))
    ck = int(wp.round(g[2]))
    sigma = float(radius) * voxel_size * 0.5
    for i in range(ci - radius, ci + radius + 1):
        for j in range(cj - radius, cj + radius + 1):
            for k in range(ck - radius, ck + radius + 1):
                if i < 0 or j < 0 or k < 0:
                    continue
                if i >= weight_out.shape[0] or j >= weight_out.shape[1]:
                    continue
                if k >= weight_out.shape[2]:
                    continue
                x = origin + voxel_size * wp.vec3(float(i), float(j), float(k))
                r = x - p
                w = wp.exp(-wp.dot(r, r) / (2.0 * sigma * sigma))
                sdf = wp.clamp(wp.dot(r, n) / truncation, -1.0, 1.0)
                wp.atomic_add(sdf_sum_out, i, j, k, w * sdf)
                wp.atomic_add(weight_out, i, j, k, w)


def splat_oriented_points(
    origin: np.ndarray,
    voxel_size: float,
    truncation: float,
    radius: int,
    shape: tuple[int, int, int],
    points: np.ndarray,
    normals: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Splats ``points (P, 3)`` m with unit ``normals (P, 3)`` into a fresh ``shape`` grid
    (voxel (0, 0, 0) at ``origin`` m). Returns ``(sdf_sum, weight)``, each ``shape`` float32.
    """
    sdf_sum = wp.zeros(shape, dtype=float, device=_DEVICE)
    weight = wp.zeros(shape, dtype=float, device=_DEVICE)
    wp.launch(
        _splat_oriented_points,
        dim=len(points),
        inputs=[
            wp.vec3(*map(float, origin)),
            float(voxel_size),
            float(truncation),
            int(radius),
            wp.array(np.asarray(points, np.float32), dtype=wp.vec3, device=_DEVICE),
            wp.array(np.asarray(normals, np.float32), dtype=wp.vec3, device=_DEVICE),
        ],
        outputs=[sdf_sum, weight],
        device=_DEVICE,
    )
    return sdf_sum.numpy(), weight.numpy()


@wp.kernel
def _splat_unsigned_distance(
    # Model:
    origin: wp.vec3,
    voxel_size: float,
    radius: int,
    # Data in:
    points_in: wp.array[wp.vec3],
    # Data out:
    distance_out: wp.array3d[float],
):
    """Unsigned distance (m) to the nearest point, within ``radius`` voxels. Launch dim ``(P,)``.

    points_in: (P,) m, world frame.
    distance_out: (nx, ny, nz) m; initialise to a large value (atomic minimum).
    """
    pid = wp.tid()
    p = points_in[pid]
    g = (p - origin) / voxel_size
    ci = int(wp.round(g[0]))
    cj = int(wp.round(g[1]))
    ck = int(wp.round(g[2]))
    for i in range(ci - radius, ci + radius + 1):
        for j in range(cj - radius, cj + radius + 1):
            for k in range(ck - radius, ck + radius + 1):
                if i < 0 or j < 0 or k < 0:
                    continue
                if i >= distance_out.shape[0] or j >= distance_out.shape[1]:
                    continue
                if k >= distance_out.shape[2]:
                    continue
                x = origin + voxel_size * wp.vec3(float(i), float(j), float(k))
                wp.atomic_min(distance_out, i, j, k, wp.length(x - p))


def splat_unsigned_distance(
    origin: np.ndarray,
    voxel_size: float,
    radius: int,
    shape: tuple[int, int, int],
    points: np.ndarray,
) -> np.ndarray:
    """Distance (m) from each voxel of a ``shape`` grid (voxel (0, 0, 0) at ``origin`` m)
    to the nearest of ``points (P, 3)`` m within ``radius`` voxels; ``inf`` elsewhere.
    Returns ``shape`` float32."""
    distance = wp.full(shape, value=np.inf, dtype=float, device=_DEVICE)
    wp.launch(
        _splat_unsigned_distance,
        dim=len(points),
        inputs=[
            wp.vec3(*map(float, origin)),
            float(voxel_size),
            int(radius),
            wp.array(np.asarray(points, np.float32), dtype=wp.vec3, device=_DEVICE),
        ],
        outputs=[distance],
        device=_DEVICE,
    )
    return distance.numpy()


@wp.kernel
def _normalize(
    # Data in:
    sdf_sum_in: wp.array3d[float],
    weight_in: wp.array3d[float],
    interior_in: wp.array3d[wp.bool],
    # Data out:
    tsdf_out: wp.array3d[float],
):
    """Fused TSDF = sum / weight. Launch dim ``(nx, ny, nz)``.

    A voxel with no weight reads -1 when ``interior_in`` marks it (every view that had it
    in the image saw it hidden deep behind the surface), else 1 (unknown, treated as
    free). All arrays (nx, ny, nz); tsdf_out in [-1, 1].
    """
    i, j, k = wp.tid()
    w = weight_in[i, j, k]
    if w > 0.0:
        tsdf_out[i, j, k] = sdf_sum_in[i, j, k] / w
    elif interior_in[i, j, k]:
        tsdf_out[i, j, k] = -1.0
    else:
        tsdf_out[i, j, k] = 1.0


def normalize(sdf_sum: np.ndarray, weight: np.ndarray, interior: np.ndarray) -> np.ndarray:
    """The fused TSDF ``sdf_sum / weight``, ``(nx, ny, nz)`` float32 in [-1, 1]; voxels
    without weight read -1 where ``interior`` (bool) marks them, else 1."""
    tsdf = wp.empty(weight.shape, dtype=float, device=_DEVICE)
    wp.launch(
        _normalize,
        dim=weight.shape,
        inputs=[
            wp.array(sdf_sum, dtype=float, device=_DEVICE),
            wp.array(weight, dtype=float, device=_DEVICE),
            wp.array(interior, dtype=wp.bool, device=_DEVICE),
        ],
        outputs=[tsdf],
        device=_DEVICE,
    )
    return tsdf.numpy()
