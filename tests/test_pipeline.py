"""The pipeline (train -> evaluate -> sample) and the consumer's classifier job (jobs/train_classifier.py).

Config tests run without Ray; the end-to-end pipeline runs once per module on the shared
`ray_cluster` (real Fashion-MNIST subset, real Ray Train workers, real shards) and is checked
from several sides, then resumed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from job_module import load_job
from judge_recipe import judge_sets
from shard_data import FASHION_CLASSES, write_shards

from synthgen.cli import main
from synthgen.config import DataConfig, load_config
from synthgen.errors import ConfigError, ShardError
from synthgen.pipeline import PipelineConfig, run_pipeline

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "jobs" / "configs"
SMOKE = CONFIGS / "pipeline_smoke.yaml"


tc = load_job("train_classifier")


# --- PipelineConfig --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["pipeline.yaml", "pipeline_smoke.yaml"])
def test_pipeline_configs_load_and_validate(name):
    cfg = load_config(PipelineConfig, CONFIGS / name)
    assert cfg.stages == ("train", "evaluate", "sample")
    assert cfg.sample.checkpoint == "" and cfg.evaluate.checkpoint == ""  # filled in from the training result


def test_deploy_style_overrides_resolve_and_outputs_follow_the_run_folder():
    cfg = load_config(
        PipelineConfig,
        CONFIGS / "pipeline.yaml",
        [
            "train.num_workers=4",
            "train.use_gpu=true",
            "run.storage_path=s3://bucket/synthgen",
            "run.name=fm",
            "sample.num_actors=4",
            "sample.use_gpu=true",
        ],
    )
    assert (cfg.train.num_workers, cfg.train.use_gpu, cfg.sample.num_actors, cfg.sample.use_gpu) == (4, True, 4, True)
    assert cfg.run_dir() == "s3://bucket/synthgen/fm"
    ckpt = "s3://bucket/synthgen/fm/checkpoint-004000"
    assert cfg.sample_config(ckpt).out == "s3://bucket/synthgen/fm/synthetic"
    assert cfg.sample_config(ckpt).checkpoint == ckpt and cfg.eval_config(ckpt).checkpoint == ckpt
    assert not cfg.eval_config(ckpt).out.startswith("s3://")  # evaluated locally, then copied to the run folder


def test_explicit_outputs_and_ray_address_are_kept(tmp_path):
    cfg = load_config(
        PipelineConfig,
        SMOKE,
        [f"run.storage_path={tmp_path}", "run.ray_address=10.0.0.1:6379", f"sample.out={tmp_path}/elsewhere"],
    )
    assert cfg.run_dir() == f"{tmp_path}/pipeline_smoke"
    assert cfg.sample_config("c").out == f"{tmp_path}/elsewhere"
    assert cfg.sample_config("c").ray_address == "10.0.0.1:6379"  # one cluster for every stage
    assert cfg.eval_config("c").out == f"{tmp_path}/pipeline_smoke/eval"


def test_unknown_key_is_rejected_with_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['num_actor'\].*num_actors"):
        load_config(PipelineConfig, SMOKE, ["sample.num_actor=2"])


@pytest.mark.parametrize(
    "override", ["sample.checkpoint=runs/x", "evaluate.checkpoint=runs/x", "evaluate.shards=out/x"]
)
def test_stage_checkpoints_cannot_be_set(override):
    with pytest.raises(ConfigError, match="comes from the training stage"):
        load_config(PipelineConfig, SMOKE, [override])


@pytest.mark.parametrize(
    "stages, problem", [("[sample, train]", "out of order"), ("[train, deploy]", "subset"), ("[]", "subset")]
)
def test_bad_stage_lists_are_rejected(stages, problem):
    with pytest.raises(ConfigError, match=problem):
        load_config(PipelineConfig, SMOKE, [f"stages={stages}"])


def test_stage_values_are_validated_up_front():
    with pytest.raises(ConfigError, match="batch_size"):
        load_config(PipelineConfig, SMOKE, ["sample.batch_size=100"])  # not a multiple of chunk_size 64
    with pytest.raises(ConfigError, match="metrics"):
        load_config(PipelineConfig, SMOKE, ["evaluate.metrics=[fd, sharpness]"])


def test_dry_run_prints_the_paths_and_writes_nothing(tmp_path, capsys):
    code = main(
        [
            "pipeline",
            "--config",
            str(CONFIGS / "pipeline.yaml"),
            "--smoke-test",
            "--dry-run",
            "--set",
            f"run.storage_path={tmp_path}",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert f"# sample.out:       {tmp_path}/pipeline_smoke/synthetic" in out  # the smoke sibling was used
    assert "steps: 20" in out and os.listdir(tmp_path) == []


def test_config_error_exits_2_and_writes_nothing(tmp_path, capsys):
    code = main(["pipeline", "--config", str(SMOKE), "--set", f"run.storage_path={tmp_path}", "--set", "train.steps=0"])
    assert code == 2 and "train.steps=0 is invalid" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


# --- the pipeline end to end (real Ray) --------------------------------------------------------------

TINY = [  # one train worker: DDP is test_train's and test_jobs_submit's contract, the stages' hand-offs are this file's
    "train.num_workers=1",
    "data.max_images=400",
    "train.steps=4",
    "train.checkpoint_every=2",
    "train.sample_every=4",
    "train.log_every=2",
    "train.batch_size=8",
    "model.arch.g_channels=8",
    "model.arch.d_channels=8",
    "evaluate.metrics=[label_acc]",
    *judge_sets("evaluate.judge"),  # the session's one judge recipe (tests/judge_recipe.py): trained once
    "evaluate.num_samples=50",
    "evaluate.report.enabled=false",
    "sample.num_samples=130",
    "sample.images_per_shard=64",
    "sample.batch_size=64",
    "sample.format=parquet",
]


@pytest.fixture(scope="module")
def finished(ray_cluster, tmp_path_factory):
    """One pipeline run into a file:// run folder: the same pyarrow filesystem code as s3:// and gs:// (multi-node
    storage); a plain local folder is what test_jobs_submit's pipeline job and the README quickstart write."""
    import uuid

    from synthgen.train.trainer import local_log_dir

    storage = tmp_path_factory.mktemp("pipeline")
    name = f"tiny-{uuid.uuid4().hex[:8]}"  # rank 0's local log cache of URI runs is per run name
    cfg = load_config(PipelineConfig, SMOKE, [f"run.storage_path=file://{storage}", f"run.name={name}", *TINY])
    try:
        yield cfg, run_pipeline(cfg)
    finally:
        shutil.rmtree(local_log_dir(cfg.experiment()), ignore_errors=True)


