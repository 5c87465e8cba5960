"""The public surface: enough for our own benchmarks and examples, one import path per symbol,
and every Warp kernel under ``kernels/`` in one convention.

Source checks parse files (``ast``) and never run them; the import smoke test imports each
script as a module (``__name__`` is not ``"__main__"``, so nothing runs).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PUBLIC_MODULES = tuple(
    ["hybridsim"]
    + sorted(
        f"hybridsim.{p.stem}"
        for p in (REPO / "hybridsim").glob("*.py")
        if not p.stem.startswith("_")
    )
)
"""Every public module: the package and each ``hybridsim/<name>.py`` (``hybridsim.kernels``
and ``hybridsim.assets`` are shipped implementation and data, not API)."""
SCRIPTS = sorted(
    str(p.relative_to(REPO))
    for folder in ("benchmarks", "examples")
    for p in (REPO / folder).glob("*.py")
)
KERNEL_FILES = sorted(str(p.relative_to(REPO)) for p in (REPO / "kernels").glob("*.py"))
KERNEL_GROUPS = ("# Model:", "# Data in:", "# Data out:")
"""Parameter group comments of a kernel, in this order (MuJoCo Warp's convention)."""


def _parse(relpath: str) -> ast.Module:
    return ast.parse((REPO / relpath).read_text(), filename=relpath)


def _private_imports(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, module) of every import of ``hybridsim._src`` anywhere in the file."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "hybridsim":  # from hybridsim import _src
                names = [f"hybridsim.{a.name}" for a in node.names]
        else:
            continue
        found += [(node.lineno, n) for n in names if n.split(".")[:2] == ["hybridsim", "_src"]]
    return found


def test_the_checks_see_the_scripts():
    assert "benchmarks/throughput.py" in SCRIPTS and "examples/train_reach.py" in SCRIPTS
    assert "hybridsim.bench" in PUBLIC_MODULES and "hybridsim.envs" in PUBLIC_MODULES
    tree = ast.parse(
        "import hybridsim._src.io\nfrom hybridsim import _src, bench\n"
        "def f():\n    from hybridsim._src.render import render_depth\n"
    )
    assert sorted(_private_imports(tree)) == [
        (1, "hybridsim._src.io"),
        (2, "hybridsim._src"),
        (4, "hybridsim._src.render"),
    ]


@pytest.mark.parametrize("relpath", SCRIPTS)
def test_scripts_import_only_the_public_api(relpath):
    bad = _private_imports(_parse(relpath))
    assert not bad, "\n".join(
        f"{relpath}:{line}: imports {name}; use a public module ({', '.join(PUBLIC_MODULES)})"
        for line, name in bad
    )


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_public_module_all_names_exist(name):
    module = importlib.import_module(name)
    assert isinstance(getattr(module, "__all__", None), list), f"{name} has no __all__ list"
    assert len(set(module.__all__)) == len(module.__all__), f"{name}.__all__ repeats a name"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what {name} does not define: {missing}"
    private = [n for n in module.__all__ if n.startswith("_")]
    assert not private, f"{name}.__all__ exports private names: {private}"


def test_each_public_symbol_has_one_import_path():
    """No name, and no object (functions, classes, containers), in two public ``__all__``."""
    by_name: dict[str, list[str]] = {}
    by_object: dict[int, list[str]] = {}
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        for symbol in module.__all__:
            path = f"{name}.{symbol}"
            by_name.setdefault(symbol, []).append(path)
            obj = getattr(module, symbol)
            if not isinstance(obj, str | int | float | bool | type(None)):  # interned values
                by_object.setdefault(id(obj), []).append(path)
    twice = [paths for paths in (*by_name.values(), *by_object.values()) if len(paths) > 1]
    assert not twice, f"exported by more than one public module: {twice}"


def _top_level_import_roots(tree: ast.Module) -> list[str]:
    roots = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            roots += [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.append(node.module.split(".")[0])
    return [r for r in dict.fromkeys(roots) if r not in ("__future__", "hybridsim")]


@pytest.mark.parametrize("relpath", SCRIPTS)
def test_scripts_import(relpath):
    """Import smoke: every benchmark and example loads (optional dependencies it imports at
    the top are skipped when absent; the ones imported inside functions are not needed)."""
    for root in _top_level_import_roots(_parse(relpath)):
        pytest.importorskip(root)
    name = f"_public_api_smoke_{Path(relpath).stem}"
    spec = importlib.util.spec_from_file_location(name, REPO / relpath)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    assert callable(getattr(module, "main", None)), f"{relpath} has no main()"


# ---------------------------------------------------------------------------- kernels


def _is_warp_decorator(node: ast.expr, names: tuple[str, ...] = ("kernel", "func")) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    return (
        isinstance(target, ast.Attribute)
        and isinstance(target.value, ast.Name)
        and target.value.id in ("wp", "warp")
        and target.attr in names
    )


def _warp_functions(tree: ast.Module, names=("kernel", "func")) -> list[ast.FunctionDef]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and any(_is_warp_decorator(d, names) for d in node.decorator_list)
    ]


def kernel_convention_errors(source: str, filename: str = "<kernel>") -> list[str]:
    """What breaks the kernel convention (``kernels/README.md``) in ``source``, one line each."""
    tree = ast.parse(source, filename=filename)
    lines = source.splitlines()
    launched = {
        node.args[0].attr if isinstance(node.args[0], ast.Attribute) else node.args[0].id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "launch"
        and node.args
        and isinstance(node.args[0], ast.Name | ast.Attribute)
    }
    errors = []
    for fn in _warp_functions(tree, ("kernel",)):
        where = f"{filename}:{fn.lineno} {fn.name}"
        if not ast.get_docstring(fn):
            errors.append(f"{where}: no docstring (launch dim, shapes, units)")
        if not fn.name.startswith("_"):
            errors.append(f"{where}: a kernel is private (_{fn.name}); its launcher is public")
        if fn.name not in launched:
            errors.append(f"{where}: not launched by a function in its own file")
        group, seen = None, []
        for arg in fn.args.args:
            # Comments between the previous parameter (or the def line) and this one.
            start = seen[-1].lineno if seen else fn.lineno
            for text in lines[start : arg.lineno - 1]:
                if text.strip() in KERNEL_GROUPS:
                    new = text.strip()
                    if group and KERNEL_GROUPS.index(new) <= KERNEL_GROUPS.index(group):
                        errors.append(f"{where}: {new!r} after {group!r}")
                    group = new
            seen.append(arg)
            if group is None:
                errors.append(f"{where}: parameter {arg.arg!r} is under no group comment")
            elif group == "# Data in:" and not arg.arg.endswith("_in"):
                errors.append(f"{where}: input {arg.arg!r} lacks the _in suffix")
            elif group == "# Data out:" and not arg.arg.endswith("_out"):
                errors.append(f"{where}: output {arg.arg!r} lacks the _out suffix")
            elif group == "# Model:" and arg.arg.endswith(("_in", "_out")):
                errors.append(f"{where}: model parameter {arg.arg!r} has a data suffix")
        if group != "# Data out:":
            errors.append(f"{where}: no '# Data out:' group (a kernel writes its outputs)")
    return errors


def test_kernel_convention_check_catches_violations():
    good = (
        "@wp.kernel\n"
        "def _k(\n    # Model:\n    size: float,\n    # Data in:\n    x_in: wp.array[float],\n"
        "    # Data out:\n    y_out: wp.array[float],\n):\n"
        '    """Doc."""\n\n'
        "def k():\n    wp.launch(_k, dim=1, inputs=[], outputs=[])\n"
    )
    assert kernel_convention_errors(good) == []
    assert any("_in suffix" in e for e in kernel_convention_errors(good.replace("x_in", "x")))
    assert any("private" in e for e in kernel_convention_errors(good.replace("_k", "k")))
    unlaunched = good.replace("wp.launch(_k,", "wp.launch(other,")
    assert any("not launched" in e for e in kernel_convention_errors(unlaunched))
    ungrouped = good.replace("    # Model:\n", "")
    assert any("no group comment" in e for e in kernel_convention_errors(ungrouped))


@pytest.mark.parametrize("relpath", KERNEL_FILES)
def test_kernels_follow_the_convention(relpath):
    errors = kernel_convention_errors((REPO / relpath).read_text(), relpath)
    assert not errors, "\n".join(errors)


def test_every_warp_kernel_lives_under_kernels():
    outside = []
    for folder in ("hybridsim", "benchmarks", "examples"):
        for path in sorted((REPO / folder).rglob("*.py")):
            relpath = str(path.relative_to(REPO))
            outside += [
                f"{relpath}:{fn.lineno} {fn.name}" for fn in _warp_functions(_parse(relpath))
            ]
    assert not outside, f"Warp kernels/functions outside kernels/: {outside}"
    assert any(_warp_functions(_parse(p)) for p in KERNEL_FILES)
