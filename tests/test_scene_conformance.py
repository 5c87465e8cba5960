"""Conformance: every bundled scene, example spec and generated scene compiles and simulates
2 s stably on MuJoCo C and MJX: no NaN, no flagged world, and nothing rests more than 5 mm
inside the table or the ground.

Penetration is measured two ways after 2 s at the scene's first keyframe controls: the
signed distance of every contact with static geometry (table, floor, terrain; MuJoCo's
``contact.dist``, negative inside), and, for scenes made by the builder, how far each free
object's centre has dropped below where it started (objects start 0.5 mm above their
support, so a drop of more than 5.5 mm means sinking).
"""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np
import pytest

import hybridsim as hs
from hybridsim import builder

SECONDS = 2.0
SINK_TOLERANCE = 0.005  # m: the bound on resting penetration
START_GAP = 0.0005  # m: generated objects start this far above their support
SPECS = Path(__file__).resolve().parents[1] / "assets" / "specs"
MENAGERIE = Path(__file__).resolve().parents[2] / "shared" / "menagerie"


def _table(seed: int, n: int):
    return lambda: builder.build(builder.generate_table_scene(seed, n)).finalize()


def _terrain(kind: str, seed: int):
    spec = builder.generate_terrain_scene(kind, seed, size=(3.0, 3.0), n_objects=2)
    return lambda: builder.build(spec).finalize()


def _spec(name: str):
    return lambda: builder.build(builder.read_spec(SPECS / f"{name}.toml")).finalize()


# (case id, scene factory, built by the scene builder)
SCENES = {
    **{name: (lambda n=name: hs.load_scene(n), False) for name in hs.bundled_scenes()},
    **{f"table-seed{s}-n{n}": (_table(s, n), True) for s, n in ((0, 2), (1, 3), (2, 4), (11, 3))},
    **{f"{k}-seed0": (_terrain(k, 0), True) for k in ("rough", "stairs", "slopes")},
    "spec-table_objects": (_spec("table_objects"), True),
    "spec-ur5e_table": (_spec("ur5e_table"), True),  # needs the offline Menagerie copy
}
# MJX on the CPU compiles for ~20 s per contact scene: a few small cases, batch 1.
MJX_CASES = ("pusher", "table-seed11-n3", "rough-seed0")
CASES = [pytest.param(name, "c", id=f"{name}-c") for name in SCENES] + [
    pytest.param(name, "mjx", id=f"{name}-mjx", marks=pytest.mark.slow) for name in MJX_CASES
]


def _static_contact_dists(m: mujoco.MjModel, qpos: np.ndarray) -> np.ndarray:
    """Signed distances (m) of contacts between moving bodies and static geometry."""
    d = mujoco.MjData(m)
    d.qpos[:] = qpos
    mujoco.mj_forward(m, d)
    dists = [
        c.dist
        for c in d.contact[: d.ncon]
        if (m.body_weldid[m.geom_bodyid[c.geom1]] == 0)
        != (m.body_weldid[m.geom_bodyid[c.geom2]] == 0)
    ]
    return np.asarray(dists, dtype=np.float64)


def _free_body_heights(m: mujoco.MjModel, qpos: np.ndarray) -> np.ndarray:
    adr = [m.jnt_qposadr[j] for j in range(m.njnt) if m.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE]
    return np.asarray([qpos[a + 2] for a in adr])


@pytest.mark.parametrize(("name", "backend"), CASES)
def test_scene_simulates_stably(name, backend, monkeypatch):
    factory, built = SCENES[name]
    if name == "spec-ur5e_table":
        pytest.importorskip("mujoco_menagerie")
        if not MENAGERIE.is_dir():
            pytest.skip("no offline MuJoCo Menagerie copy (../shared/menagerie)")
        monkeypatch.setenv("MENAGERIE_ROOT", str(MENAGERIE))
    scene = factory()
    m = scene.mj_model
    substeps = 10
    steps = int(round(SECONDS / (m.opt.timestep * substeps)))
    model = hs.make_model(scene, 1, backend=backend, substeps=substeps)
    ctrl = np.broadcast_to(scene.initial_ctrl(), (1, steps, scene.nu))
    traj = hs.rollout(model, hs.init(model), ctrl)
    qpos = np.asarray(traj.qpos, dtype=np.float64)
    assert np.all(np.isfinite(qpos)) and np.all(np.isfinite(np.asarray(traj.qvel)))
    assert int(np.asarray(traj.status)[0]) == 0
    final = qpos[0, -1]
    dists = _static_contact_dists(m, final)
    if built:  # every generated object rests on the table or the ground
        assert dists.size > 0
    if dists.size:
        assert dists.min() >= -SINK_TOLERANCE, f"{name}: {-dists.min() * 1e3:.2f} mm inside"
    if built:
        drop = _free_body_heights(m, qpos[0, 0]) - _free_body_heights(m, final)
        assert drop.size and drop.max() <= SINK_TOLERANCE + START_GAP, drop
