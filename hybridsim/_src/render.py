"""Pictures of rollouts with MuJoCo Warp's batch renderer (runs on CPU and CUDA).

Frames are rendered as a batch: each frame is one "world" of the renderer.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from hybridsim._src.errors import SceneError, ShapeError
from hybridsim._src.io import atomic_path
from hybridsim._src.loader import Scene
from hybridsim._src.params import WorldParams


def _check_inputs(
    scene: Scene, qpos: np.ndarray, camera: str | int | None
) -> tuple[np.ndarray, int]:
    """``qpos (N, nq)`` as float64 and the camera's id (``main`` by default)."""
    import mujoco

    m = scene.mj_model
    qpos = np.asarray(qpos, dtype=np.float64)
    if qpos.ndim != 2 or qpos.shape[1] != m.nq:
        raise ShapeError(f"qpos to render must have shape (N, {m.nq}), got {qpos.shape}")
    if m.ncam == 0:
        raise SceneError(f"scene {scene.name!r} has no camera to render from")
    if camera is None:
        return qpos, max(0, mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, "main"))
    if isinstance(camera, str):
        cam_id = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        if cam_id < 0:
            raise SceneError(f"scene {scene.name!r} has no camera named {camera!r}")
        return qpos, cam_id
    return qpos, int(camera)


def _frame_fields(params: WorldParams | None, n: int) -> dict[str, np.ndarray]:
    """Per-frame model fields (float32) from ``params``, checked against ``n`` frames."""
    if params is None:
        return {}
    if params.batch_size != n:
        raise ShapeError(f"render params are for {params.batch_size} frames, qpos has {n}")
    return {k: np.asarray(v, np.float32) for k, v in params.fields.items()}


def _rgb_context(m, worlds: int, width: int, height: int, camera_id: int):
    """MuJoCo Warp's render context for RGB frames of one camera in ``worlds`` worlds."""
    from mujoco import mjx

    return mjx.create_render_context(
        mjm=m,
        nworld=worlds,
        cam_res=(width, height),
        render_rgb=True,
        render_depth=False,
        use_shadows=False,
        cam_active=[camera_id],
    )


@dataclasses.dataclass(frozen=True)
class FrameRenderer:
    """Renders ``(n, nq)`` states to ``(n, height, width, 3)`` uint8 frames, ``batch`` at a
    time, with one render context and one compiled step for every call (the last batch is
    padded). Build it once per scene, camera and size, and call it for every video."""

    scene: Scene
    camera_id: int
    width: int
    height: int
    batch: int
    _render: Any  # jitted (batch, nq), (batch, nmocap, 3) float32 -> packed rgb
    _ctx: Any
    _mocap: np.ndarray  # (nmocap, 3) the model's mocap positions, the default

    @staticmethod
    def build(
        scene: Scene, camera_id: int, width: int, height: int, batch: int = 64
    ) -> FrameRenderer:
        import jax
        from mujoco import mjx

        from hybridsim._src.progress import quiet_warp

        quiet_warp()
        m = scene.mj_model
        ctx = _rgb_context(m, batch, width, height, camera_id)
        mx = mjx.put_model(m, impl="warp")
        mocap = np.asarray(mjx.make_data(m, impl="warp").mocap_pos, np.float32)

        def one(q, mp):
            d = mjx.make_data(m, impl="warp").replace(qpos=q, mocap_pos=mp)
            return mjx.forward(mx, d)

        @jax.jit
        def render(q, mp):  # (batch, nq), (batch, nmocap, 3) -> packed rgb of the camera
            dx = jax.vmap(one)(q, mp)
            dx = mjx.refit_bvh(mx, dx, ctx.pytree())
            return mjx.render(mx, dx, ctx.pytree())[0]

        return FrameRenderer(scene, camera_id, width, height, batch, render, ctx, mocap)

    def __call__(self, qpos: np.ndarray, mocap_pos: np.ndarray | None = None) -> np.ndarray:
        """``qpos (n, nq)`` (and ``mocap_pos (n, nmocap, 3)`` m, default the model's) ->
        ``(n, height, width, 3)`` uint8 RGB."""
        from mujoco import mjx

        qpos = np.asarray(qpos, np.float32)
        if mocap_pos is None:
            mocap_pos = np.broadcast_to(self._mocap, (len(qpos), *self._mocap.shape))
        mocap_pos = np.asarray(mocap_pos, np.float32)
        out = []
        for start in range(0, len(qpos), self.batch):
            q, mp = qpos[start : start + self.batch], mocap_pos[start : start + self.batch]
            pad = self.batch - len(q)
            q = np.concatenate([q, np.repeat(q[-1:], pad, 0)])
            mp = np.concatenate([mp, np.repeat(mp[-1:], pad, 0)])
            rgb = mjx.get_rgb(self._ctx.pytree(), 0, self._render(q, mp))
            out.append(np.asarray(rgb)[: self.batch - pad])
        frames = np.concatenate(out) if out else np.zeros((0, self.height, self.width, 3))
        return (np.clip(frames, 0.0, 1.0) * 255).astype(np.uint8)