def local(uri: str) -> str:
    """The local path of a file:// URI (the tests read the outputs with plain file functions)."""
    assert uri.startswith("file://"), uri
    return uri[len("file://") :]


@pytest.mark.slow
def test_pipeline_evaluates_and_samples_the_checkpoint_it_trained(finished):
    from synthgen import checkpoint as ckpt
    from synthgen.sample.verify import verify_output

    cfg, result = finished
    run_dir = f"{cfg.run.storage_path}/{cfg.run.name}"
    assert result.final_step == 4 and result.checkpoint_path == f"{run_dir}/checkpoint-000004"  # scheme kept
    _, info = ckpt.load_generator(result.checkpoint_path)
    assert [r["metric"] for r in result.eval_rows] == ["label_acc"]
    assert result.eval_rows[0]["source"]["digest"] == info.digest
    copied = Path(local(run_dir), "eval", "metrics.jsonl")  # every output in the run folder
    assert [json.loads(line)["metric"] for line in copied.read_text().splitlines()] == ["label_acc"]
    assert Path(local(run_dir), "grids", "grid-000004.png").is_file()  # rank 0's grids, mirrored at the checkpoint
    assert result.sample_out == f"{run_dir}/synthetic"
    manifest = json.loads(Path(local(result.sample_out), "manifest.json").read_text())
    assert manifest["checkpoint"]["digest"] == info.digest and manifest["total"] == result.num_samples == 130
    report = verify_output(result.sample_out)
    assert report.ok and report.shards == 3


