"""Real-first reconstruction: golden shapes from analytic depth images and point clouds."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

import hybridsim as hs
from hybridsim._src.builder import reconstruct as rec
from hybridsim._src.cli.main import main
from hybridsim._src.errors import ReconstructionError

VOXEL = 0.005  # m
RADIUS = 0.1  # m, the golden sphere
HALF = np.array([0.0812, 0.0613, 0.0417])  # m, half extents of the golden box (off-grid)
H, W = 96, 128
K = np.array([[110.0, 0.0, 63.5], [0.0, 110.0, 47.5], [0.0, 0.0, 1.0]])

# Tolerances, in voxels, against the true surface. Measured with the defaults (truncation
# 2.5 voxels) on these captures: sphere max 0.50; box 99th percentile 1.0, max 1.83
# (projective TSDF bulges at sharp edges); points: sphere max 0.07, box max 0.72.
SPHERE_MAX_VOXELS = 1.0
BOX_P99_VOXELS = 1.5
BOX_MAX_VOXELS = 2.5
POINTS_MAX_VOXELS = 1.0
# A third of the pixels dropped at random: fewer views per voxel; measured max 1.64.
DROPOUT_MAX_VOXELS = 2.0
# Every true surface sample has a mesh vertex this close (vertices are ~1 voxel apart).
COVERAGE_VOXELS = 1.5
VOLUME_RTOL = 0.03  # measured: sphere 0.4 %, box 0.9 %, points 0.6-1.7 %


def _look_at(eye: np.ndarray) -> np.ndarray:
    """Camera-to-world pose (OpenCV axes) at ``eye`` looking at the origin."""
    f = -eye / np.linalg.norm(eye)
    up = np.array([0.0, 0.0, 1.0]) if abs(f[2]) < 0.99 else np.array([0.0, 1.0, 0.0])
    r = np.cross(f, up)
    r /= np.linalg.norm(r)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = r, np.cross(f, r), f, eye
    return pose


def _poses(dist: float = 0.5) -> np.ndarray:
    """(10, 4, 4): two rings of four cameras (below and above) plus top and bottom."""
    eyes = [
        dist * np.array([np.cos(a) * np.cos(e), np.sin(a) * np.cos(e), np.sin(e)])
        for e in (-0.6, 0.6)
        for a in np.linspace(0, 2 * np.pi, 4, endpoint=False) + (0.3 if e > 0 else 0.0)
    ]
    eyes += [np.array([0, 0, dist]), np.array([0, 0, -dist])]
    return np.stack([_look_at(e) for e in eyes])


def _rays(pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World ray directions with unit z-depth (H, W, 3) and the origin (3,)."""
    u, v = np.meshgrid(np.arange(W), np.arange(H))
    d = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones((H, W))], -1)
    return d @ pose[:3, :3].T, pose[:3, 3]


def _sphere_depth(pose: np.ndarray) -> np.ndarray:
    d, o = _rays(pose)
    a, b, c = (d * d).sum(-1), 2 * d @ o, o @ o - RADIUS**2
    disc = b * b - 4 * a * c
    t = (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a)
    return np.where((disc >= 0) & (t > 0), t, np.nan)  # NaN: no return


def _box_depth(pose: np.ndarray) -> np.ndarray:
    d, o = _rays(pose)
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (-HALF - o) / d, (HALF - o) / d
    near = np.nanmax(np.minimum(t1, t2), -1)
    far = np.nanmin(np.maximum(t1, t2), -1)
    return np.where((near <= far) & (near > 0), near, np.nan)


def _sphere_err(v: np.ndarray) -> np.ndarray:
    return np.abs(np.linalg.norm(v, axis=1) - RADIUS)


def _box_err(v: np.ndarray) -> np.ndarray:
    q = np.abs(v) - HALF
    outside = np.linalg.norm(np.maximum(q, 0), axis=1)
    return np.abs(np.where((q > 0).any(1), outside, q.max(1)))


def _true_surface(shape: str) -> trimesh.Trimesh:
    if shape == "sphere":
        return trimesh.creation.icosphere(subdivisions=5, radius=RADIUS)
    return trimesh.creation.box(extents=2 * HALF)


