"""Data flows one way: no import cycle anywhere, and no stage imports a later one.

The import graph is read from the source (``ast``), so lazy imports inside functions count too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "synthgen"

# home -> the packages it must never import (a home is a subpackage or a top-level module)
FORBIDDEN = {
    "errors": ("synthgen.",),
    "storage": (
        "synthgen.config",
        "synthgen.data",
        "synthgen.models",
        "synthgen.train",
        "synthgen.sample",
        "synthgen.evaluate",
        "synthgen.judge",
        "synthgen.shards",
        "synthgen.checkpoint",
        "ray",
        "torch",
    ),
    "shards": (
        "synthgen.data",
        "synthgen.models",
        "synthgen.train",
        "synthgen.sample",
        "synthgen.evaluate",
        "synthgen.judge",
        "synthgen.checkpoint",
        "synthgen.cli",
        "synthgen.pipeline",
        "ray",
        "torch",
    ),
    "models": (
        "synthgen.data",
        "synthgen.judge",
        "synthgen.train",
        "synthgen.sample",
        "synthgen.evaluate",
        "synthgen.invert",
        "synthgen.shards",
        "synthgen.storage",
        "synthgen.checkpoint",
        "ray",
    ),
    "checkpoint": ("synthgen.data", "synthgen.judge", "synthgen.train", "synthgen.sample", "synthgen.evaluate", "ray"),
    "data": (
        "synthgen.invert",
        "synthgen.judge",
        "synthgen.train",
        "synthgen.sample",
        "synthgen.evaluate",
        "synthgen.cli",
        "synthgen.pipeline",
    ),
    "judge": ("synthgen.train", "synthgen.sample", "synthgen.evaluate", "synthgen.cli", "synthgen.pipeline"),
    # the judge is the data set's cached classifier, below every stage that uses it: training reads it for losses
    # that need a frozen classifier (cyclegan's semantic consistency, srgan's feature loss); it never imports train
    "train": ("synthgen.sample", "synthgen.evaluate", "synthgen.cli", "synthgen.pipeline"),
    "sample": ("synthgen.train", "synthgen.evaluate", "synthgen.cli", "synthgen.pipeline"),
    "invert": (
        "synthgen.train",
        "synthgen.sample",
        "synthgen.evaluate",
        "synthgen.judge",
        "synthgen.cli",
        "synthgen.pipeline",
    ),
    "draws": ("synthgen.",),
    "translation": (
        "synthgen.train",
        "synthgen.sample",
        "synthgen.evaluate",
        "synthgen.judge",
        "synthgen.cli",
        "synthgen.pipeline",
        "ray",
    ),
    "classify": ("synthgen.train", "synthgen.sample", "synthgen.evaluate", "synthgen.cli", "synthgen.pipeline"),
    "evaluate": ("synthgen.cli", "synthgen.pipeline"),
}


def module_name(path: Path) -> str:
    """``synthgen/data/idx.py`` -> ``synthgen.data.idx``; ``synthgen/data/__init__.py`` -> ``synthgen.data``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    """Every module of the synthgen package, by dotted name."""
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path) -> set[str]:
    """Every module named by an ``import`` / ``from ... import`` anywhere in the file (``from X import y``
    names ``X.y`` when that is a module of ours, else ``X``)."""
    known = all_modules() if path.is_relative_to(PACKAGE) else {}
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                names.add(sub if sub in known else node.module)
    return names


def import_graph() -> dict[str, set[str]]:
    """synthgen module -> the synthgen modules it imports."""
    modules = all_modules()
    return {name: {m for m in imported_modules(path) if m in modules and m != name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as a path ``[a, b, ..., a]``, or [] when the graph is acyclic (iterative DFS)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in sorted(graph):
        if state.get(start):
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return path[path.index(child) :] + [child]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(graph.get(child, ())))))
    return []


def test_the_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 40  # every module was found, top-level ones included
    assert {"synthgen.cli", "synthgen.pipeline", "synthgen.config", "synthgen.storage"} <= set(graph)
    assert find_cycle(graph) == []


def test_the_jobs_import_no_cycle_either() -> None:
    folders = ("jobs", "experiments", "benchmarks")  # folders of entry-point scripts
    paths = [p for folder in folders for p in sorted((ROOT / folder).glob("*.py"))]
    assert {p.parent.name for p in paths} == set(folders)  # every folder still has its scripts
    for path in paths:
        for name in imported_modules(path):
            assert name.split(".")[0] not in folders, (
                f"{path.parent.name}/{path.name} imports {name}: scripts are entry points, not libraries"
            )
    # scripts import each other by their bare names (bench_cost -> bench_sample, uplift_table -> train_classifier)
    scripts = {p.stem for p in paths}
    assert len(scripts) == len(paths), "two scripts share a name: a bare import would be ambiguous"
    graph = {p.stem: {m for m in imported_modules(p) if m in scripts and m != p.stem} for p in paths}
    assert find_cycle(graph) == []


@pytest.mark.parametrize("home", sorted(FORBIDDEN))
def test_a_home_does_not_import_a_later_stage(home: str) -> None:
    package = PACKAGE / home
    files = sorted(package.rglob("*.py")) if package.is_dir() else [PACKAGE / f"{home}.py"]
    assert files and all(f.exists() for f in files), f"no modules found for {home}"
    offenders = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in files
        for name in sorted(imported_modules(path))
        if any(
            name == bad.rstrip(".") or name.startswith(bad if bad.endswith(".") else bad + ".")
            for bad in FORBIDDEN[home]
        )
    ]
    assert offenders == []


def test_the_checker_sees_lazy_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from synthgen.evaluate.run import evaluate\n    import ray\n")
    assert imported_modules(module) == {"synthgen.evaluate.run", "ray"}


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_the_fleets_encode_and_write_tasks_import_no_torch() -> None:
    # a fresh Ray worker that only encodes and writes must not spend ~1.5 s importing torch and the networks
    code = "import sys, synthgen.sample.tasks; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False", done.stderr
