"""Real Ray Train runs: 2 DDP workers, checkpoints and their pruning, resume, a killed worker, NaN stop."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

from synthgen import checkpoint as ckpt
from synthgen.config import ExperimentConfig, load_config
from synthgen.errors import ConfigError, TrainingDivergedError
from synthgen.train.trainer import train
from synthgen.train.untrained import write_random_checkpoint

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def first_step_of_last_attempt(run_dir) -> int:
    """The step the latest worker group started at (rank 0 writes timing.json at its first step)."""
    with open(os.path.join(run_dir, "timing.json"), encoding="utf-8") as fh:
        return json.load(fh)["first_step"]


def tiny_config(tmp_path, name: str, *overrides: str) -> ExperimentConfig:
    """A few-second 2-worker run on a 500-image subset of the real Fashion-MNIST."""
    return load_config(
        ExperimentConfig,
        "jobs/configs/fashion_mnist_smoke.yaml",
        [
            f"run.storage_path={tmp_path}",
            f"run.name={name}",
            "data.max_images=500",
            "train.steps=12",
            "train.checkpoint_every=6",
            "train.sample_every=6",
            "train.log_every=3",
            "train.batch_size=8",
            "model.arch.g_channels=8",
            "model.arch.d_channels=8",
            "model.z_dim=16",
            *overrides,
        ],
    )


@pytest.fixture(scope="module")
def killed_run(ray_cluster, tmp_path_factory):
    """One 2-worker run, checkpoints every 3 steps (the newest 2 kept), whose last rank kill -9s itself at step 8
    (after checkpoint 6 is registered); the tests below check what it leaves, one contract each."""
    from synthgen.faults import ENV_VAR

    storage = tmp_path_factory.mktemp("killed")
    cfg = tiny_config(storage, "killed", "train.checkpoint_every=3", "train.num_to_keep=2", "train.max_failures=1")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV_VAR, "train.fail_at_step=8")
        return train(cfg)


def test_two_worker_run_writes_reloadable_checkpoint_and_keeps_the_newest(killed_run):
    # checkpoints at 3, 6, 9 and 12; train.num_to_keep=2 must leave only the newest two
    result = killed_run
    assert result.final_step == 12
    assert os.path.basename(result.checkpoint_path) == "checkpoint-000012"
    payload = torch.load(os.path.join(result.checkpoint_path, "model.pt"), weights_only=True)
    assert payload["step"] == 12 and payload["config"]["run"]["name"] == "killed"
    assert set(payload) >= {"generator", "discriminator", "generator_ema", "opt_g", "opt_d", "synthgen_version"}
    assert os.path.isfile(os.path.join(result.checkpoint_path, "config.yaml"))
    steps = [s for s, _ in ckpt.list_checkpoints(result.run_dir)]
    assert steps == [9, 12]  # 3 and 6 were pruned
    assert sorted(n for n in os.listdir(result.run_dir) if n.startswith("checkpoint-")) == [
        "checkpoint-000009",
        "checkpoint-000012",
    ]
    rows = [json.loads(line) for line in open(os.path.join(result.run_dir, "metrics.jsonl"))]
    assert [r["step"] for r in rows] == [3, 6, 9, 12]
    assert all(r["img_per_s"] > 0 and "d_loss" in r and "g_loss" in r for r in rows)
    assert sorted(os.listdir(os.path.join(result.run_dir, "grids"))) == ["grid-000006.png", "grid-000012.png"]
    with open(os.path.join(result.run_dir, "timing.json"), encoding="utf-8") as fh:
        timing = json.load(fh)  # the driver's start-up phases, then rank 0's (of the last worker group), in order
    phases = ["launch", "preflight", "ray_ready", "fit", "worker_start", "built", "first_step"]
    times = [timing[f"{p}_time"] for p in phases]
    assert times == sorted(times) and times[-1] - times[0] < 600
    generator, info = ckpt.load_generator(result.run_dir)
    images = generator(torch.randn(4, generator.z_dim), torch.arange(4))
    assert images.shape == (4, 1, 28, 28) and info.step == 12 and len(info.class_names) == 10


def test_existing_run_without_resume_is_refused(ray_cluster, tmp_path):
    cfg = tiny_config(tmp_path, "again", "train.steps=6")
    write_random_checkpoint(str(tmp_path / "again"), cfg, step=6)  # a run folder as an earlier run left it
    before = sorted(os.listdir(tmp_path / "again"))
    with pytest.raises(ConfigError, match="--resume"):
        train(cfg)
    assert sorted(os.listdir(tmp_path / "again")) == before


def test_killed_worker_is_replaced_and_the_group_continues_from_the_latest_checkpoint(killed_run):
    result = killed_run
    assert os.path.exists(os.path.join(result.run_dir, ".fault-injected"))  # the worker really died (at step 8)
    assert result.final_step == 12
    payload = torch.load(os.path.join(result.checkpoint_path, "model.pt"), weights_only=True)
    assert payload["step"] == 12
    # The replacement group's first step is 7: it restored checkpoint 6 (the latest before the kill)
    # instead of starting over at 1.
    assert first_step_of_last_attempt(result.run_dir) == 7
    rows = [json.loads(line)["step"] for line in open(os.path.join(result.run_dir, "metrics.jsonl"))]
    assert rows == [3, 6, 9, 12]  # each step logged once: the killed attempt's rows after 6 were dropped


def test_nan_loss_stops_with_clear_error_and_keeps_last_good_checkpoint(ray_cluster, tmp_path, inject_faults):
    inject_faults("train.nan_at_step=8")
    cfg = tiny_config(tmp_path, "nan")
    with pytest.raises(TrainingDivergedError, match="non-finite"):
        train(cfg)
    assert [s for s, _ in ckpt.list_checkpoints(str(tmp_path / "nan"))] == [6]


@pytest.fixture(scope="module")
def spent_budget_run(ray_cluster, tmp_path_factory):
    """A 2-worker run with LeCam whose 1e-6-minute budget is spent by its first step: (storage folder, its
    TrainResult)."""
    storage = tmp_path_factory.mktemp("budget")
    return storage, train(tiny_config(storage, "budget", *BUDGET))


BUDGET = ("train.max_minutes=0.000001", "model.lecam_weight=0.3")


def test_time_budget_stops_at_the_first_log_step_past_it_and_checkpoints_there(spent_budget_run):
    # 1e-6 minutes is spent by the first step, so both workers stop together at the first log step (3)
    storage, result = spent_budget_run
    assert result.final_step == 3
    assert [s for s, _ in ckpt.list_checkpoints(result.run_dir)] == [3]
    payload = torch.load(os.path.join(result.checkpoint_path, "model.pt"), weights_only=True)
    assert payload["train_seconds"] > 0
    assert payload["lecam"]["ema_real"].item() != 0.0  # LeCam's running averages are part of the checkpoint
    assert [json.loads(line)["step"] for line in open(os.path.join(result.run_dir, "metrics.jsonl"))] == [3]
    assert os.listdir(os.path.join(result.run_dir, "grids")) == ["grid-000003.png"]
    # The spent budget marks the run finished (pipeline --resume and uplift skip it); without one it is not.
    from synthgen.train.trainer import finished_checkpoint

    assert finished_checkpoint(tiny_config(storage, "budget", *BUDGET), result.run_dir) == (3, result.checkpoint_path)
    assert finished_checkpoint(tiny_config(storage, "budget", "model.lecam_weight=0.3"), result.run_dir) is None


def test_a_resume_under_another_layout_continues_from_the_checkpoint_with_the_budget_carried(
    spent_budget_run, tmp_path
):
    _, first = spent_budget_run
    assert payload_layout(first.checkpoint_path) == (2, 0.5)  # the smoke config's
    shutil.copytree(first.run_dir, tmp_path / "budget")  # resume a copy: the run above stays as it ended
    spent_at_3 = torch.load(os.path.join(first.checkpoint_path, "model.pt"), weights_only=True)["train_seconds"]
    # resumed with the automatic layout: the shared test cluster is one node, so one worker using its cores
    auto = ("train.num_workers=0", "train.cpus_per_worker=0")
    second = train(tiny_config(tmp_path, "budget", *BUDGET, *auto), resume=True)
    workers, cpus = payload_layout(second.checkpoint_path)
    assert workers == 1 and cpus >= 1
    # The budget is already spent at the checkpoint: the resumed group stops at its first log step (6).
    assert second.final_step == 6 and second.run_dir == str(tmp_path / "budget")
    assert first_step_of_last_attempt(second.run_dir) == 4  # continued from checkpoint 3, not from 0
    assert [s for s, _ in ckpt.list_checkpoints(second.run_dir)] == [3, 6]
    assert [json.loads(line)["step"] for line in open(os.path.join(second.run_dir, "metrics.jsonl"))] == [3, 6]
    spent_at_6 = torch.load(os.path.join(second.checkpoint_path, "model.pt"), weights_only=True)["train_seconds"]
    assert spent_at_6 > spent_at_3


def test_time_budget_verdicts_without_ray():
    from synthgen.train.loop import TimeBudget

    assert not TimeBudget(0.0, spent_s=1e9, world=1).exhausted()  # 0 = no budget, however long it ran
    assert TimeBudget(1.0, spent_s=61.0, world=1).exhausted()  # an earlier attempt already spent 61 s of 60
    assert not TimeBudget(1.0, spent_s=0.0, world=1).exhausted()  # a fresh minute is not spent at once


def test_negative_time_budget_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="train.max_minutes"):
        tiny_config(tmp_path, "neg", "train.max_minutes=-1").validate()


def test_relative_data_root_is_made_absolute_for_workers_of_a_joined_cluster(tmp_path, monkeypatch):
    from synthgen.train.trainer import with_absolute_data_root

    monkeypatch.chdir(tmp_path)
    cfg = load_config(ExperimentConfig, None, ["data.source=imagefolder", "data.root=data/my_images"])
    assert with_absolute_data_root(cfg).data.root == str(tmp_path / "data" / "my_images")
    for root in ("", "/abs/images", "s3://bucket/images"):  # default, absolute and URI roots stay as given
        same = load_config(ExperimentConfig, None, ["data.source=imagefolder", f"data.root={root}"])
        assert with_absolute_data_root(same).data.root == root


def test_the_placement_group_cleaner_runs_only_where_the_state_api_is_served(ray_cluster, tmp_path, monkeypatch):
    from ray.train.v2._internal.callbacks.placement_group_callback import PlacementGroupCleanerCallback

    import synthgen.train.trainer as trainer_module
    from synthgen.ray_init import state_api_served

    assert not state_api_served()  # the shared cluster runs without a dashboard, as synthgen's own local Ray does
    cfg = tiny_config(tmp_path, "callbacks", "train.num_workers=1")

    def cleaners() -> list:
        callbacks = trainer_module.build_trainer(cfg)._create_default_callbacks()
        return [c for c in callbacks if isinstance(c, PlacementGroupCleanerCallback)]

    assert cleaners() == []  # it would log a failed State API query every second and never act
    monkeypatch.setattr(trainer_module, "state_api_served", lambda: True)
    assert len(cleaners()) == 1  # a cluster with a dashboard keeps Ray Train's crash clean-up


def payload_layout(checkpoint_path: str) -> tuple[int, float]:
    """(num_workers, cpus_per_worker) a checkpoint's run was laid out with."""
    t = torch.load(os.path.join(checkpoint_path, "model.pt"), weights_only=True)["config"]["train"]
    return t["num_workers"], t["cpus_per_worker"]
