"""A scene builder over ``mujoco.MjSpec``: robots, objects, a table, terrain, lights, cameras.

::

    b = SceneBuilder("demo")
    b.add_table(TableSpec(size=(0.8, 0.6), height=0.4))
    b.add_robot("universal_robots_ur5e", pos=(0, -0.45, 0.4), prefix="ur/")
    b.add_object(ObjectSpec(mesh="mug.obj", pos=(0.1, 0, 0.45), mass=0.3))
    scene = b.finalize()        # a hybridsim Scene
    b.save("out/demo")          # out/demo/scene.xml + out/demo/assets/*

Geom groups: 0 primitives and the table, 2 visual meshes (no contacts), 3 collision meshes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import mujoco
import numpy as np

from hybridsim._src.builder.mesh import ImportedMesh, import_mesh
from hybridsim._src.builder.spec import (
    PRIMITIVES,
    CameraSpec,
    LightSpec,
    MaterialSpec,
    ObjectSpec,
    SceneSpec,
    TableSpec,
    TerrainSpec,
    _is_menagerie_name,
)
from hybridsim._src.errors import SceneError
from hybridsim._src.loader import Scene

VISUAL_GROUP = 2
COLLISION_GROUP = 3
MAX_HULL_VERTICES = 64
"""MuJoCo keeps at most this many vertices of each collision hull (``mesh/maxhullvert``),
which keeps MJX's convex collisions affordable."""
BUILD_INFO_TEXT = "hybridsim_build"
"""Name of the MJCF ``<text>`` element holding the build record (JSON)."""
_ADOPTED_OPTIONS = (
    "integrator",
    "cone",
    "impratio",
    "noslip_iterations",
    "jacobian",
    "solver",
    "iterations",
    "ls_iterations",
)
_PRIMITIVE_SIZES = {"box": 3, "sphere": 1, "cylinder": 2, "capsule": 2, "ellipsoid": 3}
_GEOM_TYPES = {
    "box": mujoco.mjtGeom.mjGEOM_BOX,
    "sphere": mujoco.mjtGeom.mjGEOM_SPHERE,
    "cylinder": mujoco.mjtGeom.mjGEOM_CYLINDER,
    "capsule": mujoco.mjtGeom.mjGEOM_CAPSULE,
    "ellipsoid": mujoco.mjtGeom.mjGEOM_ELLIPSOID,
}


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    """What the builder did with one object."""

    name: str
    source: str
    """Mesh file, ``"<trimesh>"`` or ``"primitive:<shape>"``."""
    static: bool
    mass: float
    """kg (0 for static objects)."""
    collision_method: str
    """``"coacd"``, ``"convex_hull"`` or ``"primitive"``."""
    collision_parts: int
    decimation: str
    repairs: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class RobotInfo:
    prefix: str
    source: str
    """What was asked (MJCF path or Menagerie name)."""
    path: str
    """The MJCF file that was attached."""


@dataclasses.dataclass(frozen=True)
class BuildInfo:
    """The build record, also stored in the MJCF as ``<text name="hybridsim_build">``."""

    robots: tuple[RobotInfo, ...]
    objects: tuple[ObjectInfo, ...]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @staticmethod
    def from_model(model: mujoco.MjModel) -> BuildInfo | None:
        """The record of a built scene's compiled model, or None for other models."""
        tid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_TEXT, BUILD_INFO_TEXT)
        if tid < 0:
            return None
        start, size = model.text_adr[tid], model.text_size[tid]
        data = json.loads(bytes(model.text_data[start : start + size - 1]).decode())
        return BuildInfo(
            robots=tuple(RobotInfo(**r) for r in data["robots"]),
            objects=tuple(
                ObjectInfo(**{**o, "repairs": tuple(o["repairs"])}) for o in data["objects"]
            ),
        )


