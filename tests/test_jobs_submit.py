"""Ray job submission onto a real two-node cluster on this machine (a head with the job server and a second
`ray start --address=...`, 2 CPUs each): the pipeline's smoke config submitted with `ray job submit` (through
jobs/submit.sh, what a local user types), the job SUCCEEDED, training put one DDP worker on each node and sampling
one generator actor on each node, its shards verify, and the working_dir upload left the git-ignored folders behind.

The job's driver joins the cluster the way it does on a real one (where run.storage_path and sample.out must be
shared storage: here both nodes see this machine's disk). Placement is proven from the cluster's own records: the
state API's actors (RayTrainWorker, SamplerActor) with their node IDs.

The cluster runs with token auth, as every cluster does once ~/.ray/auth_token exists (Ray 2.60); the submission
runs *without* RAY_AUTH_MODE in its environment, so it only works because the script handles the token the way the
README says.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
import torch
from judge_recipe import judge_sets
from raycluster import LocalRayCluster, env_without_auth

from synthgen import checkpoint as ckpt
from synthgen.sample.verify import verify_output

pytestmark = [pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
RUN_NAME = "pipeline_smoke"  # run.name of jobs/configs/pipeline_smoke.yaml


@pytest.fixture(scope="module")
def cluster():
    """Head (with the dashboard: the job server) + one more node, 2 logical CPUs each: a 1.5-CPU train worker fits
    once per node. Stopped after the module."""
    with LocalRayCluster(num_cpus=2) as c:
        c.add_node(num_cpus=2)
        c.wait_for_nodes(2)
        yield c


@pytest.fixture(scope="module")
def node_ids(cluster):
    return {n["node_id"] for n in cluster.list_state("nodes", "state=ALIVE")}


@pytest.fixture(scope="module")
def submitted(cluster, tmp_path_factory):
    """Submit the pipeline smoke job once, laid out over both nodes, and wait for it; the tests below check its
    outcome."""
    storage = tmp_path_factory.mktemp("storage")
    job_id = f"synthgen-smoke-{uuid.uuid4().hex[:8]}"
    env = {**env_without_auth(), "RAY_API_SERVER_ADDRESS": cluster.dashboard_url, "SUBMISSION_ID": job_id}
    overrides = [
        f"run.storage_path={storage}",
        "train.num_workers=2",
        "train.cpus_per_worker=1.5",  # two do not fit on one 2-CPU node
        "sample.num_actors=2",
        "sample.actor_scheduling=spread",
        # the session's shared judge recipe: the job finds it in SYNTHGEN_CACHE (tests/conftest.py), which the
        # cluster's processes inherit, instead of training and featurising one of its own
        *judge_sets("evaluate.judge"),
    ]
    cmd = ["bash", "jobs/submit.sh", "jobs/pipeline.py", "--config", "jobs/configs/pipeline_smoke.yaml"]
    for override in overrides:
        cmd += ["--set", override]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=800)
    (job,) = cluster.list_state("jobs", f"submission_id={job_id}")
    logs = cluster.ray("job", "logs", job_id, check=False).stdout
    packages = [
        p
        for p in glob.glob(
            os.path.join(
                cluster.nodes[0].temp_dir, "session_latest", "runtime_resources", "working_dir_files", "_ray_pkg_*"
            )
        )
        if os.path.isdir(p)
    ]  # unpacked on the head, where the driver runs; not the .zip
    return {
        "submit": proc,
        "status": job["status"],
        "message": job.get("message"),
        "logs": logs,
        "run_dir": storage / RUN_NAME,
        "packages": packages,
        "workers": cluster.list_state("actors", "class_name=RayTrainWorker"),
        "actors": cluster.list_state("actors", "class_name=SamplerActor"),
    }


def test_cli_needs_token_mode_on_a_token_cluster(cluster):
    denied = cluster.ray("job", "list", env=env_without_auth(), check=False)
    assert denied.returncode != 0
    assert "Missing authentication token" in denied.stdout + denied.stderr
    allowed = cluster.ray("job", "list")  # the same call with RAY_AUTH_MODE=token
    assert allowed.returncode == 0


def test_pipeline_job_succeeds(submitted):
    detail = f"submit stderr:\n{submitted['submit'].stderr[-3000:]}\njob logs:\n{submitted['logs'][-6000:]}"
    assert submitted["submit"].returncode == 0, detail
    assert submitted["status"] == "SUCCEEDED", f"{submitted['message']}\n{detail}"
    assert "[synthgen] pipeline: verify OK: 500 images" in submitted["logs"], detail


def test_training_puts_one_worker_on_each_node(submitted, node_ids):
    workers = submitted["workers"]
    assert len(workers) == 2, [(w["actor_id"], w["state"]) for w in workers]
    assert {w["node_id"] for w in workers} == node_ids  # two workers, two different nodes
    # (Ray Train's own "node_rank" log cannot tell: it groups workers by IP, and both nodes share this machine's.)
    assert len({w["pid"] for w in workers}) == 2


def test_sampling_puts_actors_on_both_nodes(submitted, node_ids):
    actors = submitted["actors"]
    assert len(actors) == 2, [(a["actor_id"], a["state"]) for a in actors]
    assert {a["node_id"] for a in actors} == node_ids


def test_pipeline_job_shards_verify(submitted):
    report = verify_output(str(submitted["run_dir"] / "synthetic"))
    assert report.ok, report.problems[:10]
    assert (report.total, report.shards) == (500, 2)
    assert report.images_decoded == 1000  # format both: every Parquet PNG and every png/ file decoded


def test_pipeline_job_trained_and_evaluated_the_same_checkpoint(submitted):
    run_dir = str(submitted["run_dir"])
    assert [step for step, _ in ckpt.list_checkpoints(run_dir)] == [10, 20]
    generator, info = ckpt.load_generator(run_dir)
    with torch.no_grad():  # the checkpoint the two nodes trained reloads here
        images = generator(torch.randn(10, generator.z_dim), torch.arange(10))  # [10, 1, 28, 28]
    assert info.step == 20 and images.shape == (10, 1, 28, 28) and torch.isfinite(images).all()
    assert info.config.train.num_workers == 2
    rows = [json.loads(line) for line in open(os.path.join(run_dir, "eval", "metrics.jsonl"), encoding="utf-8")]
    assert [r["metric"] for r in rows] == ["fd", "label_acc"]
    assert {r["source"]["digest"] for r in rows} == {info.digest}
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
