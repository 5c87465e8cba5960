"""Mesh import for scene objects: units, centring, repair, mass properties, collision, decimation.

A mesh becomes one visual mesh (geom group 2, no contacts) and one or more convex collision
meshes (geom group 3). Collision shapes come from CoACD's convex decomposition when the
``coacd`` package is importable, else from the convex hull of each connected part of the
mesh (MuJoCo collides every mesh as its convex hull, so without CoACD the concavities of a
part, e.g. the inside of a bowl or of a scanned room, are filled); ``ImportedMesh`` records
which. Heavy visual meshes are decimated with quadric decimation
(``trimesh.simplify_quadric_decimation``, which needs the ``fast-simplification`` package);
without it, a vertex-clustering fallback (vertices snapped to a grid and merged) is used and
recorded as ``"vertex_clustering"``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from hybridsim._src.errors import SceneError

UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001, "in": 0.0254}
"""Metres per unit of a mesh file."""
DEFAULT_DENSITY = 1000.0
"""kg/m^3 when neither mass nor density is given."""
_MIN_EXTENT = 1e-6  # m: a mesh thinner than this along an axis has no volume


@dataclasses.dataclass(frozen=True, eq=False)
class ImportedMesh:
    """A checked, repaired, scaled mesh ready for the builder. Lengths in metres."""

    source: str
    """File path, or ``"<trimesh>"`` for an in-memory mesh."""
    visual: Any
    """``trimesh.Trimesh`` shown in geom group 2, in the body frame (centred if asked)."""
    collision: tuple[Any, ...]
    """Convex ``trimesh.Trimesh`` pieces for contacts (geom group 3), in the body frame."""
    collision_method: str
    """``"coacd"`` or ``"convex_hull"``."""
    decimation: str
    """``"none"``, ``"quadric"`` or ``"vertex_clustering"`` (fallback without
    fast-simplification)."""
    repairs: tuple[str, ...]
    """What repair did, e.g. ``("merged vertices", "filled holes")``."""
    watertight: bool
    volume: float
    """m^3 (0 for static meshes that are not watertight)."""
    mass: float
    """kg (0 for static meshes)."""
    inertia: tuple[float, float, float, float, float, float]
    """Full inertia about the centre of mass in the body frame, ``(ixx, iyy, izz, ixy, ixz,
    iyz)`` in kg m^2 (zeros for static meshes)."""
    com: tuple[float, float, float]
    """Centre of mass in the body frame (m); zeros after ``center="com"``."""
    offset: tuple[float, float, float]
    """Translation (m) applied to the file's vertices by centring (add it back to place the
    mesh where the file had it)."""


def _load(source: Any, name: str):
    import trimesh

    if isinstance(source, trimesh.Trimesh):
        return source.copy()
    path = Path(source)
    if not path.is_file():
        raise SceneError(f"mesh file {name!r} does not exist")
    try:
        mesh = trimesh.load(str(path), force="mesh", process=False)
    except Exception as e:  # trimesh raises many types for unreadable files
        raise SceneError(f"mesh file {name!r} could not be read by trimesh: {e}") from None
    if not isinstance(mesh, trimesh.Trimesh):
        raise SceneError(f"mesh file {name!r} holds no triangle mesh (got {type(mesh).__name__})")
    return mesh


def _repair(mesh, need_volume: bool) -> tuple[Any, list[str]]:
    import trimesh

    done = []
    n = len(mesh.vertices)
    mesh.merge_vertices()
    if len(mesh.vertices) < n:
        done.append("merged vertices")
    nf = len(mesh.faces)
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.update_faces(mesh.unique_faces())
    mesh.remove_unreferenced_vertices()
    if len(mesh.faces) < nf:
        done.append("removed degenerate faces")
    if not mesh.is_watertight and need_volume:
        trimesh.repair.fill_holes(mesh)
        if mesh.is_watertight:
            done.append("filled holes")
    if not mesh.is_winding_consistent:
        trimesh.repair.fix_winding(mesh)
        done.append("fixed winding")
    if mesh.is_watertight and mesh.volume < 0:
        trimesh.repair.fix_inversion(mesh)
        done.append("fixed inverted normals")
    return mesh, done


def _vertex_clustering(mesh, face_count: int):
    """Decimation fallback: snaps vertices to a grid and merges them, coarsening until the
    mesh has at most ``face_count`` faces."""
    import trimesh

    lo, hi = mesh.bounds
    cells = max(8, int(np.sqrt(face_count / 2)))
    out = mesh
    for _ in range(12):
        pitch = float(np.max(hi - lo)) / cells
        keys = np.floor((mesh.vertices - lo) / pitch).astype(np.int64)
        _, inverse = np.unique(keys, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        counts = np.bincount(inverse)
        verts = np.zeros((counts.size, 3))
        np.add.at(verts, inverse, mesh.vertices)
        verts /= counts[:, None]
        faces = inverse[mesh.faces]
        keep = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2])
        keep &= faces[:, 0] != faces[:, 2]
        out = trimesh.Trimesh(verts, faces[keep], process=True)
        if len(out.faces) <= face_count:
            break
        cells = int(cells * 0.8)
    return out


def _decimate(mesh, max_faces: int) -> tuple[Any, str]:
    if max_faces <= 0 or len(mesh.faces) <= max_faces:
        return mesh, "none"
    try:
        import fast_simplification  # noqa: F401
    except ImportError:
        return _vertex_clustering(mesh, max_faces), "vertex_clustering"
    return mesh.simplify_quadric_decimation(face_count=max_faces), "quadric"


def coacd_available() -> bool:
    """Whether CoACD (``pip install coacd``) can be imported."""
    try:
        import coacd  # noqa: F401
    except ImportError:
        return False
    return True


def _convex_pieces(mesh, method: str, max_hulls: int, name: str) -> tuple[tuple[Any, ...], str]:
    import trimesh

    if method not in ("auto", "coacd", "convex_hull"):
        raise SceneError(
            f"mesh {name!r}: collision {method!r}; expected 'auto', 'coacd' or 'convex_hull'"
        )
    if method == "coacd" and not coacd_available():
        raise SceneError(
            f"mesh {name!r}: collision 'coacd' asked for but the coacd package is not "
            "installed (pip install coacd), or use 'auto' / 'convex_hull'"
        )
    if method in ("auto", "coacd") and coacd_available():
        import coacd

        if hasattr(coacd, "set_log_level"):
            coacd.set_log_level("error")
        parts = coacd.run_coacd(
            coacd.Mesh(np.asarray(mesh.vertices), np.asarray(mesh.faces)),
            max_convex_hull=max_hulls,
        )
        pieces = tuple(trimesh.Trimesh(np.asarray(v), np.asarray(f)).convex_hull for v, f in parts)
        pieces = tuple(p for p in pieces if p.volume > 0)
        if pieces:
            return pieces, "coacd"
    # Without CoACD: one convex hull per connected part (e.g. the separate meshes of a GLB
    # scene), or one hull of everything when there are more parts than max_hulls.
    parts = mesh.split(only_watertight=False)
    parts = [p for p in parts if np.min(p.extents) >= _MIN_EXTENT]
    try:
        if 1 < len(parts) <= max_hulls:
            return tuple(p.convex_hull for p in parts), "convex_hull"
        return (mesh.convex_hull,), "convex_hull"
    except Exception as e:  # qhull errors on flat or degenerate point sets
        raise SceneError(f"mesh {name!r}: no convex hull ({e}); the mesh has no volume") from None


def import_mesh(
    source: Any,
    *,
    name: str | None = None,
    scale: float | tuple[float, float, float] = 1.0,
    units: str = "m",
    center: str | None = None,
    density: float | None = None,
    mass: float | None = None,
    static: bool = False,
    collision: str = "auto",
    max_faces: int = 20000,
    max_hulls: int = 16,
) -> ImportedMesh:
    """Loads, checks and prepares a mesh for a scene object.

    Args:
      source: a mesh file (OBJ, STL, PLY, GLB, ... anything trimesh reads; a GLB scene is
        flattened into one mesh) or an in-memory ``trimesh.Trimesh`` (not modified).
      name: how errors name the mesh (default: the file path).
      scale: factor(s) applied after ``units``.
      units: unit of the file's coordinates, a key of ``UNITS``.
      center: ``"com"`` (centre of mass at the origin), ``"bounds"`` (bounding-box centre)
        or ``"none"``; default ``"com"`` for free objects, ``"none"`` for static ones.
      density: kg/m^3 (default ``DEFAULT_DENSITY``); exclusive with ``mass`` (kg).
      static: a static mesh needs no volume or mass (it may be open, e.g. a scanned room).
      collision: ``"auto"``, ``"coacd"`` or ``"convex_hull"``.
      max_faces: visual meshes with more faces are decimated to this many (0: never).
      max_hulls: most convex pieces CoACD may return.

    Raises:
      SceneError: naming the mesh, when it is missing or unreadable, empty, has NaN or
        infinite vertices, has no volume, or (free objects) is not watertight after repair.
    """
    label = name or (str(source) if isinstance(source, str | Path) else "<trimesh>")
    if units not in UNITS:
        raise SceneError(f"mesh {label!r}: units {units!r}; expected one of {sorted(UNITS)}")
    if mass is not None and density is not None:
        raise SceneError(f"mesh {label!r}: give mass or density, not both")
    if (mass is not None and mass <= 0) or (density is not None and density <= 0):
        raise SceneError(f"mesh {label!r}: mass and density must be positive")
    mesh = _load(source, label)
    if len(mesh.vertices) == 0 or len(mesh.faces) == 0:
        raise SceneError(f"mesh {label!r} is empty (no vertices or no faces)")
    if not np.all(np.isfinite(mesh.vertices)):
        bad = int(np.count_nonzero(~np.all(np.isfinite(mesh.vertices), axis=1)))
        raise SceneError(f"mesh {label!r} has {bad} vertices with NaN or infinite coordinates")
    factor = UNITS[units] * np.broadcast_to(np.asarray(scale, dtype=np.float64), (3,))
    if np.any(factor <= 0):
        raise SceneError(f"mesh {label!r}: scale must be positive, got {scale!r}")
    mesh.apply_transform(np.diag([*factor, 1.0]))
    mesh, repairs = _repair(mesh, need_volume=not static)
    if len(mesh.faces) == 0:
        raise SceneError(f"mesh {label!r} has only degenerate faces")
    extents = mesh.extents
    if np.min(extents) < _MIN_EXTENT:
        raise SceneError(
            f"mesh {label!r} has zero volume: its extents are {np.round(extents, 9).tolist()} m "
            "(flat or a single line)"
        )
    watertight = bool(mesh.is_watertight)
    if not static:
        if not watertight:
            raise SceneError(
                f"mesh {label!r} is not watertight even after repair (holes or non-manifold "
                "edges), so it has no volume or mass; repair it, or make the object static"
            )
        if mesh.volume <= 1e-12:
            raise SceneError(f"mesh {label!r} has zero volume ({mesh.volume:g} m^3)")
    center = center or ("none" if static else "com")
    if center == "com" and watertight:
        offset = -np.asarray(mesh.center_mass)
    elif center in ("bounds", "com"):
        offset = -mesh.bounds.mean(axis=0)
    elif center == "none":
        offset = np.zeros(3)
    else:
        raise SceneError(f"mesh {label!r}: center {center!r}; expected 'com', 'bounds' or 'none'")
    mesh.apply_translation(offset)
    volume, total, inertia, com = 0.0, 0.0, (0.0,) * 6, (0.0, 0.0, 0.0)
    if not static:
        volume = float(mesh.volume)
        rho = mass / volume if mass is not None else (density or DEFAULT_DENSITY)
        mesh.density = rho
        total = float(mesh.mass)
        i = np.asarray(mesh.moment_inertia)
        inertia = (i[0, 0], i[1, 1], i[2, 2], i[0, 1], i[0, 2], i[1, 2])
        inertia = tuple(float(x) for x in inertia)
        com = tuple(float(x) for x in mesh.center_mass)
    pieces, method = _convex_pieces(mesh, collision, max_hulls, label)
    visual, decimation = _decimate(mesh, max_faces)
    return ImportedMesh(
        source=str(source) if isinstance(source, str | Path) else "<trimesh>",
        visual=visual,
        collision=pieces,
        collision_method=method,
        decimation=decimation,
        repairs=tuple(repairs),
        watertight=watertight,
        volume=volume,
        mass=total,
        inertia=inertia,
        com=com,
        offset=tuple(float(x) for x in offset),
    )
