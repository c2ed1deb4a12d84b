"""Two Ray nodes on this machine (a head and a second `ray start --address=...`, 2 CPUs each): training
puts one DDP worker on each node, sampling puts a generator actor on each node, and the results
are whole. The stages run as `synthgen train` / `synthgen sample` subprocesses joining the cluster
by address, the same code path as on a real cluster (where run.storage_path and --out must be
shared storage: here both nodes see this machine's disk).

Placement is proven from the cluster's own records: the state API's actors (RayTrainWorker,
SamplerActor) with their node IDs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from raycluster import LocalRayCluster

from synthgen import checkpoint as ckpt
from synthgen.sample.verify import verify_output

pytestmark = [pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent


def synthgen(cluster: LocalRayCluster, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the `synthgen` CLI in a subprocess with the cluster's auth settings (RAY_AUTH_MODE=token)."""
    proc = subprocess.run(
        [sys.executable, "-m", "synthgen.cli", *args],
        cwd=REPO,
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, f"synthgen {args[0]} failed ({proc.returncode}):\n{output}"
    return proc


@pytest.fixture(scope="module")
def cluster():
    """Head + one more node, 2 logical CPUs each: a 1.5-CPU train worker fits once per node."""
    with LocalRayCluster(num_cpus=2) as c:
        c.add_node(num_cpus=2)
        c.wait_for_nodes(2)
        yield c


@pytest.fixture(scope="module")
def node_ids(cluster):
    return {n["node_id"] for n in cluster.list_state("nodes", "state=ALIVE")}


@pytest.fixture(scope="module")
def trained(cluster, tmp_path_factory):
    storage = tmp_path_factory.mktemp("runs")
    proc = synthgen(
        cluster,
        "train",
        "--config",
        "jobs/configs/fashion_mnist_smoke.yaml",
        "--set",
        f"run.ray_address={cluster.gcs_address}",
        "--set",
        f"run.storage_path={storage}",
        "--set",
        "run.name=multinode",
        "--set",
        "data.max_images=500",
        "--set",
        "train.num_workers=2",
        "--set",
        "train.cpus_per_worker=1.5",
        "--set",
        "train.steps=10",
        "--set",
        "train.checkpoint_every=5",
        "--set",
        "train.sample_every=10",
        "--set",
        "train.log_every=5",
        "--set",
        "train.batch_size=8",
    )
    return {
        "run_dir": str(storage / "multinode"),
        "output": proc.stdout + proc.stderr,
        "workers": cluster.list_state("actors", "class_name=RayTrainWorker"),
    }


@pytest.fixture(scope="module")
def sampled(cluster, trained, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("synthetic"))
    proc = synthgen(
        cluster,
        "sample",
        "--checkpoint",
        trained["run_dir"],
        "--out",
        out,
        "--num-samples",
        "600",
        "--images-per-shard",
        "200",
        "--format",
        "both",
        "--num-actors",
        "2",
        "--batch-size",
        "64",
        "--ray-address",
        cluster.gcs_address,
        "--no-progress",
        "--set",
        "actor_scheduling=spread",
    )
    return {
        "out": out,
        "output": proc.stdout + proc.stderr,
        "actors": cluster.list_state("actors", "class_name=SamplerActor"),
    }


def test_training_puts_one_worker_on_each_node(trained, node_ids):
    workers = trained["workers"]
    assert len(workers) == 2, [(w["actor_id"], w["state"]) for w in workers]
    assert {w["node_id"] for w in workers} == node_ids  # two workers, two different nodes
    # (Ray Train's own "node_rank" log cannot tell: it groups workers by IP, and both nodes share this machine's.)
    assert len({w["pid"] for w in workers}) == 2


def test_multinode_checkpoint_reloads(trained):
    assert [step for step, _ in ckpt.list_checkpoints(trained["run_dir"])] == [5, 10]
    generator, info = ckpt.load_generator(trained["run_dir"])
    with torch.no_grad():
        images = generator(torch.randn(10, generator.z_dim), torch.arange(10))  # [10, 1, 28, 28]
    assert info.step == 10 and images.shape == (10, 1, 28, 28) and torch.isfinite(images).all()


def test_sampling_puts_actors_on_both_nodes(sampled, node_ids):
    actors = sampled["actors"]
    assert len(actors) == 2, [(a["actor_id"], a["state"]) for a in actors]
    assert {a["node_id"] for a in actors} == node_ids


def test_multinode_shards_verify(sampled, trained):
    report = verify_output(sampled["out"])
    assert report.ok, report.problems[:10]
    assert (report.total, report.shards, report.images_decoded) == (600, 3, 1200)
    _, info = ckpt.load_generator(trained["run_dir"])
    manifest = json.loads(Path(sampled["out"], "manifest.json").read_text())
    assert manifest["checkpoint"]["digest"] == info.digest  # sampled from the checkpoint the two nodes trained
