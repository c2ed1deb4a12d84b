"""Test helper: import a script of jobs/, experiments/ or benchmarks/ (folders of scripts, not packages)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
JOBS = ROOT / "jobs"


def load_job(name: str, folder: str = "jobs") -> ModuleType:
    """``<folder>/<name>.py`` as the module ``job_<name>`` (``<folder>_<name>`` outside jobs/; loaded once,
    later calls return the same module)."""
    key = f"job_{name}" if folder == "jobs" else f"{folder}_{name}"
    if key in sys.modules:
        return sys.modules[key]
    path = ROOT / folder / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no script {path}")
    spec = importlib.util.spec_from_file_location(key, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module
