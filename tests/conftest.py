"""Shared fixtures: one real local Ray cluster for the whole session, fake data helpers."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest

FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"

# Ray Train's controller polls its workers every 2 s, so each of the suite's few dozen tiny runs waited on average
# a second after its last step (and killed-worker tests as long to notice). Set before any Ray starts, so the
# shared cluster and every subprocess's own Ray inherit it; the runs' contracts do not depend on it.
os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.5")
# Each Ray Train run starts a PreemptionWatcher actor (spot-instance observability): one more process importing
# ray.train, about a tenth of a tiny run's CPU on this machine. Nothing here is preempted; users' runs keep it.
os.environ.setdefault("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER", "0")
# synthgen's cache (the judges, keyed on their recipe and data) lives in a folder of this session, not in the user's
# ~/.cache: a judge an earlier run left there would let a test pass without the training it needs on a clean machine
# (and make the suite's time depend on what the machine ran before). Subprocesses and Ray workers inherit it.
_SESSION_CACHE = tempfile.mkdtemp(prefix="synthgen-test-cache-")
os.environ["SYNTHGEN_CACHE"] = _SESSION_CACHE
atexit.register(shutil.rmtree, _SESSION_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_cluster():
    """A real local Ray instance shared by every test that needs one.

    Four logical CPUs on this 2-core machine so that 1-CPU train workers / actors and Ray Data's
    own tasks can be scheduled together (two 1-CPU actors on 2 CPUs starve Ray Data forever).
    """
    import ray

    if not ray.is_initialized():
        ray.init(
            address="local",  # never join a `ray start` cluster another test launched
            num_cpus=4,
            include_dashboard=False,
            log_to_driver=True,
            configure_logging=False,
            runtime_env={"env_vars": {"PYTHONPATH": os.getcwd()}},
        )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def cluster_address(ray_cluster) -> str:
    """The GCS address of the shared cluster, for a subprocess (a job script, a CLI command) to join as a submitted
    job joins its cluster, instead of starting a local Ray of its own (~8 s each here)."""
    return ray_cluster.get_runtime_context().gcs_address


@pytest.fixture(autouse=True)
def torch_threads_are_left_as_found():
    """Fail a test that leaves the process's torch thread count changed: every later in-process test would run
    on it (one test's ``torch.set_num_threads(1)`` once put the rest of the suite on one of the two cores)."""
    import torch

    before = torch.get_num_threads()
    yield
    after = torch.get_num_threads()
    if after != before:
        torch.set_num_threads(before)
        pytest.fail(f"the test left torch.get_num_threads() at {after} (was {before}): restore it when done")


@pytest.fixture(scope="session")
def fashion_mnist_root() -> str:
    """The real Fashion-MNIST IDX folder installed by Debian's dataset-fashion-mnist."""
    if not os.path.isdir(FASHION_MNIST_ROOT):
        pytest.fail(f"{FASHION_MNIST_ROOT} is missing: install Debian's dataset-fashion-mnist (the README set-up does)")
    return FASHION_MNIST_ROOT


@pytest.fixture
def inject_faults(monkeypatch):
    """``inject_faults("sample.fail_after_batches=1")`` sets this test's ``SYNTHGEN_FAULTS`` (``""`` clears it)."""
    from synthgen.faults import ENV_VAR

    def set_faults(spec: str) -> None:
        monkeypatch.setenv(ENV_VAR, spec)

    return set_faults
