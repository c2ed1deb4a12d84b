"""Data flows one way: no stage imports a later one (read from the source, so lazy imports count too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "synthgen"

# stage -> the synthgen packages it must never import
FORBIDDEN = {
    "models": ("synthgen.data", "synthgen.judge", "synthgen.train", "synthgen.sample", "synthgen.evaluate", "ray"),
    "data": ("synthgen.judge", "synthgen.train", "synthgen.sample", "synthgen.evaluate"),
    "judge": ("synthgen.sample", "synthgen.evaluate"),
    "train": ("synthgen.judge", "synthgen.sample", "synthgen.evaluate"),
    "sample": ("synthgen.evaluate",),
}


def imported_modules(path: Path) -> set[str]:
    """Every module named by an ``import`` / ``from ... import`` anywhere in the file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("stage", sorted(FORBIDDEN))
def test_stage_does_not_import_a_later_stage(stage: str) -> None:
    files = sorted((PACKAGE / stage).glob("*.py"))
    assert files, f"no modules found for stage {stage}"
    offenders = [
        f"{path.name} imports {name}"
        for path in files
        for name in sorted(imported_modules(path))
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[stage])
    ]
    assert offenders == []


def test_the_checker_sees_lazy_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from synthgen.evaluate.run import evaluate\n    import ray\n")
    assert imported_modules(module) == {"synthgen.evaluate.run", "ray"}
