"""Names of the entries of qpos, qvel and ctrl, as datasets label them.

A dataset feature such as LeRobot's ``observation.state`` is a flat vector whose ``names``
label its entries. hybridsim names the entries of a scene's state by joint:

- hinge and slide joint ``J``: one entry ``J`` in qpos and in qvel;
- ball joint ``J``: qpos ``J.qw J.qx J.qy J.qz``, qvel ``J.wx J.wy J.wz``;
- free joint ``J``: qpos ``J.x J.y J.z J.qw J.qx J.qy J.qz``, qvel
  ``J.vx J.vy J.vz J.wx J.wy J.wz``;
- a joint without a name is ``joint<i>`` (``i`` its MuJoCo id); an actuator without a
  name is ``actuator<i>``.
"""

from __future__ import annotations

import mujoco

_QPOS_SUFFIX = {
    mujoco.mjtJoint.mjJNT_FREE: ("x", "y", "z", "qw", "qx", "qy", "qz"),
    mujoco.mjtJoint.mjJNT_BALL: ("qw", "qx", "qy", "qz"),
}
_QVEL_SUFFIX = {
    mujoco.mjtJoint.mjJNT_FREE: ("vx", "vy", "vz", "wx", "wy", "wz"),
    mujoco.mjtJoint.mjJNT_BALL: ("wx", "wy", "wz"),
}


def joint_name(m: mujoco.MjModel, j: int) -> str:
    """The name of joint ``j``, or ``joint<j>`` when it has none."""
    return mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, j) or f"joint{j}"


def actuator_names(m: mujoco.MjModel) -> list[str]:
    """(nu,) the name of each actuator, or ``actuator<i>``."""
    return [
        mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_ACTUATOR, i) or f"actuator{i}" for i in range(m.nu)
    ]


def _entries(m: mujoco.MjModel, suffixes: dict) -> list[str]:
    out = []
    for j in range(m.njnt):
        name = joint_name(m, j)
        sfx = suffixes.get(int(m.jnt_type[j]))
        out.extend([name] if sfx is None else [f"{name}.{s}" for s in sfx])
    return out


def qpos_names(m: mujoco.MjModel) -> list[str]:
    """(nq,) the name of each qpos entry, in qpos order."""
    return _entries(m, _QPOS_SUFFIX)


def qvel_names(m: mujoco.MjModel) -> list[str]:
    """(nv,) the name of each qvel entry, in qvel order."""
    return _entries(m, _QVEL_SUFFIX)


def joint_of_qpos(m: mujoco.MjModel) -> list[int]:
    """(nq,) the joint id each qpos entry belongs to."""
    return [int(j) for j in range(m.njnt) for _ in range(_size(m, j, _QPOS_SUFFIX))]


def joint_of_qvel(m: mujoco.MjModel) -> list[int]:
    """(nv,) the joint id each qvel entry belongs to."""
    return [int(j) for j in range(m.njnt) for _ in range(_size(m, j, _QVEL_SUFFIX))]


def _size(m: mujoco.MjModel, j: int, suffixes: dict) -> int:
    return len(suffixes.get(int(m.jnt_type[j]), ("",)))
