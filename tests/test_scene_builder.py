"""The scene builder: spec files, mesh import, robots, terrain, saving, the scene CLI."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import mujoco
import numpy as np
import pytest
import trimesh

import hybridsim as hs
from hybridsim import builder as hb
from hybridsim._src.builder import mesh as mesh_mod
from hybridsim._src.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "assets" / "specs"
MENAGERIE = Path(os.environ.get("HYBRIDSIM_TEST_MENAGERIE", ROOT.parent / "shared" / "menagerie"))
needs_menagerie = pytest.mark.skipif(
    not (MENAGERIE / "universal_robots_ur5e" / "ur5e.xml").is_file(),
    reason="no offline MuJoCo Menagerie copy (../shared/menagerie)",
)


@pytest.fixture
def menagerie_root(monkeypatch):
    pytest.importorskip("mujoco_menagerie")
    monkeypatch.setenv("MENAGERIE_ROOT", str(MENAGERIE))


@pytest.fixture
def no_coacd(monkeypatch):
    """Convex hulls whether or not CoACD is installed (keeps tests fast and deterministic)."""
    monkeypatch.setattr(mesh_mod, "coacd_available", lambda: False)


def _contacts_with_static(m: mujoco.MjModel, d: mujoco.MjData) -> list[float]:
    dists = []
    for c in d.contact[: d.ncon]:
        b1, b2 = m.geom_bodyid[c.geom1], m.geom_bodyid[c.geom2]
        if m.body_weldid[b1] == 0 or m.body_weldid[b2] == 0:
            dists.append(float(c.dist))
    return dists


# Spec files -------------------------------------------------------------------------------


def test_spec_round_trip_toml_and_json(tmp_path, no_coacd):
    box = trimesh.creation.box((0.04, 0.04, 0.04))
    (tmp_path / "m").mkdir()
    box.export(tmp_path / "m" / "box.stl")
    spec = dataclasses.replace(
        hb.generate_table_scene(3, 3),
        objects=hb.generate_table_scene(3, 3).objects
        + (hb.ObjectSpec(name="mesh", mesh=str(tmp_path / "m" / "box.stl"), pos=(0, 0, 1)),),
        terrain=hb.TerrainSpec(kind="stairs", seed=2),
        robots=(
            hb.RobotSpec(source=str(tmp_path / "m" / "arm.xml"), prefix="a/"),
            hb.RobotSpec(source="universal_robots_ur5e", pos=(1.0, 0.0, 0.0), prefix="u/"),
        ),
    )
    for suffix in (".toml", ".json"):
        path = hb.write_spec(spec, tmp_path / "out" / f"spec{suffix}")
        text = path.read_text()
        assert '"../m/box.stl"' in text and '"../m/arm.xml"' in text  # relative to the file
        assert '"universal_robots_ur5e"' in text  # a Menagerie name is not a path
        back = hb.read_spec(path)
        assert back == spec
    # A copy of the folder still finds its mesh: paths are relative.
    os.replace(tmp_path / "out", tmp_path / "m" / "out")
    moved = hb.read_spec(tmp_path / "m" / "out" / "spec.toml")
    assert moved.objects[-1].mesh == str(tmp_path / "m" / "m" / "box.stl")


def test_write_spec_saves_in_memory_meshes(tmp_path, no_coacd):
    spec = hb.SceneSpec(
        objects=(hb.ObjectSpec(name="ico", mesh=trimesh.creation.icosphere(radius=0.05)),)
    )
    path = hb.write_spec(spec, tmp_path / "s.toml")
    back = hb.read_spec(path)
    assert Path(back.objects[0].mesh) == tmp_path / "s_meshes" / "ico.stl"
    assert trimesh.load(back.objects[0].mesh).is_watertight


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('name = "x"\ncolour = 1\n', "unknown key(s) ['colour']"),
        ('[[objects]]\nprimitive = "box"\nsize = [1, 1, 1]\nmas = 1\n', "objects[0]"),
        ("[table]\nheight = 'high'\n", "key 'height': expected a number"),
        ("[table]\nsize = [1, 2, 3]\n", "expected 2 numbers"),
        ("[[robots]]\npos = [0, 0, 0]\n", "source"),
        ("[table\n", "not valid TOML"),
    ],
)
def test_bad_spec_is_a_clear_error(tmp_path, text, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(hs.SceneError) as e:
        hb.read_spec(path)
    assert expected in str(e.value)
    assert "bad.toml" in str(e.value)


def test_example_specs_build(tmp_path, no_coacd):
    spec = hb.read_spec(SPECS / "table_objects.toml")
    builder = hb.build(spec)
    scene = builder.finalize()
    info = {o.name: o for o in builder.info.objects}
    assert info["ring"].collision_method == "convex_hull"
    assert info["ring"].mass == pytest.approx(0.12)
    assert info["block"].collision_method == "primitive"
    assert scene.nq == 7 * len(spec.objects)


# Mesh import ------------------------------------------------------------------------------


def test_mesh_units_scale_centring_mass_and_inertia(tmp_path, no_coacd):
    box = trimesh.creation.box((20.0, 40.0, 60.0))  # millimetres
    box.apply_translation((100.0, 0.0, 0.0))
    box.export(tmp_path / "box.obj")
    m = hb.import_mesh(tmp_path / "box.obj", units="mm", scale=2.0, density=500.0)
    np.testing.assert_allclose(m.visual.extents, (0.04, 0.08, 0.12), rtol=1e-9)
    np.testing.assert_allclose(m.visual.center_mass, 0.0, atol=1e-12)
    np.testing.assert_allclose(m.offset, (-0.2, 0.0, 0.0), atol=1e-12)
    mass = 500.0 * 0.04 * 0.08 * 0.12
    assert m.mass == pytest.approx(mass)
    a, b, c = 0.04, 0.08, 0.12  # solid box: I_xx = m (b^2 + c^2) / 12
    np.testing.assert_allclose(
        m.inertia[:3],
        [mass * (b * b + c * c) / 12, mass * (a * a + c * c) / 12, mass * (a * a + b * b) / 12],
        rtol=1e-9,
    )
    np.testing.assert_allclose(m.inertia[3:], 0.0, atol=1e-15)
    assert m.collision_method == "convex_hull" and len(m.collision) == 1
    assert hb.import_mesh(tmp_path / "box.obj", units="mm", mass=2.0).mass == pytest.approx(2.0)


def test_heavy_mesh_is_decimated(no_coacd):
    heavy = trimesh.creation.icosphere(subdivisions=5, radius=0.05)  # 20480 faces
    m = hb.import_mesh(heavy, max_faces=800)
    assert len(m.visual.faces) <= 800
    try:
        import fast_simplification  # noqa: F401

        assert m.decimation == "quadric"
    except ImportError:
        assert m.decimation == "vertex_clustering"
    # The fallback on its own also keeps the shape and respects the budget.
    coarse = mesh_mod._vertex_clustering(heavy, 800)
    assert len(coarse.faces) <= 800
    np.testing.assert_allclose(coarse.extents, heavy.extents, rtol=0.1)
    assert m.mass == pytest.approx(heavy.volume * 1000.0)  # mass from the full mesh


def test_open_mesh_is_repaired(no_coacd):
    box = trimesh.creation.box((0.1, 0.1, 0.1))
    box.update_faces(np.arange(len(box.faces)) != 0)  # one triangle missing
    assert not box.is_watertight
    m = hb.import_mesh(box)
    assert m.watertight and "filled holes" in m.repairs
    assert m.volume == pytest.approx(1e-3)


def _write(tmp_path, name, verts, faces):
    path = tmp_path / name
    trimesh.Trimesh(verts, faces, process=False).export(path)
    return path


def test_bad_meshes_are_clear_errors_naming_the_file(tmp_path, no_coacd):
    box = trimesh.creation.box((0.1, 0.1, 0.1))
    (tmp_path / "empty.obj").write_text("# nothing\n")
    nan_verts = np.array(box.vertices)
    nan_verts[0, 0] = np.nan
    flat = _write(
        tmp_path, "flat.stl", [[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], [[0, 1, 2], [1, 3, 2]]
    )
    sphere = trimesh.creation.icosphere(subdivisions=2)
    keep = np.ones(len(sphere.faces), bool)
    keep[:40] = False  # a large hole: fill_holes cannot close it
    holey = _write(tmp_path, "holey.ply", sphere.vertices, sphere.faces[keep])
    cases = {
        tmp_path / "empty.obj": "is empty",
        tmp_path / "missing.stl": "does not exist",
        flat: "zero volume",
        holey: "not watertight",
    }
    for path, words in cases.items():
        with pytest.raises(hs.SceneError) as e:
            hb.import_mesh(path)
        assert str(path) in str(e.value) and words in str(e.value)
    with pytest.raises(hs.SceneError, match="NaN"):
        hb.import_mesh(trimesh.Trimesh(nan_verts, box.faces, process=False), name="nanbox")
    # The open mesh is fine as static geometry (a scanned surface needs no volume).
    assert hb.import_mesh(holey, static=True).mass == 0.0
    with pytest.raises(hs.SceneError, match="coacd"):
        hb.import_mesh(box, collision="coacd")


def test_mesh_objects_groups_static_and_in_memory(tmp_path, no_coacd):
    b = hb.SceneBuilder("t")
    b.add_floor()
    b.add_table()
    ring = trimesh.creation.annulus(r_min=0.02, r_max=0.04, height=0.03)
    b.add_object(hb.ObjectSpec(name="ring", mesh=ring, pos=(0, 0, 0.4155), mass=0.1))
    scan = trimesh.creation.box((0.2, 0.2, 0.05))
    scan.apply_translation((0.5, 0.5, 0.025))
    b.add_object(hb.ObjectSpec(name="scan", mesh=scan, static=True))
    scene = b.finalize()
    m = scene.mj_model
    assert m.nq == 7  # the static object has no joint
    scan_id = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "scan")
    assert m.body_weldid[scan_id] == 0 and m.body_jntnum[scan_id] == 0
    vis = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "ring_visual")
    col = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "ring_collision0")
    assert m.geom_group[vis] == hb.VISUAL_GROUP and m.geom_contype[vis] == 0
    assert m.geom_group[col] == hb.COLLISION_GROUP and m.geom_contype[col] == 1
    ring_id = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "ring")
    assert m.body_mass[ring_id] == pytest.approx(0.1)
    # The static scan stays where its vertices were (no centring).
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    scan_geom = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "scan_collision0")
    lo = d.geom_xpos[scan_geom] - 0.15
    assert np.all(lo[:2] > 0.3)
    info = hb.BuildInfo.from_model(m)
    assert {o.name: o.collision_method for o in info.objects} == {
        "ring": "convex_hull",
        "scan": "convex_hull",
    }
    assert info.objects[1].static


def test_primitive_as_convex_mesh_keeps_mass():
    b = hb.SceneBuilder("p")
    b.add_floor()
    b.add_object(
        hb.ObjectSpec(
            name="cyl",
            primitive="cylinder",
            size=(0.03, 0.05),
            pos=(0, 0, 0.05),
            mass=0.4,
            collision="convex_hull",
        )
    )
    m = b.finalize().mj_model
    assert m.body_mass[1] == pytest.approx(0.4)
    assert m.ngeom == 3  # floor, the cylinder picture, its convex collision mesh


def test_bad_objects_are_clear_errors():
    b = hb.SceneBuilder()
    with pytest.raises(hs.SceneError, match="exactly one of 'mesh', 'primitive' or 'scan'"):
        b.add_object(hb.ObjectSpec(name="x"))
    with pytest.raises(hs.SceneError, match="needs size with 3"):
        b.add_object(hb.ObjectSpec(name="y", primitive="box", size=(0.1,)))
    with pytest.raises(hs.SceneError, match="primitive 'cone'"):
        b.add_object(hb.ObjectSpec(name="z", primitive="cone", size=(0.1,)))


# Save -------------------------------------------------------------------------------------


def test_save_is_self_contained_and_replaces_atomically(tmp_path, no_coacd):
    spec = hb.read_spec(SPECS / "table_objects.toml")
    out = tmp_path / "built"
    hb.build(spec).save(out)  # a previous build, with a stale file beside it
    (out / "stale.txt").write_text("old")
    path = hb.build(spec).save(out)
    assert path == out / "scene.xml" and not (out / "stale.txt").exists()
    moved = tmp_path / "elsewhere" / "copy"
    moved.parent.mkdir()
    os.replace(out, moved)
    m = mujoco.MjModel.from_xml_path(str(moved / "scene.xml"))
    assert m.nmesh == 6 and m.nkey == 1
    assert sorted({p.suffix for p in (moved / "assets").iterdir()}) == [".png", ".stl"]
    assert str(tmp_path) not in (moved / "scene.xml").read_text().split("<text")[0]
    info = hb.BuildInfo.from_model(m)
    assert [o.name for o in info.objects] == [o.name for o in spec.objects]
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temp left


# Terrain ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rough", "stairs", "slopes"])
def test_terrains_are_deterministic(kind):
    t = hb.TerrainSpec(kind=kind, size=(4.0, 4.0), seed=5, height=0.2)
    z = hb.terrain_heights(t)
    np.testing.assert_array_equal(z, hb.terrain_heights(t))
    assert z.shape == (65, 65) and z.min() == 0.0 and z.max() == pytest.approx(0.2)
    if kind == "rough":
        assert not np.array_equal(z, hb.terrain_heights(dataclasses.replace(t, seed=6)))
    if kind == "stairs":  # rises in steps from the flat centre outwards
        row = z[32, 32:]
        assert np.all(np.diff(row) >= 0) and len(np.unique(row)) > 3


def test_terrain_from_array_image_and_npy(tmp_path):
    from hybridsim._src.render import write_png

    ramp = np.tile(np.linspace(0.0, 1.0, 16), (8, 1))
    write_png(tmp_path / "ramp.png", np.repeat((ramp * 255).astype(np.uint8)[..., None], 3, 2))
    np.save(tmp_path / "ramp.npy", 0.3 * ramp)
    from_png = hb.terrain_heights(
        hb.TerrainSpec(kind="file", file=str(tmp_path / "ramp.png"), height=0.3)
    )
    from_npy = hb.terrain_heights(hb.TerrainSpec(kind="file", file=str(tmp_path / "ramp.npy")))
    np.testing.assert_allclose(from_png, from_npy, atol=0.3 / 255)
    b = hb.SceneBuilder()
    b.add_terrain(hb.TerrainSpec(size=(2.0, 1.0)), heights=0.3 * ramp)
    m = b.finalize().mj_model
    assert (m.nhfield, m.hfield_nrow[0], m.hfield_ncol[0]) == (1, 8, 16)
    np.testing.assert_allclose(m.hfield_size[0][:3], (1.0, 0.5, 0.3))
    with pytest.raises(hs.SceneError, match="missing.png"):
        hb.terrain_heights(hb.TerrainSpec(kind="file", file=str(tmp_path / "missing.png")))


# Procedural -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_generated_table_scene_has_no_interpenetration(seed):
    spec = hb.generate_table_scene(seed, 6)
    assert spec == hb.generate_table_scene(seed, 6)
    assert spec != hb.generate_table_scene(seed + 1, 6)
    m = hb.build(spec).finalize().mj_model
    d = mujoco.MjData(m)
    mujoco.mj_resetDataKeyframe(m, d, 0)
    mujoco.mj_forward(m, d)
    assert all(dist >= 0 for dist in _contacts_with_static(m, d))
    objects = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, o.name) for o in spec.objects]
    for c in d.contact[: d.ncon]:  # no object touches another
        pair = {m.geom_bodyid[c.geom1], m.geom_bodyid[c.geom2]}
        assert not pair <= set(objects)
    masses = [o.mass for o in spec.objects]
    assert len(set(spec.objects[i].rgba for i in range(6))) > 1
    assert all(0.05 <= x <= 0.5 for x in masses)


def test_too_many_objects_is_a_clear_error():
    with pytest.raises(hs.SceneError, match="could not place 200 objects"):
        hb.generate_table_scene(0, 200, size_range=(0.05, 0.08))


# Robots -----------------------------------------------------------------------------------


@needs_menagerie
def test_two_menagerie_robots_with_prefixes(tmp_path, menagerie_root, no_coacd):
    ur5e = hb.resolve_menagerie("universal_robots_ur5e")
    assert ur5e == MENAGERIE / "universal_robots_ur5e" / "ur5e.xml"
    spec = hb.read_spec(SPECS / "ur5e_table.toml")
    builder = hb.build(spec)
    scene = builder.finalize()
    m = scene.mj_model
    assert scene.nu == 12 and m.nkey == 1
    home = mujoco.MjModel.from_xml_path(str(ur5e)).key_qpos[0]
    for prefix in ("left/", "right/"):
        j = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, f"{prefix}shoulder_pan_joint")
        adr = m.jnt_qposadr[j]
        np.testing.assert_allclose(m.key_qpos[0, adr : adr + 6], home)
    # The right arm's base is turned half a turn and sits at x = 0.55.
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    base = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "right/base")
    np.testing.assert_allclose(d.xpos[base], (0.55, 0.0, 0.0), atol=1e-12)
    path = builder.save(tmp_path / "ur")
    assert mujoco.MjModel.from_xml_path(str(path)).nu == 12
    assert (tmp_path / "ur" / "assets" / "base_0.obj").is_file()
    b = hb.SceneBuilder()
    b.add_robot("universal_robots_ur5e", prefix="a/")
    with pytest.raises(hs.SceneError, match="prefix 'a/' is already used"):
        b.add_robot("robotiq_2f85", prefix="a/")
    b.add_robot("robotiq_2f85", pos=(0.5, 0, 0), prefix="g/")
    assert b.finalize().mj_model.opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC  # the gripper's


def test_unknown_robot_is_a_clear_error(tmp_path):
    b = hb.SceneBuilder()
    with pytest.raises(hs.SceneError, match="does not exist"):
        b.add_robot(str(tmp_path / "nope.xml"))
    pytest.importorskip("mujoco_menagerie")
    with pytest.raises(hs.SceneError, match="universal_robots_ur5e"):
        b.add_robot("universal_robots_ur5")


# Command line -----------------------------------------------------------------------------


def test_scene_cli_generate_build_rollout(tmp_path, capsys):
    spec = tmp_path / "gen.toml"
    assert main(["scene", "generate", "--seed", "4", "--objects", "3", "--out", str(spec)]) == 0
    assert hb.read_spec(spec) == hb.generate_table_scene(4, 3)
    out = tmp_path / "built"
    assert main(["scene", "build", str(spec), "--out", str(out), "--quiet"]) == 0
    assert "collision primitive" in capsys.readouterr().out
    scene = hs.load_scene(out / "scene.xml")
    np.save(tmp_path / "u.npy", np.zeros((2, 50, scene.nu)))
    rc = main(
        [
            "rollout",
            "--scene",
            str(out / "scene.xml"),
            "--ctrl",
            str(tmp_path / "u.npy"),
            "--backend",
            "c",
            "--out",
            str(tmp_path / "t.npz"),
            "--quiet",
        ]
    )
    assert rc == 0
    traj = hs.load_trajectory(tmp_path / "t.npz", scene)
    assert np.all(np.isfinite(traj["qpos"])) and traj["qpos"].shape == (2, 51, scene.nq)
    assert main(["scene", "build", str(tmp_path / "nope.toml"), "--out", str(out)]) == 2
    assert "nope.toml" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["scene", "build", "--help"])
    assert e.value.code == 0 and "hybridsim scene build" in capsys.readouterr().out


@pytest.mark.slow
def test_scene_cli_show_renders_a_picture(tmp_path):
    spec = hb.write_spec(hb.generate_table_scene(2, 1), tmp_path / "s.json")
    out = tmp_path / "pic.png"
    rc = main(
        [
            "scene",
            "show",
            str(spec),
            "--out",
            str(out),
            "--width",
            "64",
            "--height",
            "48",
            "--quiet",
        ]
    )
    assert rc == 0
    png = out.read_bytes()
    assert png.startswith(b"\x89PNG")
    import zlib

    # Decode the one IDAT chunk written by write_png and check the picture is not blank.
    idat = png[png.index(b"IDAT") + 4 : png.index(b"IEND") - 8]
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(48, 1 + 64 * 3)[:, 1:]
    assert rows.std() > 5
    assert json.loads(spec.read_text())["objects"][0]["primitive"] == "capsule"


def test_materials_and_textures_are_saved(tmp_path, no_coacd):
    spec = hb.read_spec(SPECS / "table_objects.toml")
    assert {m.name for m in spec.materials} == {"wood", "stripes"}
    path = hb.build(spec).save(tmp_path / "t")
    m = mujoco.MjModel.from_xml_path(str(path))
    assert (tmp_path / "t" / "assets" / "stripes.png").is_file()
    block = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "block_geom")
    stripes = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_MATERIAL, "stripes")
    assert m.geom_matid[block] == stripes and m.ntex == 3  # wood, stripes, the floor grid
    b = hb.SceneBuilder()
    with pytest.raises(hs.SceneError, match="no material named 'marble'"):
        b.add_object(hb.ObjectSpec(primitive="sphere", size=(0.1,), material="marble"))


def test_free_robot_keyframe_follows_the_attach_pose(tmp_path):
    (tmp_path / "ball.xml").write_text(
        '<mujoco><worldbody><body name="torso" pos="0 0 0.3"><freejoint name="root"/>'
        '<geom type="sphere" size="0.1"/></body></worldbody>'
        '<keyframe><key name="home" qpos="0.1 0 0.5 1 0 0 0"/></keyframe></mujoco>'
    )
    b = hb.SceneBuilder()
    b.add_floor()
    yaw90 = (np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4))
    b.add_robot(tmp_path / "ball.xml", pos=(1.0, 2.0, 0.0), quat=yaw90, prefix="r/")
    key = b.finalize().mj_model.key_qpos[0]
    np.testing.assert_allclose(key, [1.0, 2.1, 0.5, *yaw90], atol=1e-12)


def test_glb_scene_is_flattened_into_one_mesh(tmp_path, no_coacd):
    a = trimesh.creation.box((0.1, 0.1, 0.1))
    c = trimesh.creation.box((0.1, 0.1, 0.1))
    c.apply_translation((0.2, 0.0, 0.0))
    trimesh.Scene([a, c]).export(tmp_path / "two.glb")
    m = hb.import_mesh(tmp_path / "two.glb", mass=1.0)
    np.testing.assert_allclose(m.visual.extents, (0.3, 0.1, 0.1), atol=1e-6)
    assert m.volume == pytest.approx(2e-3, rel=1e-6)
    assert m.collision_method == "convex_hull" and len(m.collision) == 2  # a hull per part


def test_coacd_decomposition_when_installed():
    pytest.importorskip("coacd")
    ring = trimesh.creation.annulus(r_min=0.02, r_max=0.035, height=0.02, sections=16)
    b = hb.SceneBuilder()
    b.add_floor()
    b.add_object(hb.ObjectSpec(name="ring", mesh=ring, pos=(0, 0, 0.0105), mass=0.1))
    m = b.finalize().mj_model
    (info,) = hb.BuildInfo.from_model(m).objects
    assert info.collision_method == "coacd" and info.collision_parts > 1
    # The hole stays open: the pieces fill much less than the ring's convex hull does.
    pieces = hb.import_mesh(ring, mass=0.1).collision
    assert sum(p.volume for p in pieces) < 0.8 * ring.convex_hull.volume


def test_save_replaces_its_own_scene_but_never_a_users_folder(tmp_path):
    spec = hb.generate_table_scene(seed=0, n_objects=2)
    out = tmp_path / "out"
    hb.build(spec).save(out)
    hb.build(spec).save(out)  # a scene written here is replaced
    assert (out / "scene.xml").is_file()
    mine = tmp_path / "project"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(hs.SceneError, match="not a scene written by hybridsim"):
        hb.build(spec).save(mine)
    assert (mine / "notes.txt").read_text() == "keep me"
