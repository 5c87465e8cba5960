"""Declarative scene spec files (TOML or JSON): frozen dataclasses, read and write.

A spec names robots, objects, a table, a terrain, cameras and lights. Paths in a spec file
(mesh files, robot MJCF files, heightfield images) are relative to the spec file; in memory
they are absolute. Lengths are metres, masses kilograms, densities kg/m^3, angles radians,
quaternions ``(w, x, y, z)``.

TOML is read with ``tomllib`` and written with ``tomli-w``; JSON with the standard library.
The format follows the file suffix (``.toml`` or ``.json``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from hybridsim._src.errors import SceneError
from hybridsim._src.io import atomic_path

Vec3 = tuple[float, float, float]
Quat = tuple[float, float, float, float]

PRIMITIVES = ("box", "sphere", "cylinder", "capsule", "ellipsoid")
"""Primitive shapes; ``size`` follows MuJoCo: box half-extents (3,), sphere radius (1,),
cylinder/capsule (radius, half-length), ellipsoid semi-axes (3,)."""
TERRAIN_KINDS = ("flat", "rough", "stairs", "slopes", "file")
COLLISION_METHODS = ("auto", "coacd", "convex_hull")


@dataclasses.dataclass(frozen=True)
class RobotSpec:
    """A robot attached to the scene at a pose, its names prefixed."""

    source: str
    """An MJCF file path, or a MuJoCo Menagerie name (``"universal_robots_ur5e"``, optionally
    ``"name:entry"``) resolved through the ``mujoco-menagerie`` package."""
    pos: Vec3 = (0.0, 0.0, 0.0)
    """Base position in the world (m)."""
    quat: Quat = (1.0, 0.0, 0.0, 0.0)
    """Base orientation ``(w, x, y, z)``."""
    prefix: str = ""
    """Prepended to every name of the robot (bodies, joints, actuators, ...); must differ
    between robots, e.g. ``"left/"``."""


@dataclasses.dataclass(frozen=True)
class ObjectSpec:
    """A free (or static) object: a mesh file, an in-memory ``trimesh.Trimesh`` or a primitive."""

    name: str = ""
    """Body name; ``object<i>`` when empty."""
    mesh: Any = None
    """Mesh file (OBJ, STL, PLY, GLB, ...) or a ``trimesh.Trimesh``; exclusive with
    ``primitive``."""
    primitive: str = ""
    """One of ``PRIMITIVES``; exclusive with ``mesh``."""
    scan: str = ""
    """Real-first: a capture reconstructed into this object's mesh (TSDF fusion and
    marching cubes, ``hybridsim reconstruct``): a depth capture ``.npz`` or a point cloud
    ``.ply``/``.npy``, in metres in the world frame; exclusive with ``mesh`` and
    ``primitive``. Usually ``static`` (a scanned room or table)."""
    voxel_size: float = 0.005
    """Voxel edge (m) of the reconstruction from ``scan``."""
    size: tuple[float, ...] = ()
    """Primitive size in MuJoCo's convention (m); unused for meshes."""
    scale: float | Vec3 = 1.0
    """Mesh scale factor(s), applied after ``units``."""
    units: str = "m"
    """Length unit of the mesh file: ``m``, ``cm``, ``mm`` or ``in``."""
    pos: Vec3 = (0.0, 0.0, 0.0)
    """Position of the body (m); for meshes the centre of mass (after centring) sits here."""
    quat: Quat = (1.0, 0.0, 0.0, 0.0)
    mass: float | None = None
    """Total mass (kg); exclusive with ``density``."""
    density: float | None = None
    """Density (kg/m^3); default 1000 when neither mass nor density is given."""
    friction: tuple[float, ...] = (1.0, 0.005, 0.0001)
    """Sliding, torsional, rolling friction (MuJoCo ``geom/friction``); one number sets sliding."""
    rgba: tuple[float, float, float, float] = (0.7, 0.7, 0.7, 1.0)
    static: bool = False
    """No free joint: fixed collision geometry (e.g. a reconstructed room)."""
    collision: str = "auto"
    """``auto`` (CoACD when importable, else convex hull), ``coacd`` or ``convex_hull``."""
    max_faces: int = 20000
    """Visual meshes with more faces are decimated to this many."""
    material: str = ""
    """Name of a material of the scene (``materials``); replaces ``rgba`` when given."""