def _quat_look_at(pos: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Camera orientation ``(w, x, y, z)`` looking from ``pos`` at ``target``, z up."""
    forward = target - pos
    norm = np.linalg.norm(forward)
    if norm < 1e-9:
        raise SceneError("camera position and look-at point coincide")
    forward /= norm
    up = np.array([0.0, 0.0, 1.0]) if abs(forward[2]) < 0.999 else np.array([0.0, 1.0, 0.0])
    x = np.cross(forward, up)
    x /= np.linalg.norm(x)
    y = np.cross(x, forward)
    mat = np.stack([x, y, -forward], axis=1)  # columns: camera x, y, z in the world
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, mat.reshape(-1))
    return quat


def _absolute_asset_paths(child: mujoco.MjSpec, xml_path: Path) -> None:
    """Makes the child's mesh, texture, hfield and skin files absolute, so they survive
    ``attach`` into a spec with other asset folders."""
    root = Path(child.modelfiledir or xml_path.parent)
    meshdir = root / (child.meshdir or "")
    texdir = root / (child.texturedir or "")
    for items, folder in (
        (child.meshes, meshdir),
        (child.hfields, meshdir),
        (child.skins, meshdir),
        (child.textures, texdir),
    ):
        for item in items:
            if item.file and not os.path.isabs(item.file):
                item.file = str((folder / item.file).resolve())
    child.meshdir = ""
    child.texturedir = ""


def _primitive_mesh(shape: str, size: tuple[float, ...]):
    """A convex triangle mesh of a MuJoCo primitive (16 segments round a cylinder)."""
    import trimesh

    if shape == "box":
        return trimesh.creation.box(extents=2 * np.asarray(size))
    if shape == "sphere":
        return trimesh.creation.icosphere(subdivisions=2, radius=size[0])
    if shape == "ellipsoid":
        m = trimesh.creation.icosphere(subdivisions=2, radius=1.0)
        m.apply_transform(np.diag([*size, 1.0]))
        return m
    if shape == "cylinder":
        return trimesh.creation.cylinder(radius=size[0], height=2 * size[1], sections=16)
    return trimesh.creation.capsule(radius=size[0], height=2 * size[1], count=[32, 16])


def _unique_name(used: set[str], stem: str, suffix: str) -> str:
    name, i = f"{stem}{suffix}", 1
    while name in used:
        name, i = f"{stem}_{i}{suffix}", i + 1
    used.add(name)
    return name


class SceneBuilder:
    """Builds a scene on a ``mujoco.MjSpec`` (``.spec``); ``finalize()`` compiles it.

    Lengths in metres, masses in kg, quaternions ``(w, x, y, z)``.
    """

    def __init__(self, name: str = "scene", timestep: float = 0.002) -> None:
        spec = mujoco.MjSpec()
        spec.modelname = name
        spec.compiler.degree = False
        spec.option.timestep = timestep
        spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
        spec.visual.global_.offwidth = 1280
        spec.visual.global_.offheight = 960
        self.spec = spec
        self.randomize: Any = None
        """Domain randomization (``RandomizeConfig``) saved beside the scene, or None."""
        self._robots: list[RobotInfo] = []
        self._objects: list[ObjectInfo] = []
        # (prefix, the robot's own compiled model, its key qpos, key ctrl, frame pos, quat)
        self._homes: list[tuple] = []
        self._meshes: dict[str, Any] = {}  # mesh name -> trimesh, written by save()
        self._top = 0.0  # highest support surface (m), for the default camera
        self._extent = 1.0

    @property
    def info(self) -> BuildInfo:
        return BuildInfo(robots=tuple(self._robots), objects=tuple(self._objects))

    # Environment --------------------------------------------------------------------------

    def _checker_material(self) -> str:
        if not any(m.name == "hs_grid" for m in self.spec.materials):
            tex = self.spec.add_texture(
                name="hs_grid",
                type=mujoco.mjtTexture.mjTEXTURE_2D,
                builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
                rgb1=[0.32, 0.36, 0.4],
                rgb2=[0.26, 0.3, 0.34],
                width=256,
                height=256,
            )
            mat = self.spec.add_material(name="hs_grid", texrepeat=[8, 8], texuniform=True)
            mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = tex.name
        return "hs_grid"

    def add_floor(self, friction: tuple[float, ...] = (1.0, 0.005, 0.0001)) -> None:
        """An infinite ground plane at z = 0 (geom ``floor``)."""
        self.spec.worldbody.add_geom(
            name="floor",
            type=mujoco.mjtGeom.mjGEOM_PLANE,
            size=[0, 0, 0.05],
            friction=list(friction),
            material=self._checker_material(),
        )

    def add_table(self, table: TableSpec | None = None) -> None:
        """A static table (body ``table``, top geom ``table_top``) standing on z = 0."""
        table = table or TableSpec()
        lx, ly = table.size
        if min(lx, ly, table.height, table.thickness) <= 0 or table.thickness >= table.height:
            raise SceneError(f"table: size, height and thickness must be positive, got {table}")
        body = self.spec.worldbody.add_body(name="table", pos=[*table.pos, 0.0])
        top = body.add_geom(
            name="table_top",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[lx / 2, ly / 2, table.thickness / 2],
            pos=[0, 0, table.height - table.thickness / 2],
            friction=list(table.friction),
        )
        self._look(top, table.rgba, table.material, "table")
        leg = min(0.025, lx / 8, ly / 8)
        half = (table.height - table.thickness) / 2
        for i, (sx, sy) in enumerate(((1, 1), (1, -1), (-1, 1), (-1, -1))):
            geom = body.add_geom(
                name=f"table_leg{i}",
                type=mujoco.mjtGeom.mjGEOM_BOX,
                size=[leg, leg, half],
                pos=[sx * (lx / 2 - leg), sy * (ly / 2 - leg), half],
            )
            self._look(geom, table.rgba, table.material, "table")
        self._top = max(self._top, table.height)
        self._extent = max(self._extent, lx, ly)

    def add_terrain(self, terrain: TerrainSpec | None = None, heights: Any = None) -> None:
        """A heightfield ground (geom ``terrain``, its lowest point at z = 0).

        Args:
          terrain: kind, size and parameters; ``kind="file"`` reads ``terrain.file`` (an
            image, darker is lower, or a 2-D ``.npy``).
          heights: ``(nrow, ncol)`` elevations in metres (row = y, column = x); overrides
            what ``terrain`` would generate.
        """
        from hybridsim._src.builder.procedural import terrain_heights

        terrain = terrain or TerrainSpec()
        if heights is None:
            heights = terrain_heights(terrain)
        heights = np.asarray(heights, dtype=np.float64)
        if heights.ndim != 2 or min(heights.shape) < 2 or not np.all(np.isfinite(heights)):
            raise SceneError(
                f"terrain heights must be a finite (nrow, ncol) array with nrow, ncol >= 2, "
                f"got shape {heights.shape}"
            )
        lo = heights.min()
        span = float(heights.max() - lo)
        norm = (heights - lo) / span if span > 0 else np.zeros_like(heights)
        zmax = max(span, 1e-4)
        lx, ly = terrain.size
        self.spec.add_hfield(
            name="terrain",
            nrow=heights.shape[0],
            ncol=heights.shape[1],
            size=[lx / 2, ly / 2, zmax, 0.05],
            userdata=norm.reshape(-1).tolist(),
        )
        self.spec.worldbody.add_geom(
            name="terrain",
            type=mujoco.mjtGeom.mjGEOM_HFIELD,
            hfieldname="terrain",
            friction=list(terrain.friction),
            material=self._checker_material(),
        )
        self._extent = max(self._extent, min(lx, ly) / 2)

    def add_material(self, material: MaterialSpec) -> str:
        """Adds a material (textured by an image file or a built-in pattern); returns its
        name, which objects and the table take as ``material``."""
        if any(m.name == material.name for m in self.spec.materials) or not material.name:
            raise SceneError(f"material {material.name!r}: needs a new, non-empty name")
        if material.texture and material.builtin:
            raise SceneError(f"material {material.name!r}: give 'texture' or 'builtin', not both")
        mat = self.spec.add_material(
            name=material.name,
            rgba=list(material.rgba),
            texrepeat=list(material.texrepeat),
            specular=material.specular,
            shininess=material.shininess,
            reflectance=material.reflectance,
        )
        tex = None
        if material.texture:
            path = Path(material.texture).expanduser().resolve()
            if not path.is_file():
                raise SceneError(f"material {material.name!r}: texture {str(path)!r} is missing")
            tex = self.spec.add_texture(
                name=f"{material.name}_texture", type=mujoco.mjtTexture.mjTEXTURE_2D, file=str(path)
            )
        elif material.builtin:
            builtins = {
                "checker": mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
                "gradient": mujoco.mjtBuiltin.mjBUILTIN_GRADIENT,
                "flat": mujoco.mjtBuiltin.mjBUILTIN_FLAT,
            }
            if material.builtin not in builtins:
                raise SceneError(
                    f"material {material.name!r}: builtin {material.builtin!r}; expected one of "
                    f"{sorted(builtins)}"
                )
            tex = self.spec.add_texture(
                name=f"{material.name}_texture",
                type=mujoco.mjtTexture.mjTEXTURE_2D,
                builtin=builtins[material.builtin],
                rgb1=list(material.rgb1),
                rgb2=list(material.rgb2),
                width=256,
                height=256,
            )
        if tex is not None:
            mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = tex.name
        return material.name

    def _look(self, geom, rgba, material: str, what: str) -> None:
        """Gives a geom its material (checked to exist) or its colour."""
        if material:
            if not any(m.name == material for m in self.spec.materials):
                names = [m.name for m in self.spec.materials]
                raise SceneError(f"{what}: no material named {material!r}; materials: {names}")
            geom.material = material
        else:
            geom.rgba = list(rgba)

    def add_light(self, light: LightSpec | None = None) -> None:
        light = light or LightSpec()
        self.spec.worldbody.add_light(
            name=light.name,
            pos=list(light.pos),
            dir=list(light.dir),
            diffuse=list(light.diffuse),
            castshadow=light.castshadow,
            type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL
            if light.directional
            else mujoco.mjtLightType.mjLIGHT_SPOT,
        )

    def add_camera(self, camera: CameraSpec | None = None) -> None:
        camera = camera or CameraSpec()
        pos = np.asarray(camera.pos, dtype=np.float64)
        quat = _quat_look_at(pos, np.asarray(camera.lookat, dtype=np.float64))
        self.spec.worldbody.add_camera(
            name=camera.name, pos=pos.tolist(), quat=quat.tolist(), fovy=camera.fovy
        )

    # Robots ------------------------------------------------------------------------------

    def add_robot(
        self,
        source: str | Path | mujoco.MjSpec,
        pos: tuple[float, float, float] = (0.0, 0.0, 0.0),
        quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0),
        prefix: str = "",
    ) -> None:
        """Attaches a robot (MJCF path, Menagerie name or ``MjSpec``) at a pose.

        Every name of the robot gets ``prefix``; several robots need different prefixes.
        The robot's first keyframe (``home`` if it has one) seeds the scene's ``home`` key.
        """
        from hybridsim._src.builder.menagerie import resolve_menagerie

        if isinstance(source, mujoco.MjSpec):
            child, path, label = source.copy(), Path(source.modelfiledir or "."), "<MjSpec>"
        else:
            label = str(source)
            path = Path(source).expanduser()
            if not path.is_file():
                if isinstance(source, str) and _is_menagerie_name(source):
                    path = resolve_menagerie(source)
                else:
                    raise SceneError(f"robot MJCF file {label!r} does not exist")
            try:
                child = mujoco.MjSpec.from_file(str(path))
            except (ValueError, mujoco.FatalError) as e:
                raise SceneError(f"robot {label!r}: could not load {str(path)!r}: {e}") from None
        if any(r.prefix == prefix for r in self._robots):
            raise SceneError(
                f"robot {label!r}: prefix {prefix!r} is already used by another robot; give "
                "each robot its own prefix"
            )
        _absolute_asset_paths(child, path)
        try:
            child_model = child.compile()
        except (ValueError, mujoco.FatalError) as e:
            raise SceneError(f"robot {label!r} does not compile: {e}") from None
        if child_model.nkey:
            k = max(0, mujoco.mj_name2id(child_model, mujoco.mjtObj.mjOBJ_KEY, "home"))
            self._homes.append(
                (
                    prefix,
                    child_model,
                    child_model.key_qpos[k].copy(),
                    child_model.key_ctrl[k].copy(),
                    np.asarray(pos, dtype=np.float64),
                    np.asarray(quat, dtype=np.float64) / np.linalg.norm(quat),
                )
            )
        # A robot's solver options (e.g. the Robotiq gripper's elliptic cones and impratio)
        # matter for it: the scene takes those the robot sets; the timestep stays the scene's.
        default = mujoco.MjSpec().option
        for field in _ADOPTED_OPTIONS:
            value = getattr(child.option, field)
            if value != getattr(default, field):
                setattr(self.spec.option, field, value)
        frame = self.spec.worldbody.add_frame(pos=list(pos), quat=list(quat))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # option conflicts: the scene's options win
            try:
                self.spec.attach(child, frame=frame, prefix=prefix)
            except ValueError as e:
                raise SceneError(f"robot {label!r}: could not attach: {e}") from None
        for key in list(self.spec.keys):
            self.spec.delete(key)
        self._robots.append(RobotInfo(prefix=prefix, source=label, path=str(path)))

    # Objects -----------------------------------------------------------------------------

    def add_object(self, obj: ObjectSpec) -> str:
        """Adds an object (free, or static with ``obj.static``); returns its body name.

        ``obj.mesh`` may be a file path or a ``trimesh.Trimesh``; ``obj.scan`` a capture
        file that is reconstructed into the mesh first.
        """
        name = obj.name or f"object{len(self._objects)}"
        if any(b.name == name for b in self.spec.bodies):
            raise SceneError(f"object {name!r}: a body of that name exists already")
        if (obj.mesh is not None) + bool(obj.primitive) + bool(obj.scan) != 1:
            raise SceneError(f"object {name!r}: give exactly one of 'mesh', 'primitive' or 'scan'")
        if obj.scan:
            from hybridsim._src.builder.reconstruct import reconstruct_file

            obj = dataclasses.replace(obj, mesh=reconstruct_file(obj.scan, obj.voxel_size))
        if obj.mass is not None and obj.density is not None:
            raise SceneError(f"object {name!r}: give 'mass' or 'density', not both")
        if len(obj.friction) not in (1, 2, 3) or min(obj.friction) < 0:
            raise SceneError(f"object {name!r}: friction must be 1 to 3 numbers >= 0")
        friction = [*obj.friction, 0.005, 0.0001][:3] if len(obj.friction) < 3 else obj.friction
        body = self.spec.worldbody.add_body(name=name, pos=list(obj.pos), quat=list(obj.quat))
        if not obj.static:
            body.add_freejoint(name=f"{name}_free")
        if obj.primitive:
            info = self._add_primitive(body, name, obj, list(friction))
        else:
            info = self._add_mesh_object(body, name, obj, list(friction))
        self._objects.append(info)
        return name

    def _add_primitive(self, body, name: str, obj: ObjectSpec, friction) -> ObjectInfo:
        if obj.primitive not in PRIMITIVES:
            raise SceneError(
                f"object {name!r}: primitive {obj.primitive!r}; expected one of {PRIMITIVES}"
            )
        n = _PRIMITIVE_SIZES[obj.primitive]
        if len(obj.size) != n or min(obj.size) <= 0:
            raise SceneError(
                f"object {name!r}: a {obj.primitive} needs size with {n} positive number(s) "
                f"(MuJoCo's convention), got {list(obj.size)}"
            )
        if obj.collision not in ("auto", "convex_hull"):
            raise SceneError(
                f"object {name!r}: a primitive collides as itself ('auto') or as a convex "
                f"mesh ('convex_hull'), got collision {obj.collision!r}"
            )
        geom = body.add_geom(
            name=f"{name}_geom",
            type=_GEOM_TYPES[obj.primitive],
            size=[*obj.size, 0.0, 0.0][:3],
            friction=friction,
        )
        self._look(geom, obj.rgba, obj.material, f"object {name!r}")
        method = "primitive"
        if obj.collision == "convex_hull":
            # The primitive stays as the picture; a convex mesh of it collides. MJX-JAX
            # collides convex meshes with everything, but not e.g. cylinders with boxes.
            geom.group, geom.contype, geom.conaffinity = VISUAL_GROUP, 0, 0
            geom.density = 0.0
            col = _unique_name({x.name for x in self.spec.meshes}, f"{name}_collision0", "")
            self._add_mesh_asset(col, _primitive_mesh(obj.primitive, obj.size), collision=True)
            geom = body.add_geom(
                name=col,
                type=mujoco.mjtGeom.mjGEOM_MESH,
                meshname=col,
                group=COLLISION_GROUP,
                friction=friction,
                rgba=[*obj.rgba[:3], 0.5],
            )
            method = "convex_hull"
        mass = 0.0
        if not obj.static:
            if obj.mass is not None:
                geom.mass = obj.mass
            else:
                geom.density = obj.density or 1000.0
            mass = -1.0  # filled in by finalize() from the compiled model
        return ObjectInfo(name, f"primitive:{obj.primitive}", obj.static, mass, method, 1, "none")

    def _add_mesh_object(self, body, name: str, obj: ObjectSpec, friction) -> ObjectInfo:
        m: ImportedMesh = import_mesh(
            obj.mesh,
            name=str(obj.mesh) if isinstance(obj.mesh, str | Path) else f"<trimesh of {name}>",
            scale=obj.scale,
            units=obj.units,
            density=obj.density,
            mass=obj.mass,
            static=obj.static,
            collision=obj.collision,
            max_faces=obj.max_faces,
        )
        used = {x.name for x in self.spec.meshes}
        vis = _unique_name(used, f"{name}_visual", "")
        self._add_mesh_asset(vis, m.visual)
        visual = body.add_geom(
            name=f"{name}_visual",
            type=mujoco.mjtGeom.mjGEOM_MESH,
            meshname=vis,
            group=VISUAL_GROUP,
            contype=0,
            conaffinity=0,
            density=0,
        )
        self._look(visual, obj.rgba, obj.material, f"object {name!r}")
        for k, piece in enumerate(m.collision):
            col = _unique_name(used, f"{name}_collision{k}", "")
            self._add_mesh_asset(col, piece, collision=True)
            body.add_geom(
                name=col,
                type=mujoco.mjtGeom.mjGEOM_MESH,
                meshname=col,
                group=COLLISION_GROUP,
                friction=friction,
                density=0,
                rgba=[*obj.rgba[:3], 0.5],
            )
        if not obj.static:
            body.explicitinertial = True
            body.mass = m.mass
            body.ipos = list(m.com)
            body.fullinertia = list(m.inertia)
        return ObjectInfo(
            name,
            m.source,
            obj.static,
            m.mass,
            m.collision_method,
            len(m.collision),
            m.decimation,
            m.repairs,
        )

    def _add_mesh_asset(self, name: str, mesh, collision: bool = False) -> None:
        self.spec.add_mesh(
            name=name,
            maxhullvert=MAX_HULL_VERTICES if collision else -1,
            uservert=np.asarray(mesh.vertices, dtype=np.float64).reshape(-1).tolist(),
            userface=np.asarray(mesh.faces, dtype=np.int64).reshape(-1).tolist(),
        )
        self._meshes[name] = mesh

    # Output ------------------------------------------------------------------------------

    def _defaults(self) -> None:
        if not self.spec.cameras or not any(c.name == "main" for c in self.spec.cameras):
            e = self._extent
            look = (0.0, 0.0, self._top)
            self.add_camera(
                CameraSpec(name="main", pos=(1.1 * e, -1.1 * e, self._top + 0.9 * e), lookat=look)
            )
        if not self.spec.lights:
            self.add_light(
                LightSpec(name="sun", pos=(0, 0, 4), dir=(0.3, 0.3, -1), directional=True)
            )
        text = next((t for t in self.spec.texts if t.name == BUILD_INFO_TEXT), None)
        if text is None:
            text = self.spec.add_text(name=BUILD_INFO_TEXT)
        text.data = self.info.to_json()

    def _compile(self) -> mujoco.MjModel:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # attach conflicts: the scene's options win
                return self.spec.compile()
        except (ValueError, mujoco.FatalError) as e:
            raise SceneError(f"scene {self.spec.modelname!r} does not compile: {e}") from None

    def _home_key(self) -> None:
        for key in list(self.spec.keys):
            self.spec.delete(key)
        model = self._compile()
        qpos = model.qpos0.copy()
        ctrl = np.zeros(model.nu)
        for prefix, child, key_qpos, key_ctrl, frame_pos, frame_quat in self._homes:
            for j in range(child.njnt):
                jname = mujoco.mj_id2name(child, mujoco.mjtObj.mjOBJ_JOINT, j)
                pid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, f"{prefix}{jname}")
                if jname is None or pid < 0:
                    continue
                n = {0: 7, 1: 4}.get(int(child.jnt_type[j]), 1)
                src, dst = child.jnt_qposadr[j], model.jnt_qposadr[pid]
                value = key_qpos[src : src + n].copy()
                if n == 7:  # a free joint's key pose is in the robot's own world frame
                    pos, quat = np.zeros(3), np.zeros(4)
                    mujoco.mju_rotVecQuat(pos, value[:3], frame_quat)
                    mujoco.mju_mulQuat(quat, frame_quat, value[3:])
                    value = np.concatenate([pos + frame_pos, quat])
                qpos[dst : dst + n] = value
            for a in range(child.nu):
                aname = mujoco.mj_id2name(child, mujoco.mjtObj.mjOBJ_ACTUATOR, a)
                pid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, f"{prefix}{aname}")
                if aname is not None and pid >= 0:
                    ctrl[pid] = key_ctrl[a]
        self.spec.add_key(name="home", qpos=qpos.tolist(), ctrl=ctrl.tolist())

    def finalize(self) -> Scene:
        """Adds what is missing (a floor, a ``main`` camera, a light, the ``home`` keyframe
        from the robots' own keyframes and the objects' poses) and compiles the scene.

        Raises:
          SceneError: MuJoCo cannot compile the scene (its message included).
        """
        self._defaults()
        self._home_key()
        model = self._compile()
        objects = []
        for o in self._objects:
            if o.mass < 0:
                bid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, o.name)
                o = dataclasses.replace(o, mass=float(model.body_mass[bid]))
            objects.append(o)
        self._objects = objects
        self._defaults()  # the record, with masses
        return Scene(name=self.spec.modelname, mj_model=self._compile(), source="<SceneBuilder>")

    def save(self, directory: str | Path) -> Path:
        """Writes ``directory/scene.xml`` and its mesh files under ``directory/assets/``.

        The folder is self-contained (it loads with ``mujoco.MjModel.from_xml_path`` from
        anywhere) and replaced atomically: built in a temporary folder, then renamed.
        Returns the path of ``scene.xml``.

        An existing ``directory`` is replaced only when it holds a scene written here
        (``scene.xml`` with the build record) or nothing; any other folder is refused
        (``SceneError``), so a mistyped ``--out`` never deletes a user's files.
        """
        self.finalize()
        directory = Path(directory)
        if directory.exists() and not _replaceable(directory):
            raise SceneError(
                f"output folder {str(directory)!r} exists and is not a scene written by "
                "hybridsim (no scene.xml with a hybridsim build record); choose another "
                "folder or remove it"
            )
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
        tmp.chmod(0o755)
        try:
            self._write(tmp)
            if directory.exists():
                old = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.old."))
                os.replace(directory, old / "x")
                try:
                    os.replace(tmp, directory)
                except OSError:
                    os.replace(old / "x", directory)  # put the previous scene back
                    raise
                shutil.rmtree(old)
            else:
                os.replace(tmp, directory)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
        return directory / "scene.xml"

    def _write(self, folder: Path) -> None:
        spec = self.spec.copy()
        assets = (folder / "assets").resolve()
        assets.mkdir()
        used: set[str] = set()
        for mesh in spec.meshes:
            if mesh.name in self._meshes:
                dst = assets / _unique_name(used, mesh.name.replace("/", "_"), ".stl")
                self._meshes[mesh.name].export(dst, file_type="stl")
                mesh.uservert = []
                mesh.userface = []
                mesh.file = str(dst)
        for items in (spec.meshes, spec.hfields, spec.skins, spec.textures):
            for item in items:
                if item.file and os.path.isabs(item.file) and Path(item.file).parent != assets:
                    src = Path(item.file)
                    dst = assets / _unique_name(used, src.stem, src.suffix)
                    shutil.copyfile(src, dst)
                    item.file = str(dst)
        spec.meshdir = "assets"
        spec.texturedir = "assets"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            xml = spec.to_xml()
        # Asset files were named by absolute paths (MjSpec resolves attached robots' files
        # against their own folders); the written file names them relative to assets/.
        prefix = str(assets) + os.sep
        xml = xml.replace(f'file="{escape(prefix)}', 'file="')
        (folder / "scene.xml").write_text(xml)
        if self.randomize is not None:
            text = json.dumps(self.randomize.to_dict(), indent=2)
            (folder / RANDOMIZE_FILE).write_text(text + "\n")
        try:
            mujoco.MjModel.from_xml_path(str(folder / "scene.xml"))
        except ValueError as e:
            raise SceneError(f"the written scene does not load back: {e}") from None


def _replaceable(directory: Path) -> bool:
    """True for an empty folder or one holding a scene that ``save`` wrote."""
    if not directory.is_dir():
        return False
    if not any(directory.iterdir()):
        return True
    xml = directory / "scene.xml"
    return xml.is_file() and f'name="{BUILD_INFO_TEXT}"' in xml.read_text(errors="replace")


RANDOMIZE_FILE = "randomize.json"
"""Written by ``SceneBuilder.save`` beside ``scene.xml`` when the spec randomizes."""


def build(spec: SceneSpec) -> SceneBuilder:
    """A builder holding everything in ``spec`` (call ``finalize()`` or ``save()`` next)."""
    b = SceneBuilder(spec.name, spec.timestep)
    for mat in spec.materials:
        b.add_material(mat)
    if spec.terrain is not None:
        b.add_terrain(spec.terrain)
    elif spec.floor:
        b.add_floor()
    if spec.table is not None:
        b.add_table(spec.table)
    for r in spec.robots:
        b.add_robot(r.source, r.pos, r.quat, r.prefix)
    for o in spec.objects:
        b.add_object(o)
    for c in spec.cameras:
        b.add_camera(c)
    for li in spec.lights:
        b.add_light(li)
    b.randomize = spec.randomize
    return b
