"""``synthgen sample --upscale SR_RUN``: the cascade of a class GAN and an upscaler in the fleet, byte for byte the
same as sampling at the GAN's resolution and then ``--upscale-from`` that dataset on other actors, batches and
shards; kill -9; the manifest naming both checkpoints; refusals that write nothing; the dry run.

Tiny untrained checkpoints (an 8 px cdcgan, an srgan x4 8 -> 32 px with perturbed weights) keep runs to seconds.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch
from shard_data import shard_shas

from synthgen.cli import main as cli_main
from synthgen.config import DataConfig, ExperimentConfig, from_dict
from synthgen.data.shard_dataset import SyntheticShardDataset
from synthgen.errors import ShardError
from synthgen.evaluate.sources import open_shards
from synthgen.sample.config import SampleConfig
from synthgen.sample.run import run_sample
from synthgen.sample.verify import verify_output
from synthgen.train.untrained import write_random_checkpoint

CLASSES = ("a", "b", "c")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """(an 8 px gray cdcgan, an srgan x4 from 8 to 32 px whose tail is no longer zero, a 16 px cdcgan)."""
    base = tmp_path_factory.mktemp("cascade")
    small = write_random_checkpoint(
        str(base / "gan8"), from_dict(ExperimentConfig, {"data": {"resolution": 8}}), class_names=CLASSES
    )
    other = write_random_checkpoint(
        str(base / "gan16"), from_dict(ExperimentConfig, {"data": {"resolution": 16}}), class_names=CLASSES
    )
    sr_cfg = from_dict(
        ExperimentConfig,
        {
            "data": {"resolution": 32, "pairs": "downsample"},
            "model": {"name": "srgan", "arch": {"g_channels": 4, "g_blocks": 1, "d_channels": 4}},
        },
    )
    sr = write_random_checkpoint(str(base / "sr"), sr_cfg, class_names=CLASSES)
    payload = torch.load(os.path.join(sr, "model.pt"), weights_only=True)
    for key in ("generator", "generator_ema"):  # a learned residual on top of bicubic, as a trained one has
        payload[key]["tail.weight"] = torch.randn_like(payload[key]["tail.weight"]) * 0.05
    torch.save(payload, os.path.join(sr, "model.pt"))
    return small, sr, other


def _cfg(checkpoint: str, out, **kw) -> SampleConfig:
    base = dict(
        checkpoint=checkpoint,
        out=str(out),
        num_samples=30,
        format="parquet",
        images_per_shard=10,
        num_actors=2,
        batch_size=16,
        chunk_size=8,
        progress=False,
    )
    return SampleConfig(**{**base, **kw})


def _images(out) -> tuple[np.ndarray, np.ndarray]:
    ds = SyntheticShardDataset(str(out), output="tensor")
    return np.stack([ds[i][0].numpy() for i in range(len(ds))]), np.array([int(ds[i][1]) for i in range(len(ds))])


@pytest.fixture(scope="module")
def reference(ray_cluster, checkpoints, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "out"
    return str(out), run_sample(_cfg(checkpoints[0], out, upscale=checkpoints[1]))


@pytest.mark.ray
def test_the_cascade_equals_sampling_then_upscaling_that_dataset_on_any_layout(reference, checkpoints, tmp_path):
    out, result = reference
    small = tmp_path / "small"
    run_sample(_cfg(checkpoints[0], small))
    two_step = tmp_path / "two_step"  # other actors, batch and shard size: the bytes must not depend on them
    layout = {"num_actors": 1, "batch_size": 8, "images_per_shard": 7}
    run_sample(_cfg(checkpoints[1], two_step, num_samples=0, translate=str(small), **layout))
    images, labels = _images(out)
    assert images.shape == (30, 1, 32, 32)
    expect_images, expect_labels = _images(two_step)
    assert np.array_equal(images, expect_images) and np.array_equal(labels, expect_labels)
    assert np.array_equal(labels, _images(small)[1])  # the generator's labels, kept
    m = result.manifest
    assert m["upscale"]["output_shape"] == [1, 32, 32] and m["upscale"]["input_shape"] == [1, 8, 8]
    assert m["upscale"]["checkpoint"]["digest"] == m["plan"]["upscale"] != m["checkpoint"]["digest"]
    assert m["image_shape"] == [1, 32, 32] and verify_output(out).ok


@pytest.mark.ray
def test_a_killed_cascade_actor_finishes_the_identical_dataset(reference, checkpoints, tmp_path, inject_faults):
    out = tmp_path / "killed"
    inject_faults("sample.fail_after_batches=1")  # actor 0 kill -9s itself after one call
    result = run_sample(_cfg(checkpoints[0], out, upscale=checkpoints[1], num_actors=1))
    inject_faults("")
    assert result.stats.actor_restarts >= 1 and shard_shas(result.manifest) == shard_shas(reference[1].manifest)


@pytest.mark.parametrize(
    "what, expect",
    [
        ("wrong_size", "the upscaler takes [1, 8, 8] (C, H, W) images but the generator makes [1, 16, 16]"),
        ("not_an_upscaler", "draws images from noise"),
        ("with_translate", "cannot be combined with --translate"),
    ],
)
def test_refusals_exit_2_and_write_nothing(checkpoints, tmp_path, capsys, what, expect):
    small, sr, other = checkpoints
    checkpoint, upscale, extra = small, sr, ["--num-samples", "10"]
    if what == "wrong_size":
        checkpoint = other
    elif what == "not_an_upscaler":
        upscale = other
    else:
        extra = ["--translate", "train"]
    out = tmp_path / "never"
    argv = ["sample", "--checkpoint", checkpoint, "--upscale", upscale, "--out", str(out), "--no-progress", *extra]
    assert cli_main(argv) == 2
    assert expect in capsys.readouterr().err and not out.exists()


def test_dry_run_shows_the_cascade_and_writes_nothing(checkpoints, tmp_path, capsys):
    out = tmp_path / "dry"
    argv = ["sample", "--checkpoint", checkpoints[0], "--upscale", checkpoints[1], "--num-samples", "10"]
    assert cli_main([*argv, "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "upscale:" in text and "srgan [1, 8, 8] -> [1, 32, 32] in the same actor call" in text
    assert "image shape [1, 32, 32]" in text and not out.exists()


@pytest.mark.ray
def test_evaluating_cascade_shards_compares_them_with_the_upscalers_full_size_data(reference, tmp_path):
    # the manifest's training config is the 8 px generator's; the images are 32 px like the upscaler's data
    out, result = reference
    source = open_shards(out, DataConfig(resolution=8), data_from_checkpoint=True)
    assert source.image_shape == (1, 32, 32) and source.data_cfg.resolution == 32
    assert source.data_cfg.source == "fashion-mnist" and source.experiment is None  # no 8 px honest uplift
    legacy = tmp_path / "legacy"  # a cascade written before the upscaler's data was recorded
    shutil.copytree(out, legacy)
    manifest = json.loads((legacy / "manifest.json").read_text())
    del manifest["upscale"]["data"]
    (legacy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ShardError, match="data_from_checkpoint=false"):
        open_shards(str(legacy), DataConfig(), data_from_checkpoint=True)
