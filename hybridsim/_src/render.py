"""Pictures of rollouts with MuJoCo Warp's batch renderer (runs on CPU and CUDA).

Frames are rendered as a batch: each frame is one "world" of the renderer.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from hybridsim._src.errors import SceneError, ShapeError
from hybridsim._src.io import atomic_path
from hybridsim._src.scene import Scene


def render_frames(
    scene: Scene,
    qpos: np.ndarray,
    width: int = 160,
    height: int = 120,
    camera: str | int | None = None,
    mocap_pos: np.ndarray | None = None,
) -> np.ndarray:
    """Renders one RGB frame per row of ``qpos (N, nq)`` -> ``(N, height, width, 3)`` uint8.

    ``camera`` is a camera name or id of the scene (default: the one named ``main``,
    else the first camera). ``mocap_pos (N, nmocap, 3)`` (m) places the mocap bodies (e.g.
    a reach target); default: their positions in the model.
    """
    import jax
    import mujoco
    from mujoco import mjx

    from hybridsim._src.progress import quiet_warp

    quiet_warp()
    m = scene.mj_model
    qpos = np.asarray(qpos, dtype=np.float64)
    if qpos.ndim != 2 or qpos.shape[1] != m.nq:
        raise ShapeError(f"qpos to render must have shape (N, {m.nq}), got {qpos.shape}")
    if m.ncam == 0:
        raise SceneError(f"scene {scene.name!r} has no camera to render from")
    if camera is None:
        cam_id = max(0, mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, "main"))
    elif isinstance(camera, str):
        cam_id = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        if cam_id < 0:
            raise SceneError(f"scene {scene.name!r} has no camera named {camera!r}")
    else:
        cam_id = int(camera)
    n = qpos.shape[0]
    if mocap_pos is None:  # MJX's default: the mocap bodies' model positions
        mocap_pos = np.broadcast_to(mjx.make_data(m, impl="warp").mocap_pos, (n, m.nmocap, 3))
    mocap_pos = np.asarray(mocap_pos, dtype=np.float64)
    if mocap_pos.shape != (n, m.nmocap, 3):
        raise ShapeError(f"mocap_pos must have shape ({n}, {m.nmocap}, 3), got {mocap_pos.shape}")
    ctx = mjx.create_render_context(
        mjm=m,
        nworld=n,
        cam_res=(width, height),
        render_rgb=True,
        render_depth=False,
        use_shadows=False,
        cam_active=[cam_id],
    )
    mx = mjx.put_model(m, impl="warp")

    def frame(q, mp):
        d = mjx.make_data(m, impl="warp").replace(qpos=q, mocap_pos=mp)
        return mjx.forward(mx, d)

    dx = jax.jit(jax.vmap(frame))(qpos.astype(np.float32), mocap_pos.astype(np.float32))
    dx = jax.jit(mjx.refit_bvh)(mx, dx, ctx.pytree())
    rgb_packed, _, _ = jax.jit(mjx.render)(mx, dx, ctx.pytree())
    rgb = mjx.get_rgb(ctx.pytree(), 0, rgb_packed)  # only the active camera is rendered
    return (np.clip(np.asarray(rgb), 0.0, 1.0) * 255).astype(np.uint8)


def tile(frames: np.ndarray, columns: int) -> np.ndarray:
    """Lays ``(N, H, W, 3)`` frames out on a grid ``(rows*H, columns*W, 3)``."""
    n, h, w, c = frames.shape
    rows = -(-n // columns)
    grid = np.zeros((rows * h, columns * w, c), dtype=frames.dtype)
    for i in range(n):
        r, col = divmod(i, columns)
        grid[r * h : (r + 1) * h, col * w : (col + 1) * w] = frames[i]
    return grid


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Writes an ``(H, W, 3)`` uint8 image as PNG, atomically."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ShapeError(f"image must have shape (H, W, 3), got {image.shape}")
    h, w, _ = image.shape
    raw = b"".join(b"\x00" + image[r].tobytes() for r in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        tmp.write_bytes(png)
    return path