def _check_mesh(
    mesh: trimesh.Trimesh, shape: str, max_voxels: float, p99_voxels: float, closed: bool = True
):
    err = (_sphere_err if shape == "sphere" else _box_err)(mesh.vertices) / VOXEL
    assert err.max() <= max_voxels, err.max()
    assert np.percentile(err, 99) <= p99_voxels
    truth = _true_surface(shape)
    samples, _ = trimesh.sample.sample_surface(truth, 2000, seed=0)
    from scipy.spatial import cKDTree

    gap, _ = cKDTree(mesh.vertices).query(samples)
    assert gap.max() / VOXEL <= COVERAGE_VOXELS, gap.max() / VOXEL
    assert mesh.is_watertight or not closed
    np.testing.assert_allclose(mesh.volume, truth.volume, rtol=VOLUME_RTOL)


@pytest.fixture(scope="module")
def sphere_capture():
    poses = _poses()
    return np.stack([_sphere_depth(p) for p in poses]), K, poses


@pytest.fixture(scope="module")
def box_capture():
    poses = _poses()
    return np.stack([_box_depth(p) for p in poses]), K, poses


def test_depth_sphere_matches_the_true_sphere(sphere_capture):
    mesh = rec.reconstruct_from_depth(*sphere_capture, voxel_size=VOXEL)
    _check_mesh(mesh, "sphere", SPHERE_MAX_VOXELS, SPHERE_MAX_VOXELS)


def test_depth_box_matches_the_true_box(box_capture):
    mesh = rec.reconstruct_from_depth(*box_capture, voxel_size=VOXEL)
    _check_mesh(mesh, "box", BOX_MAX_VOXELS, BOX_P99_VOXELS)


def test_nan_pixels_are_skipped_not_carved(sphere_capture):
    """A third of the pixels dropped (NaN, inf, 0, negative): the sphere is still there."""
    depth, k, poses = sphere_capture
    rng = np.random.default_rng(0)
    holes = rng.random(depth.shape) < 0.33
    bad = rng.choice(np.array([np.nan, np.inf, 0.0, -1.0]), size=depth.shape)
    mesh = rec.reconstruct_from_depth(np.where(holes, bad, depth), k, poses, voxel_size=VOXEL)
    # Random dropouts can leave pinholes (not watertight); the surface is still right.
    _check_mesh(mesh, "sphere", DROPOUT_MAX_VOXELS, SPHERE_MAX_VOXELS, closed=False)


@pytest.mark.parametrize("shape", ["sphere", "box"])
@pytest.mark.parametrize("with_normals", [True, False])
def test_points_match_the_true_shape(shape, with_normals):
    truth = _true_surface(shape)
    points, face = trimesh.sample.sample_surface(truth, 30000, seed=1)
    normals = truth.face_normals[face] if with_normals else None
    mesh = rec.reconstruct_from_points(points, normals, voxel_size=VOXEL)
    _check_mesh(mesh, shape, POINTS_MAX_VOXELS, POINTS_MAX_VOXELS)


def test_unsigned_distance_grid_is_the_distance_to_the_nearest_point():
    rng = np.random.default_rng(2)
    points = rng.uniform(-0.02, 0.02, (50, 3))
    dist, origin = rec.unsigned_distance_grid(points, VOXEL, radius=3)
    idx = np.indices(dist.shape).reshape(3, -1).T
    centres = origin + VOXEL * idx
    brute = np.linalg.norm(centres[:, None] - points[None], axis=2).min(axis=1)
    near = brute <= 3 * VOXEL
    got = dist.reshape(-1)
    np.testing.assert_allclose(got[near], brute[near], atol=1e-6)
    assert np.all(np.isinf(got[~near]))
    assert near.mean() > 0.3


