"""Test helper: import a script of jobs/ (a folder of scripts, not a package) as a module."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

JOBS = Path(__file__).resolve().parent.parent / "jobs"


def load_job(name: str) -> ModuleType:
    """``jobs/<name>.py`` as the module ``job_<name>`` (loaded once; later calls return the same module)."""
    key = f"job_{name}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, JOBS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module
