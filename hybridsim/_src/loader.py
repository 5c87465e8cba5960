"""Loading MJCF scenes: bundled names, file paths, XML strings and ``mujoco.MjSpec``."""

from __future__ import annotations

import copy
import dataclasses
import importlib.resources
from pathlib import Path

import mujoco
import numpy as np

from hybridsim._src.errors import SceneError


@dataclasses.dataclass(frozen=True, eq=False)
class Scene:
    """A compiled MuJoCo model plus where it came from.

    Hashes by identity, so it can sit in the static part of a pytree.
    """

    name: str
    """Bundled scene name, file stem, ``"<xml>"`` or ``"<spec>"``."""
    mj_model: mujoco.MjModel
    """The compiled model every backend starts from (never mutated by hybridsim)."""
    source: str
    """Path of the MJCF file, or a short description for strings and specs."""

    @property
    def nq(self) -> int:
        return int(self.mj_model.nq)

    @property
    def nv(self) -> int:
        return int(self.mj_model.nv)

    @property
    def nu(self) -> int:
        return int(self.mj_model.nu)

    @property
    def na(self) -> int:
        return int(self.mj_model.na)

    @property
    def nsensordata(self) -> int:
        return int(self.mj_model.nsensordata)

    @property
    def timestep(self) -> float:
        """Physics timestep in seconds."""
        return float(self.mj_model.opt.timestep)

    def with_timestep(self, timestep: float) -> Scene:
        """The same scene stepped with another physics timestep (s): a copy of the model
        with ``opt.timestep`` changed; this scene is left as it is."""
        if not (np.isfinite(timestep) and timestep > 0):
            raise SceneError(f"timestep must be a positive number of seconds, got {timestep!r}")
        if float(timestep) == self.timestep:
            return self
        m = copy.copy(self.mj_model)
        m.opt.timestep = float(timestep)
        return Scene(name=self.name, mj_model=m, source=self.source)

    def initial_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(qpos (nq,), qvel (nv,), act (na,))`` of the first keyframe, or of ``qpos0``."""
        m = self.mj_model
        d = mujoco.MjData(m)
        if m.nkey > 0:
            mujoco.mj_resetDataKeyframe(m, d, 0)
        else:
            mujoco.mj_resetData(m, d)
        return d.qpos.copy(), d.qvel.copy(), d.act.copy()

    def initial_ctrl(self) -> np.ndarray:
        """``(nu,)`` controls of the first keyframe, or zeros."""
        m = self.mj_model
        if m.nkey > 0:
            return np.array(m.key_ctrl[0], dtype=np.float64)
        return np.zeros(m.nu)

    def ctrl_range(self) -> tuple[np.ndarray, np.ndarray]:
        """``(low (nu,), high (nu,))``; unlimited actuators get ``-inf, inf``."""
        m = self.mj_model
        low = np.full(m.nu, -np.inf)
        high = np.full(m.nu, np.inf)
        limited = m.actuator_ctrllimited.astype(bool)
        low[limited] = m.actuator_ctrlrange[limited, 0]
        high[limited] = m.actuator_ctrlrange[limited, 1]
        return low, high


def _assets_dir() -> Path:
    return Path(str(importlib.resources.files("hybridsim.assets")))


def bundled_scenes() -> list[str]:
    """Names of the scenes shipped in ``hybridsim/assets``."""
    return sorted(p.stem for p in _assets_dir().glob("*.xml"))


def bundled_scene_path(name: str) -> Path:
    """Path of a bundled scene's MJCF file."""
    path = _assets_dir() / f"{name}.xml"
    if not path.is_file():
        raise SceneError(f"no bundled scene named {name!r}; bundled scenes are {bundled_scenes()}")
    return path


def _compile(what: str, build) -> mujoco.MjModel:
    try:
        return build()
    except (ValueError, mujoco.FatalError) as e:  # mujoco raises ValueError on XML errors
        raise SceneError(f"could not load MJCF scene {what}: {e}") from None


def load_scene(source: str | Path | mujoco.MjSpec | mujoco.MjModel) -> Scene:
    """Loads a scene.

    Args:
      source: a bundled scene name (see ``bundled_scenes()``), a path to an MJCF file,
        an MJCF XML string, a ``mujoco.MjSpec`` or an already compiled ``mujoco.MjModel``.

    Raises:
      SceneError: the name or file does not exist, or MuJoCo cannot parse or compile it
        (the message carries MuJoCo's, e.g. the missing mesh file and the XML line).
    """
    if isinstance(source, Scene):
        return source
    if isinstance(source, mujoco.MjModel):
        return Scene(name="<model>", mj_model=source, source="<MjModel>")
    if isinstance(source, mujoco.MjSpec):
        model = _compile("from MjSpec", source.compile)
        return Scene(name=source.modelname or "<spec>", mj_model=model, source="<MjSpec>")
    if isinstance(source, str) and source.lstrip().startswith("<"):
        model = _compile("from XML string", lambda: mujoco.MjModel.from_xml_string(source))
        return Scene(name="<xml>", mj_model=model, source="<xml string>")
    if not isinstance(source, str | Path):
        raise SceneError(
            "a scene is a bundled name, an MJCF path, an XML string or a mujoco.MjSpec; "
            f"got {type(source).__name__}"
        )
    text = str(source)
    path = Path(text).expanduser()
    if path.suffix.lower() != ".xml" and not path.exists() and "/" not in text:
        path = bundled_scene_path(text)
        name = text
    else:
        if not path.is_file():
            raise SceneError(
                f"MJCF file {str(path)!r} does not exist (bundled scenes: {bundled_scenes()})"
            )
        name = path.stem
    model = _compile(repr(str(path)), lambda: mujoco.MjModel.from_xml_path(str(path)))
    return Scene(name=name, mj_model=model, source=str(path))
