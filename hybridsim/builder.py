"""The scene builder: a builder over ``mujoco.MjSpec``, spec files, mesh import, procedural scenes.

::

    from hybridsim import builder
    spec = builder.read_spec("assets/specs/table_objects.toml")  # or generate_table_scene(0)
    b = builder.build(spec)           # a SceneBuilder
    sim_scene = b.finalize()          # a hybridsim.Scene for hybridsim.make_model
    b.save("out/table_objects")       # out/table_objects/scene.xml + assets/

Objects take mesh files (OBJ, STL, PLY, GLB), in-memory ``trimesh.Trimesh`` or captures
(``scan``: depth images or a point cloud, reconstructed by TSDF fusion and marching cubes);
robots take MJCF paths or MuJoCo Menagerie names. ``render_depth`` makes a synthetic depth
capture of a scene (MuJoCo Warp's renderer), the input of ``reconstruct_from_depth``.
"""

from hybridsim._src.builder.builder import (
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
from hybridsim._src.builder.menagerie import resolve_menagerie
from hybridsim._src.builder.mesh import UNITS, ImportedMesh, coacd_available, import_mesh
from hybridsim._src.builder.procedural import (
    SHAPES,
    generate_table_scene,
    generate_terrain_scene,
    terrain_heights,
)
from hybridsim._src.builder.reconstruct import (
    DepthCapture,
    load_depth_capture,
    load_point_cloud,
    reconstruct_file,
    reconstruct_from_depth,
    reconstruct_from_points,
    save_depth_capture,
)
from hybridsim._src.builder.spec import (
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
from hybridsim._src.render import render_depth

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
    "DepthCapture",
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
    "load_depth_capture",
    "load_point_cloud",
    "read_spec",
    "reconstruct_file",
    "reconstruct_from_depth",
    "reconstruct_from_points",
    "render_depth",
    "resolve_menagerie",
    "save_depth_capture",
    "spec_from_dict",
    "spec_to_dict",
    "terrain_heights",
    "write_spec",
]
