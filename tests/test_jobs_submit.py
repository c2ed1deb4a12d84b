"""Ray job submission end to end: a real `ray start --head` on this machine, the pipeline's smoke
config submitted with `ray job submit` (through jobs/submit.sh, what a local user types), the job
SUCCEEDED, its shards verify, and the working_dir upload left the git-ignored folders behind.

The cluster runs with token auth, as every cluster does once ~/.ray/auth_token exists (Ray 2.60);
the submission runs *without* RAY_AUTH_MODE in its environment, so it only works because the
script handles the token the way the README says.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from raycluster import LocalRayCluster, env_without_auth

from synthgen import checkpoint as ckpt
from synthgen.sample.verify import verify_output

pytestmark = [pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
RUN_NAME = "pipeline_smoke"  # run.name of jobs/configs/pipeline_smoke.yaml


@pytest.fixture(scope="module")
def head():
    """A real single-node Ray cluster with the dashboard (the job server), stopped after the module."""
    with LocalRayCluster(num_cpus=4) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def submitted(head, tmp_path_factory):
    """Submit the pipeline smoke job once and wait for it; the tests below check its outcome."""
    storage = tmp_path_factory.mktemp("storage")
    job_id = f"synthgen-smoke-{uuid.uuid4().hex[:8]}"
    env = {**env_without_auth(), "RAY_API_SERVER_ADDRESS": head.dashboard_url, "SUBMISSION_ID": job_id}
    cmd = [
        "bash",
        "jobs/submit.sh",
        "jobs/pipeline.py",
        "--config",
        "jobs/configs/pipeline_smoke.yaml",
        "--set",
        f"run.storage_path={storage}",
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=800)
    (job,) = head.list_state("jobs", f"submission_id={job_id}")
    logs = head.ray("job", "logs", job_id, check=False).stdout
    packages = [
        p
        for p in glob.glob(
            os.path.join(
                head.nodes[0].temp_dir, "session_latest", "runtime_resources", "working_dir_files", "_ray_pkg_*"
            )
        )
        if os.path.isdir(p)
    ]  # unpacked, not the .zip
    return {
        "submit": proc,
        "status": job["status"],
        "message": job.get("message"),
        "logs": logs,
        "run_dir": storage / RUN_NAME,
        "packages": packages,
    }


def test_cli_needs_token_mode_on_a_token_cluster(head):
    denied = head.ray("job", "list", env=env_without_auth(), check=False)
    assert denied.returncode != 0
    assert "Missing authentication token" in denied.stdout + denied.stderr
    allowed = head.ray("job", "list")  # the same call with RAY_AUTH_MODE=token
    assert allowed.returncode == 0


def test_pipeline_job_succeeds(submitted):
    detail = f"submit stderr:\n{submitted['submit'].stderr[-3000:]}\njob logs:\n{submitted['logs'][-6000:]}"
    assert submitted["submit"].returncode == 0, detail
    assert submitted["status"] == "SUCCEEDED", f"{submitted['message']}\n{detail}"
    assert "[synthgen] pipeline: verify OK: 500 images" in submitted["logs"], detail


def test_pipeline_job_shards_verify(submitted):
    report = verify_output(str(submitted["run_dir"] / "synthetic"))
    assert report.ok, report.problems[:10]
    assert (report.total, report.shards) == (500, 2)
    assert report.images_decoded == 1000  # format both: every Parquet PNG and every png/ file decoded


def test_pipeline_job_trained_and_evaluated_the_same_checkpoint(submitted):
    run_dir = str(submitted["run_dir"])
    assert [step for step, _ in ckpt.list_checkpoints(run_dir)] == [10, 20]
    _, info = ckpt.load_generator(run_dir)
    rows = [json.loads(line) for line in open(os.path.join(run_dir, "eval", "metrics.jsonl"), encoding="utf-8")]
    assert [r["metric"] for r in rows] == ["fd", "label_acc"]
    assert {r["source"]["digest"] for r in rows} == {info.digest} and info.step == 20
    manifest = json.load(open(os.path.join(run_dir, "synthetic", "manifest.json"), encoding="utf-8"))
    assert manifest["checkpoint"]["digest"] == info.digest


def test_working_dir_upload_leaves_ignored_folders_out(submitted):
    (package,) = submitted["packages"]  # the one working_dir Ray unpacked for the job
    assert os.path.isfile(os.path.join(package, "jobs", "pipeline.py"))
    ignored = [n for n in ("runs", "out", ".git", ".pytest_cache", "synthgen.egg-info") if (REPO / n).exists()]
    uploaded = [n for n in ignored if os.path.exists(os.path.join(package, n))]
    assert not uploaded, f"{uploaded} were uploaded with the working_dir: add them to .gitignore or .rayignore"
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(package) for f in files)
    assert size < 20 * 2**20, f"working_dir upload is {size / 2**20:.1f} MiB; Ray's limit is 500 MiB"
