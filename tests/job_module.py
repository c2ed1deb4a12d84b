"""Test helper: import a script of jobs/, experiments/ or benchmarks/ (folders of scripts, not packages)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
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


# Runs each script as __main__ in turn in one fresh interpreter and prints {label: [exit code, stdout, stderr]} as JSON
_RUN_SCRIPTS = """
import contextlib, io, json, runpy, sys
results = {}
for label, script, *args in json.loads(sys.argv[1]):
    sys.argv = [script, *args]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            runpy.run_path(script, run_name="__main__")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    results[label] = [code, out.getvalue(), err.getvalue()]
print(json.dumps(results))
"""


def run_scripts(runs: list[list[str]], env: dict[str, str], timeout: int = 300) -> dict[str, tuple[int, str, str]]:
    """Run scripts that exit quickly (``--dry-run``, a config error) one after another in one fresh interpreter
    from the repository root: one torch import (~4 s here) instead of one per script.

    Args:
        runs: ``[label, script, *args]`` each; the script runs as ``__main__`` with ``sys.argv = [script, *args]``.
        env: the interpreter's environment.
        timeout: seconds for all of them.

    Returns:
        label -> (exit code, stdout, stderr) of each script.
    """
    proc = subprocess.run(
        [sys.executable, "-c", _RUN_SCRIPTS, json.dumps(runs)],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {label: tuple(result) for label, result in json.loads(proc.stdout.splitlines()[-1]).items()}
