"""The one-page report of ``hybridsim eval policies --report DIR``.

``DIR`` receives::

    report.png    scores with 95% intervals; model against reference with the metrics
    report.html   self-contained: the PNG embedded (base64), a table, links to the videos
    report.json   the evaluation as the CLI prints it with --json (marks DIR as a report)
    videos/       NAME.mp4: the lowest-scoring episode of each policy (scenes with a camera)

The folder is written into a temporary sibling and renamed onto ``DIR``; an existing
``DIR`` is replaced only when it is empty or a previous report (it has ``report.json``
of this format), never another folder.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from hybridsim._src.errors import DataFileError

FORMAT = "hybridsim-eval-report-1"
VIDEO_SIZE = (160, 120)
"""Width and height of the videos in pixels."""
VIDEO_FPS = 25
"""Frames per second of the videos: states are subsampled to about this rate."""


def check_report_dir(path: str | Path) -> Path:
    """``path`` if a report may be written there (module doc), else DataFileError."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise DataFileError(f"report folder {str(path)!r} exists and is a file")
        if any(path.iterdir()) and not _is_report(path):
            raise DataFileError(
                f"report folder {str(path)!r} is not empty and holds no previous report; "
                "choose another folder"
            )
    return path


def _is_report(path: Path) -> bool:
    try:
        return json.loads((path / "report.json").read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def short_name(spec: str) -> str:
    """A policy's label in the figure: ``NAME`` of ``FILE.py:NAME``, a folder's name."""
    return spec.rpartition(":")[2] or Path(spec).name or spec


def write_report(
    path: str | Path,
    summary: dict[str, Any],
    results: dict[str, Any],
    scene: Any = None,
    control_dt: float = 0.0,
    video: bool = True,
    progress: Any = None,
) -> Path:
    """Writes the report of an evaluation to the folder ``path`` (module doc).

    ``summary`` is the CLI's JSON result (``policies``, ``ranking``, ``reference``,
    ``world``, ``errors``); ``results`` the PolicyResults (their worst episodes make the
    videos, rendered from ``scene`` when it has a camera and ``video`` is set).
    """
    say = progress or (lambda _: None)
    path = check_report_dir(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        _figure(tmp / "report.png", summary)
        videos, note = {}, None
        if video:
            videos, note = _videos(tmp / "videos", results, scene, control_dt, say)
        (tmp / "report.json").write_text(
            json.dumps({"format": FORMAT, **summary}, indent=2, allow_nan=False)
        )
        (tmp / "report.html").write_text(_html(summary, tmp / "report.png", videos, note))
        _readable(tmp)
        _replace_dir(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return path


def _readable(folder: Path) -> None:
    """Ordinary permissions (temporary files and folders are created private)."""
    folder.chmod(0o755)
    for p in folder.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)


def _replace_dir(new: Path, path: Path) -> None:
    """Renames ``new`` onto ``path``, moving a previous ``path`` aside first."""
    if not path.exists():
        os.replace(new, path)
        return
    old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old."))
    os.replace(path, old / "report")
    os.replace(new, path)
    shutil.rmtree(old)


def _figure(png: Path, summary: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pol = summary["policies"]
    names = list(pol)
    ref = summary.get("reference") or {}
    ranked = [n for n in names if n in ref]
    panels = 2 if len(ranked) >= 2 else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4.2), squeeze=False)
    ax = axes[0, 0]
    means = np.array([pol[n]["mean"] for n in names])
    lo = np.array([pol[n]["ci95"][0] for n in names])
    hi = np.array([pol[n]["ci95"][1] for n in names])
    x = np.arange(len(names))
    ax.bar(x, means, color="#4c78a8", yerr=[means - lo, hi - means], capsize=3)
    ax.set_xticks(x, [short_name(n) for n in names], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("score (mean, 95% CI)")
    ax.set_title(f"{len(names)} policies in {summary['world']['name']}", fontsize=10)
    if panels == 2:
        ax = axes[0, 1]
        xr = np.array([ref[n] for n in ranked])
        ym = np.array([pol[n]["mean"] for n in ranked])
        ylo = np.array([pol[n]["ci95"][0] for n in ranked])
        yhi = np.array([pol[n]["ci95"][1] for n in ranked])
        ax.errorbar(xr, ym, yerr=[ym - ylo, yhi - ym], fmt="o", color="#e45756", capsize=3)
        for xi, yi, n in zip(xr, ym, ranked, strict=True):
            ax.annotate(
                short_name(n), (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points"
            )
        ax.set_xlabel("reference score")
        ax.set_ylabel(f"{summary['world']['name']} score")
        r = summary.get("ranking") or {}
        ax.set_title(
            "  ".join(f"{k} {_fmt(r.get(k))}" for k in ("spearman", "pearson", "mmrv")),
            fontsize=9,
        )
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def _fmt(x: Any) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def _videos(out: Path, results, scene, control_dt: float, say) -> tuple[dict[str, str], str | None]:
    """The worst episode of every policy as ``videos/NAME.mp4`` -> ({spec: relative path},
    a note when there are none)."""
    todo = {s: r for s, r in results.items() if r.error is None and r.worst_qpos is not None}
    if scene is None or scene.mj_model.ncam == 0:
        return {}, "no videos: the scene has no camera"
    if not todo:
        return {}, None
    import importlib.util

    missing = [m for m in ("av", "warp") if importlib.util.find_spec(m) is None]
    if missing:
        return (
            {},
            f"no videos: rendering and encoding need {missing} (pip install 'hybridsim[data]')",
        )
    import mujoco

    from hybridsim._src.datasets.video import check_video_options, encode_mp4
    from hybridsim._src.render import FrameRenderer

    m = scene.mj_model
    camera = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_CAMERA, 0)
    if mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, "main") >= 0:
        camera = "main"
    width, height = VIDEO_SIZE
    cam_id = check_video_options(scene, camera, width, height, "h264")
    every = max(1, round(1.0 / (VIDEO_FPS * control_dt))) if control_dt > 0 else 1
    fps = max(1, round(1.0 / (every * control_dt))) if control_dt > 0 else VIDEO_FPS
    say(f"rendering the worst episode of {len(todo)} policies ({width}x{height}, camera {camera})")
    render = FrameRenderer.build(scene, cam_id, width, height, batch=64)
    out.mkdir()
    videos, used = {}, set()
    for spec, r in todo.items():
        name = _file_name(short_name(spec), used)
        encode_mp4(render(r.worst_qpos[::every]), out / f"{name}.mp4", fps, "h264")
        videos[spec] = f"videos/{name}.mp4"
    return videos, None


def _file_name(label: str, used: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("._") or "policy"
    name, k = base, 1
    while name in used:
        k += 1
        name = f"{base}_{k}"
    used.add(name)
    return name


def _html(summary: dict[str, Any], png: Path, videos: dict[str, str], note: str | None) -> str:
    e = html.escape
    img = base64.b64encode(png.read_bytes()).decode()
    ref = summary.get("reference") or {}
    rows = []
    for spec, p in summary["policies"].items():
        video = f'<a href="{e(videos[spec])}">worst episode</a>' if spec in videos else ""
        cells = [
            e(spec),
            f"{p['mean']:.4g}",
            f"[{p['ci95'][0]:.4g}, {p['ci95'][1]:.4g}]",
            str(p["n"]),
            _fmt(ref.get(spec)),
            video,
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    for spec, msg in (summary.get("errors") or {}).items():
        rows.append(f'<tr><td>{e(spec)}</td><td colspan="5">error: {e(msg)}</td></tr>')
    ranking = summary.get("ranking") or {}
    metrics = ", ".join(f"{k} {_fmt(v)}" for k, v in ranking.items())
    world = summary["world"]
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>hybridsim policy evaluation</title>
<style>body{{font-family:sans-serif;margin:1.5em}}td,th{{padding:2px 8px;text-align:left}}
table{{border-collapse:collapse}}tr:nth-child(even){{background:#f2f2f2}}</style></head>
<body><h2>Policy evaluation in {e(world["name"])}</h2>
<p>control step {world["control_dt"]:g} s, {e(str(summary.get("steps")))} steps,
{e(str(summary.get("episodes")))} episodes per policy, seed {e(str(summary.get("seed")))}.
{("Ranking against the reference: " + e(metrics) + ".") if metrics else ""}</p>
<img alt="scores" src="data:image/png;base64,{img}">
<table><tr><th>policy</th><th>mean</th><th>95% CI</th><th>n</th><th>reference</th>
<th>video</th></tr>
{chr(10).join(rows)}
</table>{f"<p>{e(note)}</p>" if note else ""}
</body></html>
"""