@dataclasses.dataclass(frozen=True)
class TableSpec:
    """A static table: a top slab on four legs."""

    size: tuple[float, float] = (0.8, 0.6)
    """Full extents of the top along x and y (m)."""
    height: float = 0.4
    """Height of the top surface above the ground (m)."""
    friction: tuple[float, ...] = (1.0, 0.005, 0.0001)
    pos: tuple[float, float] = (0.0, 0.0)
    """Centre of the top in the xy plane (m)."""
    thickness: float = 0.04
    rgba: tuple[float, float, float, float] = (0.55, 0.4, 0.28, 1.0)
    material: str = ""
    """Name of a material of the scene; replaces ``rgba`` when given."""


@dataclasses.dataclass(frozen=True)
class TerrainSpec:
    """Ground as a heightfield: procedural from a seed, or from an image / ``.npy`` file."""

    kind: str = "rough"
    """One of ``TERRAIN_KINDS``; ``file`` reads ``file``."""
    size: tuple[float, float] = (8.0, 8.0)
    """Full extents along x and y (m)."""
    seed: int = 0
    height: float = 0.08
    """Largest elevation (m): bump height (rough), total rise (stairs, slopes)."""
    resolution: float = 16.0
    """Samples per metre."""
    step: float = 0.3
    """Stair tread depth (m) for ``stairs``."""
    flat_centre: float = 1.0
    """Side (m) of a flat square kept at the centre (a spawn area); 0 for none."""
    file: str = ""
    """A grey-scale image (PNG, ...) or a 2-D ``.npy`` array, for ``kind = "file"``."""
    friction: tuple[float, ...] = (1.0, 0.005, 0.0001)


@dataclasses.dataclass(frozen=True)
class CameraSpec:
    """A fixed camera looking from ``pos`` at ``lookat``."""

    name: str = "main"
    pos: Vec3 = (1.2, -1.2, 1.2)
    lookat: Vec3 = (0.0, 0.0, 0.4)
    fovy: float = 45.0
    """Vertical field of view (degrees)."""


@dataclasses.dataclass(frozen=True)
class LightSpec:
    """A light at ``pos`` shining along ``dir``."""

    name: str = ""
    pos: Vec3 = (0.0, 0.0, 3.0)
    dir: Vec3 = (0.0, 0.0, -1.0)
    diffuse: Vec3 = (0.7, 0.7, 0.7)
    directional: bool = False
    castshadow: bool = True


@dataclasses.dataclass(frozen=True)
class MaterialSpec:
    """A material, optionally textured by an image file or one of MuJoCo's built-in patterns;
    objects and the table name it in ``material``."""

    name: str
    rgba: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    texture: str = ""
    """An image file (PNG) used as a 2-D texture; exclusive with ``builtin``."""
    builtin: str = ""
    """``checker``, ``gradient`` or ``flat``: a texture MuJoCo draws from ``rgb1``, ``rgb2``."""
    rgb1: Vec3 = (0.8, 0.8, 0.8)
    rgb2: Vec3 = (0.2, 0.2, 0.2)
    texrepeat: tuple[float, float] = (1.0, 1.0)
    specular: float = 0.5
    shininess: float = 0.5
    reflectance: float = 0.0


@dataclasses.dataclass(frozen=True)
class SceneSpec:
    """A whole scene. ``hybridsim.builder.build(spec)`` turns it into a ``SceneBuilder``."""

    name: str = "scene"
    timestep: float = 0.002
    """Physics timestep (s)."""
    floor: bool = True
    """A ground plane at z = 0 (ignored when there is a terrain)."""
    robots: tuple[RobotSpec, ...] = ()
    objects: tuple[ObjectSpec, ...] = ()
    table: TableSpec | None = None
    terrain: TerrainSpec | None = None
    cameras: tuple[CameraSpec, ...] = ()
    lights: tuple[LightSpec, ...] = ()
    materials: tuple[MaterialSpec, ...] = ()
    randomize: Any = None
    """Domain randomization of the built scene (``hybridsim.randomize.RandomizeConfig``),
    from the spec's ``[randomize]`` table, e.g. ``friction = [0.5, 1.5]``; None: none.
    ``hybridsim scene build`` writes it beside the scene as ``randomize.json``."""


_SECTIONS: dict[str, type] = {
    "robots": RobotSpec,
    "objects": ObjectSpec,
    "table": TableSpec,
    "terrain": TerrainSpec,
    "cameras": CameraSpec,
    "lights": LightSpec,
    "materials": MaterialSpec,
}


def bundled_specs() -> dict[str, Path]:
    """Example spec files shipped in ``hybridsim/assets/specs``, by name (file stem)."""
    import importlib.resources

    folder = Path(str(importlib.resources.files("hybridsim.assets"))) / "specs"
    return {p.stem: p for p in sorted(folder.glob("*.toml"))}