def test_bad_inputs_are_clear_errors(sphere_capture, tmp_path):
    depth, k, poses = sphere_capture
    with pytest.raises(ReconstructionError, match="no valid pixel"):
        rec.reconstruct_from_depth(np.full_like(depth, np.nan), k, poses, VOXEL)
    with pytest.raises(hs.ShapeError, match=r"'poses' expected shape \(10, 4, 4\), found"):
        rec.reconstruct_from_depth(depth, k, poses[:3], VOXEL)
    with pytest.raises(hs.ShapeError, match="'intrinsics' expected shape"):
        rec.reconstruct_from_depth(depth, np.eye(4), poses, VOXEL)
    with pytest.raises(hs.ShapeError, match="rigid"):
        rec.reconstruct_from_depth(depth, k, poses * 2, VOXEL)
    with pytest.raises(hs.ShapeError, match="voxel_size"):
        rec.reconstruct_from_depth(depth, k, poses, -1.0)
    with pytest.raises(ReconstructionError, match="no surface"):  # bounds miss the sphere
        rec.reconstruct_from_depth(depth, k, poses, VOXEL, bounds=[[0.3] * 3, [0.4] * 3])
    with pytest.raises(ReconstructionError, match="at least 4"):
        rec.reconstruct_from_points(np.full((10, 3), np.nan), voxel_size=VOXEL)
    with pytest.raises(hs.ShapeError, match=r"\(P, 3\)"):
        rec.reconstruct_from_points(np.zeros((10, 2)), voxel_size=VOXEL)
    # Files: missing key, wrong shape, bad point cloud.
    path = tmp_path / "cap.npz"
    np.savez(path, depth=depth, intrinsics=k)
    with pytest.raises(hs.DataFileError, match=r"missing key\(s\) \['poses'\]"):
        rec.load_depth_capture(path)
    np.savez(path, depth=depth, intrinsics=k, poses=poses[:, :3])
    with pytest.raises(hs.DataFileError, match=r"'poses' expected shape \(10, 4, 4\), found"):
        rec.load_depth_capture(path)
    np.save(tmp_path / "p.npy", np.zeros((5, 4)))
    with pytest.raises(hs.DataFileError, match=r"\(P, 3\) or \(P, 6\).*found \(5, 4\)"):
        rec.load_point_cloud(tmp_path / "p.npy")
    with pytest.raises(hs.DataFileError, match="does not exist"):
        rec.load_point_cloud(tmp_path / "none.ply")


def test_point_cloud_files_round_trip(tmp_path):
    points, face = trimesh.sample.sample_surface(_true_surface("sphere"), 500, seed=3)
    normals = _true_surface("sphere").face_normals[face]
    np.save(tmp_path / "pn.npy", np.concatenate([points, normals], axis=1))
    p, n = rec.load_point_cloud(tmp_path / "pn.npy")
    np.testing.assert_array_equal(p, points)
    np.testing.assert_array_equal(n, normals)
    trimesh.PointCloud(points).export(tmp_path / "p.ply")
    p, n = rec.load_point_cloud(tmp_path / "p.ply")
    np.testing.assert_allclose(p, points, atol=1e-6)
    assert n is None


def test_cli_reconstructs_a_depth_capture_and_a_point_cloud(sphere_capture, tmp_path, capsys):
    cap = rec.save_depth_capture(tmp_path / "cap.npz", *sphere_capture)
    assert main(["reconstruct", str(cap), "--out", str(tmp_path / "s.obj"), "--voxel-size",
                 str(VOXEL), "--quiet"]) == 0  # fmt: skip
    mesh = trimesh.load(tmp_path / "s.obj", force="mesh")
    assert _sphere_err(mesh.vertices).max() / VOXEL <= SPHERE_MAX_VOXELS
    assert "watertight" in capsys.readouterr().out
    points, _ = trimesh.sample.sample_surface(_true_surface("box"), 30000, seed=4)
    np.save(tmp_path / "pts.npy", points)
    assert main(["reconstruct", str(tmp_path / "pts.npy"), "--out", str(tmp_path / "b.ply"),
                 "--voxel-size", str(VOXEL), "--quiet"]) == 0  # fmt: skip
    mesh = trimesh.load(tmp_path / "b.ply", force="mesh")
    assert _box_err(mesh.vertices).max() / VOXEL <= POINTS_MAX_VOXELS
    # Errors: one clear line, exit code 2.
    assert main(["reconstruct", str(tmp_path / "x.txt"), "--out", "m.obj", "--voxel-size",
                 "0.01"]) == 2  # fmt: skip
    assert "expected a depth capture .npz or a point cloud" in capsys.readouterr().err