@pytest.mark.slow
def test_training_writes_loss_curves_and_grids_to_tensorboard(finished):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg, result = finished
    run_dir = local(result.run_dir)  # rank 0's local log, mirrored into the URI run folder at every checkpoint
    acc = EventAccumulator(os.path.join(run_dir, "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    rows = [json.loads(line) for line in Path(run_dir, "metrics.jsonl").read_text().splitlines()]
    for tag in ("d_loss", "g_loss", "img_per_s"):  # TINY logs every 2 of 4 steps, rank 0 only
        assert [e.step for e in acc.Scalars(tag)] == [2, 4] == [r["step"] for r in rows]
    assert [e.value for e in acc.Scalars("g_loss")] == pytest.approx([r["g_loss"] for r in rows], abs=1e-4)
    (grid,) = acc.Images("samples")  # sample_every=4
    assert grid.step == 4 and grid.width > 0 and grid.encoded_image_string.startswith(b"\x89PNG")


@pytest.mark.slow
def test_resume_of_a_finished_pipeline_redoes_nothing(finished):
    from synthgen import checkpoint as ckpt

    cfg, first = finished
    metrics = Path(local(first.run_dir), "eval", "metrics.jsonl")  # the copy in the URI run folder
    shards = sorted(Path(local(first.sample_out), "parquet").iterdir())
    before = (ckpt.list_checkpoints(first.run_dir), metrics.read_text(), [p.stat().st_mtime_ns for p in shards])
    assert [s for s, _ in before[0]] == [2, 4]
    again = run_pipeline(cfg, resume=True)  # finished: no worker group starts
    assert again.checkpoint_path == first.checkpoint_path and again.eval_rows == ()
    after = (ckpt.list_checkpoints(first.run_dir), metrics.read_text(), [p.stat().st_mtime_ns for p in shards])
    assert after == before


@pytest.mark.slow
def test_rerun_without_resume_is_refused_and_changes_nothing(finished):
    cfg, first = finished
    listing = sorted(os.listdir(local(first.run_dir)))
    with pytest.raises(ConfigError, match="--resume"):  # a URI run folder is listed like a local one
        run_pipeline(cfg)
    assert sorted(os.listdir(local(first.run_dir))) == listing


# --- jobs/train_classifier.py ------------------------------------------------------------------------


def test_classifier_job_configs_load():
    for name in ("train_classifier.yaml", "train_classifier_smoke.yaml"):
        cfg = load_config(tc.ClassifierJobConfig, CONFIGS / name)
        assert cfg.train_on == "real+synthetic" and cfg.shards


@pytest.mark.parametrize(
    "override, key",
    [("train_on=fake", "train_on"), ("synthetic_fraction=1.0", "synthetic_fraction"), ("shards=", "shards")],
)
def test_classifier_job_rejects_bad_values(override, key):
    with pytest.raises(ConfigError, match=key):
        load_config(tc.ClassifierJobConfig, CONFIGS / "train_classifier_smoke.yaml", [override])


def test_every_batch_holds_the_chosen_share_of_synthetic_images():
    from synthgen.classify import arm_batch_size, arm_batches
    from synthgen.data import ImageData, ImageDataset

    names = tuple(FASHION_CLASSES)
    real = ImageData("real", np.zeros((100, 1, 4, 4), np.uint8), np.zeros(100, np.int64), names)  # black, label 0
    syn = ImageData("syn", np.full((30, 1, 4, 4), 255, np.uint8), np.ones(30, np.int64), names)  # white, label 1
    cfg = tc.ClassifierJobConfig(shards="unused", synthetic_fraction=0.25, batch_size=64, steps=5)
    for train_on, share in (("real+synthetic", 16), ("real", 0), ("synthetic", None)):
        job = dataclasses.replace(cfg, train_on=train_on)
        parts = tc.training_parts(job, real, ImageDataset(syn, output="tensor"), names)
        settings = tc.settings_of(job, *parts)
        loader, steps, batch = arm_batches(*parts, settings), settings.steps, arm_batch_size(*parts, settings)
        got = list(loader)
        assert steps == len(got) == 5 and batch == (30 if train_on == "synthetic" else 64)  # synthetic: 30 images
        for x, y in got:
            want = batch if share is None else share
            assert x.shape == (batch, 1, 4, 4) and int((x[:, 0, 0, 0] == 255).sum()) == want == int(y.sum())


def test_synthetic_labels_are_mapped_to_the_real_class_order(tmp_path):
    fake = write_shards(tmp_path / "s", n=30, class_names=FASHION_CLASSES[::-1])
    cfg = tc.ClassifierJobConfig(shards=str(tmp_path / "s"), remap_classes=True)
    synth = tc.load_synthetic(cfg, FASHION_CLASSES, (1, 28, 28))
    images, labels = zip(*(synth[i] for i in range(len(synth))))
    assert synth.classes == list(FASHION_CLASSES) and len(synth) == 30
    assert np.array_equal(np.array(labels), 9 - fake.labels)  # reversed class list -> real index 9 - k
    assert np.array_equal(np.stack([x.numpy() for x in images]), fake.images)
    assert len(tc.load_synthetic(dataclasses.replace(cfg, max_synthetic=7), FASHION_CLASSES, (1, 28, 28))) == 7
    with pytest.raises(ShardError, match="remap_classes"):
        tc.load_synthetic(dataclasses.replace(cfg, remap_classes=False), FASHION_CLASSES, (1, 28, 28))


def test_synthetic_data_of_other_classes_or_shape_is_refused(tmp_path):
    write_shards(tmp_path / "digits", n=10, class_names=tuple(str(i) for i in range(10)))
    with pytest.raises(ShardError, match="do not match the real classes"):
        tc.load_synthetic(tc.ClassifierJobConfig(shards=str(tmp_path / "digits")), FASHION_CLASSES, (1, 28, 28))
    write_shards(tmp_path / "rgb", n=10, image_shape=(3, 32, 32))
    with pytest.raises(ShardError, match="data.resolution"):
        tc.load_synthetic(tc.ClassifierJobConfig(shards=str(tmp_path / "rgb")), FASHION_CLASSES, (1, 28, 28))


def test_classifier_learns_the_real_test_split_from_images_with_class_signal(fashion_mnist_root):
    from synthgen.data import ImageData, ImageDataset, load_images

    data = DataConfig(root=fashion_mnist_root, max_images=600)
    signal = load_images(data, "train")  # real images standing in for good synthetic ones
    test = load_images(dataclasses.replace(data, max_images=0), "test")
    cfg = tc.ClassifierJobConfig(
        data=data, shards="unused", train_on="synthetic", steps=60, batch_size=64, width=8, augment=False, num_threads=1
    )  # width 8: ~10x cheaper, still learns
    good = tc.train_and_test(cfg, None, ImageDataset(signal, output="tensor"), test, progress=False)
    noise = ImageData(
        "synthetic", signal.images, np.random.default_rng(0).permutation(signal.labels), signal.class_names
    )
    bad = tc.train_and_test(cfg, None, ImageDataset(noise, output="tensor"), test, progress=False)
    assert good["accuracy"] > 0.55 and bad["accuracy"] < 0.3  # chance is 0.1
    assert (good["num_synthetic"], good["num_real"], good["num_test"], good["steps"]) == (600, 0, 10000, 60)


def test_classifier_job_runs_on_a_shard_folder_and_writes_its_result(tmp_path, fashion_mnist_root, capsys):
    write_shards(tmp_path / "s", n=40)
    out = tmp_path / "result.json"
    sets = [
        f"shards={tmp_path / 's'}",
        f"data.root={fashion_mnist_root}",
        "data.max_images=200",
        "steps=3",
        "width=4",
        f"out={out}",
    ]
    code = tc.main(["--config", str(CONFIGS / "train_classifier_smoke.yaml"), *[a for s in sets for a in ("--set", s)]])
    assert code == 0
    result = json.loads(out.read_text())
    counts = (result["num_real"], result["num_synthetic"], result["steps"], result["synthetic_fraction"])
    assert counts == (200, 40, 3, 0.5)
    assert f"test accuracy: {result['accuracy']:.4f} on 10000 real test images" in capsys.readouterr().out


def test_classifier_job_missing_shards_fail_cleanly(tmp_path, fashion_mnist_root, capsys):
    out = tmp_path / "result.json"
    code = tc.main(
        [
            "--config",
            str(CONFIGS / "train_classifier_smoke.yaml"),
            "--set",
            f"shards={tmp_path / 'none'}",
            "--set",
            f"data.root={fashion_mnist_root}",
            "--set",
            f"out={out}",
        ]
    )
    assert code == 1 and "manifest" in capsys.readouterr().err and not out.exists()