def render_frames(
    scene: Scene,
    qpos: np.ndarray,
    width: int = 160,
    height: int = 120,
    camera: str | int | None = None,
    mocap_pos: np.ndarray | None = None,
    params: WorldParams | None = None,
) -> np.ndarray:
    """Renders one RGB frame per row of ``qpos (N, nq)`` -> ``(N, height, width, 3)`` uint8.

    ``camera`` is a camera name or id of the scene (default: the one named ``main``,
    else the first camera). ``mocap_pos (N, nmocap, 3)`` (m) places the mocap bodies (e.g.
    a reach target); default: their positions in the model. ``params``, when given, holds
    per-frame model fields (``WorldParams`` with batch size N, e.g. from
    ``hybridsim.randomize``): frame i is rendered with row i (colours, lights, camera
    pose, ...). To render many batches of one scene, build a ``FrameRenderer`` once.
    """
    qpos, cam_id = _check_inputs(scene, qpos, camera)
    n, m = qpos.shape[0], scene.mj_model
    if mocap_pos is not None:
        mocap_pos = np.asarray(mocap_pos, dtype=np.float64)
        if mocap_pos.shape != (n, m.nmocap, 3):
            raise ShapeError(
                f"mocap_pos must have shape ({n}, {m.nmocap}, 3), got {mocap_pos.shape}"
            )
    fields = _frame_fields(params, n)
    if not fields:
        return FrameRenderer.build(scene, cam_id, width, height, batch=max(n, 1))(qpos, mocap_pos)
    return _render_with_fields(scene, qpos, cam_id, width, height, mocap_pos, fields)


def _render_with_fields(scene, qpos, cam_id, width, height, mocap_pos, fields) -> np.ndarray:
    """``render_frames`` with per-frame model fields (one world per frame)."""
    import jax
    from mujoco import mjx

    from hybridsim._src.progress import quiet_warp

    quiet_warp()
    m, n = scene.mj_model, qpos.shape[0]
    if mocap_pos is None:  # MJX's default: the mocap bodies' model positions
        mocap_pos = np.broadcast_to(mjx.make_data(m, impl="warp").mocap_pos, (n, m.nmocap, 3))
    ctx = _rgb_context(m, n, width, height, cam_id)
    mx = mjx.put_model(m, impl="warp")

    def frame_with(f, q, mp):  # per-frame model fields (colours, lights, camera pose, ...)
        mf = mx.tree_replace(f)
        d = mjx.make_data(m, impl="warp").replace(qpos=q, mocap_pos=mp)
        d = mjx.forward(mf, d)
        d = mjx.refit_bvh(mf, d, ctx.pytree())
        return mjx.render(mf, d, ctx.pytree())[0]

    q32, mp32 = qpos.astype(np.float32), np.asarray(mocap_pos, np.float32)
    rgb_packed = jax.jit(jax.vmap(frame_with))(fields, q32, mp32)
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


def render_depth(
    scene: Scene,
    qpos: np.ndarray,
    width: int = 160,
    height: int = 120,
    camera: str | int | None = None,
    params: WorldParams | None = None,
    far: float = 100.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Depth images of a scene, with their cameras: a synthetic depth capture.

    Frame i shows ``qpos[i] (N, nq)`` from the scene's camera (default: ``main``, else
    the first), moved by row i of ``params`` when given (e.g. ``cam_pos``/``cam_quat``
    from ``hybridsim.randomize`` to look from many poses).

    Returns:
      ``depth (N, height, width)`` float32 m, z-depth along the optical axis, NaN where
      nothing is hit within ``far`` m; ``intrinsics (3, 3)`` (pixels); ``poses (N, 4, 4)``
      camera-to-world in OpenCV axes (x right, y down, z forward): the inputs of
      ``reconstruct_from_depth`` and of a depth-capture file.
    """
    import jax
    from mujoco import mjx

    from hybridsim._src.progress import quiet_warp

    quiet_warp()
    m = scene.mj_model
    qpos, cam_id = _check_inputs(scene, qpos, camera)
    if m.cam_projection[cam_id] != 0 or m.cam_sensorsize[cam_id, 1] != 0:
        raise SceneError(
            f"camera {cam_id} of scene {scene.name!r}: depth captures need a perspective "
            "camera given by fovy (no orthographic projection, no sensorsize/intrinsics)"
        )
    n = qpos.shape[0]
    fields = _frame_fields(params, n)
    ctx = mjx.create_render_context(
        mjm=m,
        nworld=n,
        cam_res=(width, height),
        render_rgb=False,
        render_depth=True,
        use_shadows=False,
        cam_active=[cam_id],
    )
    mx = mjx.put_model(m, impl="warp")

    def frame(f, q):
        mf = mx.tree_replace(f) if f else mx
        d = mjx.forward(mf, mjx.make_data(m, impl="warp").replace(qpos=q))
        d = mjx.refit_bvh(mf, d, ctx.pytree())
        _, depth, _ = mjx.render(mf, d, ctx.pytree())
        return depth, d.cam_xpos[cam_id], d.cam_xmat[cam_id]

    depth_packed, xpos, xmat = jax.jit(jax.vmap(frame))(fields, qpos.astype(np.float32))
    depth = np.asarray(mjx.get_depth(ctx.pytree(), 0, depth_packed, far))[..., 0] * far
    depth = np.where((depth > 0) & (depth < far), depth, np.nan).astype(np.float32)
    # Ray through pixel (u, v) passes at ((u + 0.5) / W, (v + 0.5) / H) of the image plane.
    f = 0.5 * height / np.tan(np.deg2rad(float(m.cam_fovy[cam_id])) / 2)
    intrinsics = np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]])
    poses = np.tile(np.eye(4), (n, 1, 1))
    poses[:, :3, :3] = np.asarray(xmat, np.float64).reshape(n, 3, 3) * np.array([1, -1, -1])
    poses[:, :3, 3] = np.asarray(xpos, np.float64)
    return depth, intrinsics.astype(np.float32), poses.astype(np.float32)
