"""Domain randomization configured in a scene spec: read, written, saved, used by the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hybridsim as hs
from hybridsim import builder
from hybridsim._src.cli.main import main
from hybridsim.randomize import RandomizeConfig, Range, load_randomize_config

SPEC = {
    "name": "dr_table",
    "table": {"size": [0.6, 0.4], "height": 0.3},
    "objects": [
        {"name": "cube", "primitive": "box", "size": [0.03, 0.03, 0.03], "pos": [0, 0, 0.4]}
    ],
    "randomize": {"gravity": {"low": -3.0, "high": 3.0, "mode": "add"}, "friction": [0.5, 1.5]},
}


def test_spec_randomize_round_trips_and_rejects_unknown_keys(tmp_path):
    spec = builder.spec_from_dict(SPEC, base_dir=tmp_path)
    assert spec.randomize == RandomizeConfig(
        gravity=Range(-3.0, 3.0, "add"), friction=Range(0.5, 1.5)
    )
    path = builder.write_spec(spec, tmp_path / "dr.toml")
    assert builder.read_spec(path).randomize.to_dict() == spec.randomize.to_dict()
    assert load_randomize_config(path).to_dict() == spec.randomize.to_dict()
    with pytest.raises(hs.SceneError, match=r"\[randomize\].*unknown randomization keys"):
        builder.spec_from_dict({"randomize": {"wind": [0, 1]}})


def test_scene_build_writes_randomize_json_and_rollout_applies_it(tmp_path, capsys):
    builder.write_spec(builder.spec_from_dict(SPEC), tmp_path / "dr.json")
    assert main(["scene", "build", str(tmp_path / "dr.json"), "--out", str(tmp_path / "out")]) == 0
    saved = tmp_path / "out" / "randomize.json"
    assert json.loads(saved.read_text())["gravity"]["mode"] == "add"
    np.save(tmp_path / "u.npy", np.zeros((4, 25, 0)))
    args = ["rollout", "--scene", str(tmp_path / "out" / "scene.xml"), "--ctrl"]
    args += [str(tmp_path / "u.npy"), "--backend", "c", "--substeps", "10", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "plain.npz")]) == 0
    assert main([*args, "--randomize", str(saved), "--out", str(tmp_path / "dr.npz")]) == 0
    plain = hs.load_trajectory(tmp_path / "plain.npz")["qpos"]
    rand = hs.load_trajectory(tmp_path / "dr.npz")["qpos"]
    # Without randomization the 4 worlds are identical; with per-world gravity the cube's
    # fall (0.5 s, it lands on the table) differs from world to world.
    np.testing.assert_array_equal(plain[0], plain[3])
    assert np.ptp(rand[:, 10, :3], axis=0).max() > 1e-3
    assert main([*args, "--randomize", str(tmp_path / "missing.json"), "--out", "x.npz"]) == 2
    assert "missing.json" in capsys.readouterr().err
