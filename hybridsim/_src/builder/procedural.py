"""Synthetic-first scenes from a seed: objects on a table, terrains for legged robots.

Everything here is deterministic per seed (``numpy.random.default_rng(seed)``) and returns a
``SceneSpec``, so a generated scene can be written to a spec file and rebuilt exactly.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np

from hybridsim._src.builder.spec import (
    CameraSpec,
    LightSpec,
    ObjectSpec,
    SceneSpec,
    TableSpec,
    TerrainSpec,
)
from hybridsim._src.errors import SceneError

SHAPES = ("box", "sphere", "cylinder", "capsule")
_GAP = 0.01  # m: least horizontal clearance between two generated objects
_DROP = 0.0005  # m: objects start this far above the table top


def _footprint_and_height(shape: str, size: tuple[float, ...]) -> tuple[float, float]:
    """(horizontal bounding radius, half-height) of a primitive in its placed orientation."""
    if shape == "box":
        return math.hypot(size[0], size[1]), size[2]
    if shape == "sphere":
        return size[0], size[0]
    if shape == "cylinder":
        return size[0], size[1]
    if shape == "capsule":  # lying on its side: axis along the body x
        return size[0] + size[1], size[0]
    raise SceneError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def _r(x: float, digits: int = 5) -> float:
    """Rounded, so that written specs stay readable (0.01 mm)."""
    return round(float(x), digits)


def _sample_size(rng: np.random.Generator, shape: str, lo: float, hi: float) -> tuple:
    if shape == "box":
        return tuple(_r(x) for x in rng.uniform(lo, hi, 3))
    if shape == "sphere":
        return (_r(rng.uniform(lo, hi)),)
    radius = _r(rng.uniform(lo, hi * 0.8))
    return (radius, _r(rng.uniform(lo, hi)))


def _yaw_quat(yaw: float, lying: bool) -> tuple[float, float, float, float]:
    """Rotation by ``yaw`` about z, after a quarter turn about y when ``lying``."""
    qz = np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])
    if not lying:
        return tuple(_r(x, 7) for x in qz)
    qy = np.array([math.cos(math.pi / 4), 0.0, math.sin(math.pi / 4), 0.0])
    w1, x1, y1, z1 = qz
    w2, x2, y2, z2 = qy
    q = (
        w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
        w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
    )
    return tuple(_r(x, 7) for x in q)


def generate_table_scene(
    seed: int,
    n_objects: int = 4,
    *,
    table: TableSpec | None = None,
    shapes: tuple[str, ...] = SHAPES,
    size_range: tuple[float, float] = (0.02, 0.05),
    mass_range: tuple[float, float] = (0.05, 0.5),
    timestep: float = 0.002,
    name: str = "",
) -> SceneSpec:
    """``n_objects`` primitives resting on a table, none touching another at the start.

    Shapes, sizes (MuJoCo half-sizes in ``size_range``, m), yaw, colours and masses (kg, in
    ``mass_range``) are sampled from ``seed``. Objects are placed by rejection sampling on
    the table top with at least 1 cm between their bounding circles, and start 0.5 mm above
    it. Capsules lie on their side; the others stand upright. Cylinders collide as convex
    meshes (``collision = "convex_hull"``), since MJX-JAX has no cylinder-box collisions.

    Raises:
      SceneError: the objects do not fit on the table.
    """
    table = table or TableSpec()
    rng = np.random.default_rng(seed)
    bad = [s for s in shapes if s not in SHAPES]
    if bad or not shapes:
        raise SceneError(f"shapes {list(shapes)}: expected a non-empty subset of {SHAPES}")
    if n_objects < 0:
        raise SceneError(f"n_objects must be >= 0, got {n_objects}")
    lx, ly = table.size
    placed: list[tuple[float, float, float]] = []
    objects = []
    for i in range(n_objects):
        shape = shapes[int(rng.integers(len(shapes)))]
        size = _sample_size(rng, shape, *size_range)
        radius, half_h = _footprint_and_height(shape, size)
        for _ in range(1000):
            x = _r(rng.uniform(-lx / 2 + radius + _GAP, lx / 2 - radius - _GAP))
            y = _r(rng.uniform(-ly / 2 + radius + _GAP, ly / 2 - radius - _GAP))
            if all(math.hypot(x - px, y - py) >= radius + pr + _GAP for px, py, pr in placed):
                break
        else:
            raise SceneError(
                f"seed {seed}: could not place {n_objects} objects on a {lx} x {ly} m table "
                "without overlap; use fewer or smaller objects or a larger table"
            )
        placed.append((x, y, radius))
        hue = float(rng.uniform())
        rgb = colorsys.hsv_to_rgb(hue, 0.65, 0.9)
        objects.append(
            ObjectSpec(
                name=f"object{i}",
                primitive=shape,
                size=size,
                pos=(
                    _r(x + table.pos[0]),
                    _r(y + table.pos[1]),
                    _r(table.height + half_h + _DROP),
                ),
                quat=_yaw_quat(float(rng.uniform(0, 2 * math.pi)), lying=shape == "capsule"),
                mass=round(float(rng.uniform(*mass_range)), 4),
                rgba=(*(round(c, 3) for c in rgb), 1.0),
                collision="convex_hull" if shape == "cylinder" else "auto",
            )
        )
    e = max(lx, ly)
    return SceneSpec(
        name=name or f"table_seed{seed}",
        timestep=timestep,
        table=table,
        objects=tuple(objects),
        cameras=(
            CameraSpec(
                name="main",
                pos=(table.pos[0] + 0.9 * e, table.pos[1] - 0.9 * e, table.height + 0.8 * e),
                lookat=(table.pos[0], table.pos[1], table.height),
            ),
        ),
        lights=(LightSpec(name="sun", pos=(0, 0, 3), dir=(0.2, 0.3, -1), directional=True),),
    )


def terrain_heights(terrain: TerrainSpec) -> np.ndarray:
    """Elevations ``(nrow, ncol)`` in metres of a terrain (row = y, column = x), lowest 0.

    ``rough``: smoothed random bumps up to ``height``; ``stairs``: steps of ``height / n``
    rising in rings from the centre, tread ``step``; ``slopes``: a pyramid rising
    ``height`` from the edges to the centre; ``flat``: zeros; ``file``: an image (grey
    levels scaled to ``height``) or a 2-D ``.npy`` of metres. A flat square of side
    ``flat_centre`` is kept at the centre of procedural terrains.
    """
    lx, ly = terrain.size
    if min(lx, ly) <= 0 or terrain.resolution <= 0 or terrain.height < 0:
        raise SceneError(f"terrain: size, resolution and height must be positive, got {terrain}")
    if terrain.kind == "file":
        return _heights_from_file(terrain)
    ncol = max(2, int(round(lx * terrain.resolution)) + 1)
    nrow = max(2, int(round(ly * terrain.resolution)) + 1)
    x = np.linspace(-lx / 2, lx / 2, ncol)[None, :]
    y = np.linspace(-ly / 2, ly / 2, nrow)[:, None]
    h = terrain.height
    ring = np.maximum(np.abs(x) / (lx / 2), np.abs(y) / (ly / 2))  # 0 centre .. 1 edge
    if terrain.kind == "flat":
        z = np.zeros((nrow, ncol))
    elif terrain.kind == "rough":
        rng = np.random.default_rng(terrain.seed)
        noise = rng.uniform(0.0, 1.0, (nrow, ncol))
        kernel = np.ones(3) / 3  # light smoothing keeps bumps a few cells wide
        for axis in (0, 1):
            noise = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), axis, noise)
        noise = (noise - noise.min()) / max(float(np.ptp(noise)), 1e-12)
        z = h * noise
    elif terrain.kind == "stairs":
        if not terrain.step > 0:
            raise SceneError(
                f"stairs terrain: step (tread depth, m) must be > 0, got {terrain.step}"
            )
        dist = np.maximum(np.abs(x), np.abs(y)) - terrain.flat_centre / 2
        n = max(1, int((min(lx, ly) / 2 - terrain.flat_centre / 2) // terrain.step))
        steps = np.clip(np.floor(np.maximum(dist, 0) / terrain.step), 0, n)
        z = steps * (h / n)
    elif terrain.kind == "slopes":
        z = h * (1.0 - ring)
    else:
        raise SceneError(
            f"terrain kind {terrain.kind!r}; expected one of flat, rough, stairs, slopes, file"
        )
    if terrain.flat_centre > 0 and terrain.kind in ("rough", "slopes"):
        centre = (np.abs(x) <= terrain.flat_centre / 2) & (np.abs(y) <= terrain.flat_centre / 2)
        level = 0.0 if terrain.kind == "rough" else h
        z = np.where(centre, level, z)
    return z


def _heights_from_file(terrain: TerrainSpec) -> np.ndarray:
    from pathlib import Path

    path = Path(terrain.file)
    if not path.is_file():
        raise SceneError(f"terrain file {str(path)!r} does not exist")
    if path.suffix.lower() == ".npy":
        try:
            z = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise SceneError(f"terrain file {str(path)!r} is not a readable .npy: {e}") from None
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2 or not np.all(np.isfinite(z)):
            raise SceneError(
                f"terrain file {str(path)!r}: expected a finite 2-D array, got {z.shape}"
            )
        return z - z.min()
    try:
        from PIL import Image

        img = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    except (ImportError, OSError) as e:
        raise SceneError(f"terrain image {str(path)!r} could not be read: {e}") from None
    # Image row 0 is the top (far +y); heightfield row 0 is -y.
    return terrain.height * img[::-1] / 255.0


def generate_terrain_scene(
    kind: str,
    seed: int,
    *,
    size: tuple[float, float] = (6.0, 6.0),
    height: float | None = None,
    n_objects: int = 0,
    timestep: float = 0.004,
) -> SceneSpec:
    """A terrain scene (``rough``, ``stairs`` or ``slopes``) from a seed, for legged robots.

    ``n_objects`` spheres (deterministic per seed) are set down on the flat centre, e.g. to
    check contacts. The ``main`` camera looks at the centre.
    """
    if kind not in ("flat", "rough", "stairs", "slopes"):
        raise SceneError(f"terrain kind {kind!r}; expected flat, rough, stairs or slopes")
    default_h = {"flat": 0.0, "rough": 0.06, "stairs": 0.3, "slopes": 0.4}[kind]
    terrain = TerrainSpec(
        kind=kind, size=size, seed=seed, height=default_h if height is None else height
    )
    base = terrain.height if kind == "slopes" else 0.0
    rng = np.random.default_rng(seed)
    objects = []
    for i in range(n_objects):
        r = _r(rng.uniform(0.03, 0.06))
        objects.append(
            ObjectSpec(
                name=f"ball{i}",
                primitive="sphere",
                size=(r,),
                pos=(_r(-0.3 + 0.6 * i / max(1, n_objects - 1)), 0.0, _r(base + r + _DROP)),
                mass=round(float(rng.uniform(0.1, 0.5)), 4),
                rgba=(0.9, 0.4, 0.2, 1.0),
            )
        )
    e = max(size) / 2
    return SceneSpec(
        name=f"{kind}_seed{seed}",
        timestep=timestep,
        terrain=terrain,
        objects=tuple(objects),
        cameras=(CameraSpec(name="main", pos=(e, -e, 0.8 * e + base), lookat=(0, 0, base)),),
        lights=(LightSpec(name="sun", pos=(0, 0, 5), dir=(0.2, 0.3, -1), directional=True),),
    )