def _is_menagerie_name(source: str) -> bool:
    return not source.lower().endswith(".xml") and "/" not in source and "\\" not in source


def _where(path: str | Path | None) -> str:
    return f"spec file {str(path)!r}" if path is not None else "scene spec"


def _coerce(value: Any, hint: Any, what: str) -> Any:
    """Converts a TOML/JSON value to the type ``hint`` of a spec field."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        errors = []
        for arg in args:
            try:
                return _coerce(value, arg, what)
            except SceneError as e:
                errors.append(str(e))
        raise SceneError(errors[-1])
    if hint is Any:
        return value
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, list | tuple):
            raise SceneError(f"{what}: expected a list of numbers, got {value!r}")
        if len(args) != 2 or args[1] is not Ellipsis:
            if len(value) != len(args):
                raise SceneError(f"{what}: expected {len(args)} numbers, got {list(value)!r}")
        elem = args[0]
        return tuple(_coerce(v, elem, what) for v in value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SceneError(f"{what}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise SceneError(f"{what}: expected a finite number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SceneError(f"{what}: expected an integer, got {value!r}")
        return int(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise SceneError(f"{what}: expected true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise SceneError(f"{what}: expected a string, got {value!r}")
        return value
    raise SceneError(f"{what}: unsupported value {value!r}")


def _from_dict(cls: type, data: Any, what: str) -> Any:
    if not isinstance(data, dict):
        raise SceneError(f"{what}: expected a table of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise SceneError(f"{what}: unknown key(s) {unknown}; expected keys among {names}")
    kwargs = {}
    for key, value in data.items():
        if key == "friction" and isinstance(value, int | float) and not isinstance(value, bool):
            value = [value, 0.005, 0.0001]
        kwargs[key] = _coerce(value, hints[key], f"{what}: key {key!r}")
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise SceneError(f"{what}: {e}") from None


def spec_from_dict(data: dict, base_dir: str | Path | None = None, where: str = "") -> SceneSpec:
    """A ``SceneSpec`` from plain data (as read from TOML/JSON); relative paths are taken
    relative to ``base_dir`` (default: the working directory). Checks every key."""
    where = where or "scene spec"
    if not isinstance(data, dict):
        raise SceneError(f"{where}: expected a table at the top level")
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    top_names = [f.name for f in dataclasses.fields(SceneSpec)]
    unknown = sorted(set(data) - set(top_names))
    if unknown:
        raise SceneError(f"{where}: unknown key(s) {unknown}; expected keys among {top_names}")
    hints = typing.get_type_hints(SceneSpec)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        cls = _SECTIONS.get(key)
        if key == "randomize":
            kwargs[key] = _randomize_from(value, f"{where}: [randomize]")
        elif cls is None:
            kwargs[key] = _coerce(value, hints[key], f"{where}: key {key!r}")
        elif key in ("table", "terrain"):
            kwargs[key] = _from_dict(cls, value, f"{where}: [{key}]")
        else:
            if isinstance(value, dict):
                value = [value]
            if not isinstance(value, list):
                raise SceneError(f"{where}: {key!r} must be a list of tables, got {value!r}")
            kwargs[key] = tuple(
                _from_dict(cls, item, f"{where}: {key}[{i}]") for i, item in enumerate(value)
            )
    spec = SceneSpec(**kwargs)
    return _map_paths(spec, lambda p: str((base / p).resolve()) if p else p)


def _map_paths(spec: SceneSpec, fn) -> SceneSpec:
    robots = tuple(
        r if _is_menagerie_name(r.source) else dataclasses.replace(r, source=fn(r.source))
        for r in spec.robots
    )
    objects = tuple(
        dataclasses.replace(o, mesh=fn(str(o.mesh))) if isinstance(o.mesh, str | Path) else o
        for o in spec.objects
    )
    objects = tuple(dataclasses.replace(o, scan=fn(o.scan)) if o.scan else o for o in objects)
    terrain = spec.terrain
    if terrain is not None and terrain.file:
        terrain = dataclasses.replace(terrain, file=fn(terrain.file))
    materials = tuple(
        dataclasses.replace(m, texture=fn(m.texture)) if m.texture else m for m in spec.materials
    )
    return dataclasses.replace(
        spec, robots=robots, objects=objects, terrain=terrain, materials=materials
    )


def read_spec(path: str | Path) -> SceneSpec:
    """Reads a ``.toml`` or ``.json`` spec; paths in it are relative to the file.

    Raises:
      SceneError: the file is missing or malformed, or has an unknown key or a wrong value
        (the message names the file, the section and the key).
    """
    path = Path(path)
    if not path.is_file():
        raise SceneError(f"spec file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            data = tomllib.loads(path.read_text())
        elif suffix == ".json":
            data = json.loads(path.read_text())
        else:
            raise SceneError(f"spec file {str(path)!r}: expected a .toml or .json file")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SceneError(
            f"spec file {str(path)!r} is not valid {suffix[1:].upper()}: {e}"
        ) from None
    return spec_from_dict(data, path.parent.resolve(), _where(path))


def _clean(obj: Any, defaults: Any) -> dict:
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if value is None or value == getattr(defaults, f.name, object()):
            continue
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def _randomize_from(value: Any, where: str) -> Any:
    from hybridsim._src.errors import ShapeError
    from hybridsim._src.randomize import RandomizeConfig

    if isinstance(value, RandomizeConfig):
        return value
    if not isinstance(value, dict):
        raise SceneError(f"{where}: expected a table of ranges, got {value!r}")
    try:
        return RandomizeConfig.from_dict(value)
    except ShapeError as e:
        raise SceneError(f"{where}: {e}") from None


def spec_to_dict(spec: SceneSpec) -> dict:
    """Plain data of a spec (defaults left out); in-memory meshes are not allowed here."""
    data: dict[str, Any] = {}
    for f in dataclasses.fields(SceneSpec):
        value = getattr(spec, f.name)
        cls = _SECTIONS.get(f.name)
        if f.name == "randomize":
            if value is not None:
                data[f.name] = value.to_dict()
        elif cls is None:
            if value != f.default:
                data[f.name] = value
        elif f.name in ("table", "terrain"):
            if value is not None:
                data[f.name] = _clean(value, cls())
        elif value:
            items = []
            for item in value:
                if f.name == "objects" and item.mesh is not None and not isinstance(item.mesh, str):
                    raise SceneError(
                        f"object {item.name!r} holds an in-memory mesh; write_spec saves it "
                        "to a file first"
                    )
                required = {}
                if cls in (RobotSpec, MaterialSpec):
                    key = "source" if cls is RobotSpec else "name"
                    required = {key: getattr(item, key)}
                items.append(required | _clean(item, cls(**required)))
            data[f.name] = items
    return data


_ARRAY = re.compile(r"\[\n((?:[ ]+[^\n\[\]{}]*,\n)+)[ ]*\]")


def _dumps_toml(data: dict) -> str:
    """TOML by ``tomli-w``, with arrays of numbers and strings on one line each."""
    import tomli_w

    text = tomli_w.dumps(data)

    def join(m: re.Match) -> str:
        items = [line.strip().removesuffix(",") for line in m.group(1).splitlines()]
        return "[" + ", ".join(items) + "]"

    compact = _ARRAY.sub(join, text)
    return compact if tomllib.loads(compact) == tomllib.loads(text) else text


def write_spec(spec: SceneSpec, path: str | Path) -> Path:
    """Writes ``spec`` as TOML or JSON (by suffix), atomically, paths relative to the file.

    Objects holding an in-memory ``trimesh.Trimesh`` get it written next to the spec as
    ``<stem>_meshes/<name>.stl`` first.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise SceneError(f"spec file {str(path)!r}: expected a .toml or .json suffix")
    base = path.parent.resolve()
    objects = []
    for i, o in enumerate(spec.objects):
        if o.mesh is not None and not isinstance(o.mesh, str | Path):
            mesh_path = base / f"{path.stem}_meshes" / f"{o.name or f'object{i}'}.stl"
            with atomic_path(mesh_path, suffix=".stl") as tmp:
                o.mesh.export(tmp, file_type="stl")
            o = dataclasses.replace(o, mesh=str(mesh_path))
        objects.append(o)
    spec = dataclasses.replace(spec, objects=tuple(objects))

    def rel(p: str) -> str:
        if not p:
            return p
        try:
            return Path(p).resolve().relative_to(base).as_posix()
        except ValueError:
            return Path(os.path.relpath(Path(p).resolve(), base)).as_posix()

    data = spec_to_dict(_map_paths(spec, rel))
    if suffix == ".toml":
        text = _dumps_toml(data)
    else:
        text = json.dumps(data, indent=2) + "\n"
    with atomic_path(path, suffix=suffix) as tmp:
        tmp.write_text(text)
    return path