def test_reconstruct_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as e:
        main(["reconstruct", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "example" in out and "hybridsim reconstruct" in out


def test_mujoco_warp_depth_capture_reconstructs_the_scene_sphere():
    """Depth from MuJoCo Warp's renderer, cameras moved per frame by cam_pos/cam_quat."""
    import mujoco

    from hybridsim._src.render import render_depth

    scene = hs.load_scene(
        f"""<mujoco><visual><map znear="0.01"/></visual><worldbody>
        <camera name="main" pos="0 -0.5 0" xyaxes="1 0 0 0 0 1"/>
        <geom type="sphere" size="{RADIUS}"/></worldbody></mujoco>"""
    )
    eyes = [p[:3, 3] for p in _poses()]
    quats = []
    for eye in eyes:  # MuJoCo camera frame: x right, y up, looking along -z
        back = eye / np.linalg.norm(eye)
        up = np.array([0.0, 0.0, 1.0]) if abs(back[2]) < 0.99 else np.array([0.0, 1.0, 0.0])
        x = np.cross(up, back)
        x /= np.linalg.norm(x)
        q = np.zeros(4)
        mujoco.mju_mat2Quat(q, np.stack([x, np.cross(back, x), back], axis=1).ravel())
        quats.append(q)
    n = len(eyes)
    params = hs.world_params(
        scene, n, cam_pos=np.array(eyes)[:, None], cam_quat=np.array(quats)[:, None]
    )
    depth, k, poses = render_depth(scene, np.zeros((n, 0)), width=W, height=H, params=params)
    np.testing.assert_allclose(poses[:, :3, 3], eyes, atol=1e-6)
    assert np.isnan(depth).any() and np.nanmin(depth) > 0.5 - RADIUS - 1e-3
    mesh = rec.reconstruct_from_depth(depth, k, poses, voxel_size=VOXEL)
    _check_mesh(mesh, "sphere", SPHERE_MAX_VOXELS, SPHERE_MAX_VOXELS)


def test_accuracy_benchmark_runs(tmp_path):
    """Smoke test of benchmarks/reconstruction_accuracy.py --quick (numbers, not speed)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "reconstruction_accuracy.py"
    spec = importlib.util.spec_from_file_location("reconstruction_accuracy", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "r.json"
    rows = bench.main(["--quick", "--shapes", "sphere", "--out", str(out)])
    assert [r["source"].split()[0] for r in rows] == ["depth", "points", "points"]
    for r in rows:
        assert r["max_err_voxels"] <= SPHERE_MAX_VOXELS and r["watertight"], r
        assert abs(r["volume_err"]) <= VOLUME_RTOL
    assert "rows" in out.read_text()


def test_a_scanned_box_is_static_collision_geometry_in_a_scene(box_capture, tmp_path):
    """Real-first end to end: a depth capture of a box, named as a static object's ``scan``
    in a spec file, becomes collision geometry that a dropped cube rests on."""
    from hybridsim import builder

    rec.save_depth_capture(tmp_path / "box_capture.npz", *box_capture)
    spec = builder.spec_from_dict(
        {
            "objects": [
                {"name": "scanned", "scan": "box_capture.npz", "static": True, "voxel_size": VOXEL},
                {
                    "name": "cube",
                    "primitive": "box",
                    "size": [0.02, 0.02, 0.02],
                    "pos": [0, 0, float(HALF[2]) + 0.03],
                },
            ]
        },
        base_dir=tmp_path,
    )
    builder.write_spec(spec, tmp_path / "scene.toml")
    assert 'scan = "box_capture.npz"' in (tmp_path / "scene.toml").read_text()
    built = builder.build(builder.read_spec(tmp_path / "scene.toml")).finalize()
    model = hs.make_model(built, 1, backend="c", substeps=10)
    traj = hs.rollout(model, hs.init(model), np.zeros((1, 50, 0)))  # 1 s
    cube_z = traj.qpos[0, :, 2]
    # The reconstructed top is within 2.5 voxels of the true one (test_depth_box_...).
    assert cube_z[-1] > HALF[2] + 0.02 - BOX_MAX_VOXELS * VOXEL - 0.005
    assert abs(cube_z[-1] - cube_z[-10]) < 1e-4  # at rest on the scan
