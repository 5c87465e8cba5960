"""Scene creation: a builder over ``mujoco.MjSpec``, spec files, mesh import, procedural scenes.

::

    from hybridsim import scene
    spec = scene.read_spec("assets/specs/table_objects.toml")   # or scene.generate_table_scene(0)
    builder = scene.build(spec)
    sim_scene = builder.finalize()          # a hybridsim.Scene for hybridsim.make_model
    builder.save("out/table_objects")       # out/table_objects/scene.xml + assets/

Objects take mesh files (OBJ, STL, PLY, GLB) or in-memory ``trimesh.Trimesh``; robots take
MJCF paths or MuJoCo Menagerie names.
"""

from hybridsim._src.scenes.builder import (
    BUILD_INFO_TEXT,
    COLLISION_GROUP,
    MAX_HULL_VERTICES,
    VISUAL_GROUP,
    BuildInfo,
    ObjectInfo,
    RobotInfo,
    SceneBuilder,
    build,
)
from hybridsim._src.scenes.menagerie import resolve_menagerie
from hybridsim._src.scenes.mesh import UNITS, ImportedMesh, coacd_available, import_mesh
from hybridsim._src.scenes.procedural import (
    SHAPES,
    generate_table_scene,
    generate_terrain_scene,
    terrain_heights,
)
from hybridsim._src.scenes.spec import (
    PRIMITIVES,
    TERRAIN_KINDS,
    CameraSpec,
    LightSpec,
    MaterialSpec,
    ObjectSpec,
    RobotSpec,
    SceneSpec,
    TableSpec,
    TerrainSpec,
    bundled_specs,
    read_spec,
    spec_from_dict,
    spec_to_dict,
    write_spec,
)

__all__ = [
    "BUILD_INFO_TEXT",
    "COLLISION_GROUP",
    "MAX_HULL_VERTICES",
    "PRIMITIVES",
    "SHAPES",
    "TERRAIN_KINDS",
    "UNITS",
    "VISUAL_GROUP",
    "BuildInfo",
    "CameraSpec",
    "ImportedMesh",
    "LightSpec",
    "MaterialSpec",
    "ObjectInfo",
    "ObjectSpec",
    "RobotInfo",
    "RobotSpec",
    "SceneBuilder",
    "SceneSpec",
    "TableSpec",
    "TerrainSpec",
    "build",
    "bundled_specs",
    "coacd_available",
    "generate_table_scene",
    "generate_terrain_scene",
    "import_mesh",
    "read_spec",
    "resolve_menagerie",
    "spec_from_dict",
    "spec_to_dict",
    "terrain_heights",
    "write_spec",
]
