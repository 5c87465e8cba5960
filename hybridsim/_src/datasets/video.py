"""Camera videos of exported episodes: batch rendering and mp4 files through PyAV.

Frames come from MuJoCo Warp's batch renderer (``hybridsim._src.render.FrameRenderer``:
the render context and the compiled step are built once for a fixed batch of frames and
reused for every episode). Videos are ``yuv420p`` mp4 files
encoded like LeRobot 0.4.4 encodes them (key frame every 2 frames, crf 30), which
LeRobot decodes with its ``pyav`` backend.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from hybridsim._src.errors import DataFileError, SceneError
from hybridsim._src.io import atomic_path

VCODECS = ("libsvtav1", "h264")
"""Encoders: ``libsvtav1`` (AV1, LeRobot's default) and ``h264`` (libx264)."""


def av_module():
    """The ``av`` (PyAV) module, or a DataFileError naming the extra to install."""
    try:
        import av
    except ImportError:
        raise DataFileError("videos need PyAV: pip install 'hybridsim[data]'") from None
    return av


def check_video_options(scene, camera: str, width: int, height: int, vcodec: str) -> int:
    """The id of ``camera`` in ``scene``; checks the size and that ``vcodec`` can encode.

    Raises SceneError (unknown camera) or DataFileError (size, codec)."""
    import mujoco

    m = scene.mj_model
    cam_id = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, camera)
    if cam_id < 0:
        names = [mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(m.ncam)]
        raise SceneError(f"scene {scene.name!r} has no camera {camera!r}; cameras: {names}")
    for what, value in (("width", width), ("height", height)):
        if not (isinstance(value, int) and 2 <= value <= 8192 and value % 2 == 0):
            raise DataFileError(
                f"video {what} must be an even number of pixels 2..8192, got {value!r}"
            )
    if vcodec not in VCODECS:
        raise DataFileError(f"video codec {vcodec!r} is not one of {list(VCODECS)}")
    av = av_module()
    try:
        av.codec.Codec(vcodec, "w")
    except Exception:  # PyAV raises its own error types for an unknown encoder
        raise DataFileError(
            f"this PyAV build cannot encode {vcodec!r}; choose another of {list(VCODECS)}"
        ) from None
    return int(cam_id)


def _quiet_encoders() -> None:
    """SVT-AV1 prints its configuration on stderr unless told otherwise (1 = errors)."""
    os.environ.setdefault("SVT_LOG", "1")


def encode_mp4(frames: np.ndarray, path: Path, fps: int, vcodec: str) -> Path:
    """Writes ``frames (n, H, W, 3)`` uint8 as an mp4 at ``fps`` atomically."""
    av = av_module()
    _quiet_encoders()
    options = {"g": "2", "crf": "30"}
    if vcodec == "libsvtav1":
        options["preset"] = "12"
    n, h, w, _ = frames.shape
    with atomic_path(path, suffix=".mp4") as tmp:
        with av.open(str(tmp), "w", format="mp4") as out:
            stream = out.add_stream(vcodec, rate=fps, options=options)
            stream.pix_fmt, stream.width, stream.height = "yuv420p", w, h
            for frame in frames:
                out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            out.mux(stream.encode())
    return path


def concat_mp4(parts: list[Path], path: Path) -> None:
    """Joins mp4 files of the same codec and size into ``path`` without re-encoding
    (FFmpeg's concat demuxer, packets copied), atomically."""
    av = av_module()
    fd, listing = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".ffconcat")
    try:
        with os.fdopen(fd, "w") as f:
            f.write("ffconcat version 1.0\n" + "".join(f"file '{p.resolve()}'\n" for p in parts))
        with atomic_path(path, suffix=".mp4") as tmp:
            with av.open(listing, "r", format="concat", options={"safe": "0"}) as src:
                with av.open(str(tmp), "w", format="mp4", options={"movflags": "faststart"}) as dst:
                    vin = src.streams.video[0]
                    vout = dst.add_stream_from_template(template=vin, opaque=True)
                    vout.time_base = vin.time_base
                    for packet in src.demux(vin):
                        if packet.dts is None:  # the demuxer's flush packet
                            continue
                        packet.stream = vout
                        dst.mux(packet)
    finally:
        os.unlink(listing)


def video_info(path: Path) -> dict:
    """The ``info`` entry of a video feature in ``meta/info.json`` (as LeRobot writes it)."""
    av = av_module()
    with av.open(str(path)) as f:
        s = f.streams.video[0]
        return {
            "video.height": int(s.height),
            "video.width": int(s.width),
            "video.codec": s.codec_context.codec.canonical_name,
            "video.pix_fmt": s.pix_fmt,
            "video.is_depth_map": False,
            "video.fps": int(s.base_rate),
            "video.channels": 3,
            "has_audio": False,
        }


def decode_mp4(path: Path) -> np.ndarray:
    """Every frame of an mp4 -> ``(n, H, W, 3)`` uint8 RGB."""
    av = av_module()
    with av.open(str(path)) as f:
        return np.stack([fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)])
