"""The sampling CLI as a separate driver process: killed mid-run, and on a 2-CPU Ray with defaults."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time

import pytest

from synthgen.config import ExperimentConfig, from_dict
from synthgen.sample.config import SampleConfig
from synthgen.sample.run import run_sample
from synthgen.sample.verify import verify_output
from synthgen.train.untrained import write_random_checkpoint

pytestmark = [pytest.mark.slow, pytest.mark.ray]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    cfg = from_dict(ExperimentConfig, {"model": {"z_dim": 16, "arch": {"g_channels": 16, "d_channels": 16}}})
    return write_random_checkpoint(str(tmp_path_factory.mktemp("run")), cfg)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = os.getcwd() + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_driver_killed_mid_run_is_completed_by_a_rerun(ray_cluster, checkpoint, tmp_path):
    out = str(tmp_path / "out")
    n, per_shard = 2048, 64  # 32 shards
    address = ray_cluster.get_runtime_context().gcs_address
    cmd = [
        sys.executable,
        "-m",
        "synthgen.cli",
        "sample",
        "--checkpoint",
        checkpoint,
        "--out",
        out,
        "--num-samples",
        str(n),
        "--images-per-shard",
        str(per_shard),
        "--batch-size",
        "64",
        "--num-actors",
        "1",
        "--no-progress",
        "--ray-address",
        address,
    ]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while len(glob.glob(os.path.join(out, "parquet", "shard-*.parquet"))) < 2:
        assert proc.poll() is None, "the driver exited before it could be killed"
        assert time.monotonic() < deadline, "no shard appeared within 10 minutes"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not os.path.exists(os.path.join(out, "manifest.json")), "the run finished before the kill"
    kept = {p: os.stat(p).st_mtime_ns for p in glob.glob(os.path.join(out, "parquet", "shard-*.parquet"))}

    cfg = SampleConfig(
        checkpoint=checkpoint,
        out=out,
        num_samples=n,
        images_per_shard=per_shard,
        batch_size=64,
        num_actors=1,
        progress=False,
    )
    result = run_sample(cfg)
    assert result.shards_reused >= len(kept) and result.shards_written == 32 - result.shards_reused
    assert all(os.stat(p).st_mtime_ns == t for p, t in kept.items())  # finished shards were not rewritten
    report = verify_output(out)
    assert report.ok and report.total == n


def test_cli_defaults_run_on_a_two_cpu_local_ray(checkpoint, tmp_path):
    """Default resource requests on a fresh local Ray sized like this machine (2 CPUs) must not hang."""
    out = str(tmp_path / "out")
    script = (
        "import ray, sys; ray.init(address='local', num_cpus=2, include_dashboard=False, configure_logging=False); "
        "from synthgen.cli import main; "
        f"sys.exit(main(['sample', '--checkpoint', {checkpoint!r}, '--out', {out!r}, '--num-samples', '300', "
        "'--images-per-shard', '100', '--no-progress']))"
    )
    done = subprocess.run([sys.executable, "-c", script], env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "sampled 300 images in 3 shards" in done.stdout
    assert verify_output(out).ok
