"""``hybridsim scene build|show|generate``: scenes from spec files, pictures, procedural specs.

The commands use the scene builder, ``hybridsim.builder``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _load_any(source: str):
    """A hybridsim Scene from a spec file (.toml/.json) or anything ``load_scene`` takes."""
    import hybridsim as hs
    from hybridsim._src.builder.builder import build
    from hybridsim._src.builder.spec import read_spec

    if Path(source).suffix.lower() in (".toml", ".json"):
        return build(read_spec(source)).finalize()
    return hs.load_scene(source)


def cmd_scene_build(args: argparse.Namespace) -> int:
    from hybridsim._src.builder.builder import build
    from hybridsim._src.builder.spec import read_spec
    from hybridsim._src.progress import Progress

    progress = Progress(not args.quiet)
    spec = read_spec(args.spec)
    with progress.phase(f"building scene {spec.name!r} from {args.spec}"):
        builder = build(spec)
        path = builder.save(args.out)
    scene = builder.finalize()
    print(
        f"wrote {path}: nq={scene.nq} nv={scene.nv} nu={scene.nu} "
        f"robots={len(builder.info.robots)} objects={len(builder.info.objects)}"
    )
    for o in builder.info.objects:
        kind = "static" if o.static else f"{o.mass:.3g} kg"
        print(
            f"  {o.name}: {o.source}, {kind}, collision {o.collision_method} "
            f"({o.collision_parts} part(s)), decimation {o.decimation}"
        )
    return 0


def cmd_scene_show(args: argparse.Namespace) -> int:
    from hybridsim._src.progress import Progress
    from hybridsim._src.render import render_frames, write_png

    progress = Progress(not args.quiet)
    with progress.phase(f"loading {args.source}"):
        scene = _load_any(args.source)
    qpos, _, _ = scene.initial_state()
    with progress.phase("rendering with MuJoCo Warp's batch renderer"):
        frame = render_frames(
            scene, qpos[None], width=args.width, height=args.height, camera=args.camera
        )[0]
    path = write_png(args.out, frame)
    print(f"wrote {path} ({args.width}x{args.height}, scene {scene.name}, first keyframe)")
    return 0


def cmd_scene_generate(args: argparse.Namespace) -> int:
    from hybridsim._src.builder.procedural import generate_table_scene, generate_terrain_scene
    from hybridsim._src.builder.spec import write_spec

    if args.terrain:
        spec = generate_terrain_scene(args.terrain, args.seed, n_objects=args.objects)
    else:
        spec = generate_table_scene(args.seed, args.objects)
    path = write_spec(spec, args.out)
    what = f"terrain {args.terrain}" if args.terrain else "a table"
    print(f"wrote {path}: {what} with {len(spec.objects)} object(s), seed {args.seed}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``scene`` (build, show, generate) to the ``hybridsim`` subparsers."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser(
        "scene",
        formatter_class=fmt,
        help="build scenes from spec files, render them, generate procedural specs",
        description="Scene specs (TOML or JSON) name robots (MJCF paths or MuJoCo Menagerie "
        "names), objects (mesh files or primitives), a table, a terrain, cameras and lights; "
        "paths in a spec are relative to it. The commands use the scene builder, "
        "hybridsim.builder.",
        epilog="examples:\n  hybridsim scene generate --seed 0 --objects 4 --out gen.toml\n"
        "  hybridsim scene build gen.toml --out gen_scene\n"
        "  hybridsim scene show gen_scene/scene.xml --out gen.png\n"
        "  hybridsim rollout --scene gen_scene/scene.xml --ctrl u.npy --out traj.npz",
    )
    sub = p.add_subparsers(dest="scene_command", required=True)
    b = sub.add_parser(
        "build",
        formatter_class=fmt,
        help="write a self-contained MJCF folder (scene.xml + assets/) from a spec",
        description="Builds SPEC and writes OUT/scene.xml with its mesh files in OUT/assets/; "
        "the folder is written atomically (built in a temporary folder, then renamed) and "
        "loads with plain mujoco.MjModel.from_xml_path. Prints how each object collides "
        "(CoACD decomposition, convex hull, or primitive).",
        epilog="example:\n  hybridsim scene build assets/specs/table_objects.toml --out "
        "out/table_objects",
    )
    b.add_argument("spec", help="scene spec, .toml or .json")
    b.add_argument("--out", required=True, help="output folder (replaced if it exists)")
    b.add_argument("--quiet", action="store_true", help="no progress lines")
    b.set_defaults(func=cmd_scene_build)

    s = sub.add_parser(
        "show",
        formatter_class=fmt,
        help="render a spec or an MJCF scene at its first keyframe to a PNG",
        description="Renders the scene at its first keyframe (qpos0 if none) from a camera "
        "(default: 'main', else the first) with MuJoCo Warp's batch renderer (CPU or CUDA).",
        epilog="example:\n  hybridsim scene show assets/specs/table_objects.toml --out "
        "table.png --width 640 --height 480",
    )
    s.add_argument("source", help="spec (.toml/.json), MJCF path or bundled scene name")
    s.add_argument("--out", required=True, help="output PNG")
    s.add_argument("--width", type=int, default=640)
    s.add_argument("--height", type=int, default=480)
    s.add_argument("--camera", default=None, help="camera name (default: main)")
    s.add_argument("--quiet", action="store_true", help="no progress lines")
    s.set_defaults(func=cmd_scene_show)

    g = sub.add_parser(
        "generate",
        formatter_class=fmt,
        help="write a procedural scene spec from a seed",
        description="Samples N primitives (shapes, sizes, colours, masses) resting on a table "
        "without touching each other, or a terrain (rough, stairs, slopes) with N balls on "
        "its flat centre. The same seed writes the same spec.",
        epilog="example:\n  hybridsim scene generate --seed 3 --objects 6 --out gen.toml\n"
        "  hybridsim scene generate --terrain stairs --seed 1 --out stairs.toml",
    )
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--objects", type=int, default=4, help="number of objects N")
    g.add_argument(
        "--terrain", choices=["rough", "stairs", "slopes"], default=None, help="a terrain scene"
    )
    g.add_argument("--out", required=True, help="output spec, .toml or .json")
    g.set_defaults(func=cmd_scene_generate)
