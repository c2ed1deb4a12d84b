"""Image-to-image models through `synthgen train`: real Ray Train runs of pix2pix (edges) and cyclegan, a killed
worker restored from the latest checkpoint, grids of input | output rows, and the config errors that stop a run before
anything is written."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from synthgen import checkpoint as ckpt
from synthgen.cli import main as cli_main
from synthgen.config import ExperimentConfig, load_config
from synthgen.errors import ConfigError
from synthgen.train.trainer import train


def tiny(tmp_path, name: str, *overrides: str) -> ExperimentConfig:
    """A few-second 2-worker pix2pix run on 200 real Fashion-MNIST images and their outlines."""
    return load_config(
        ExperimentConfig,
        "jobs/configs/pix2pix_edges_smoke.yaml",
        [
            f"run.storage_path={tmp_path}",
            f"run.name={name}",
            "data.max_images=200",
            "train.steps=6",
            "train.checkpoint_every=3",
            "train.sample_every=3",
            "train.log_every=3",
            "train.batch_size=4",
            *overrides,
        ],
    )


@pytest.fixture(scope="module")
def killed_p2p(ray_cluster, tmp_path_factory):
    """A 2-worker pix2pix run to step 6 whose last rank kill -9s itself at step 5: the replacement group restores
    checkpoint 3 (the restore a ``--resume`` runs too; test_train checks ``--resume`` itself): its TrainResult."""
    from synthgen.faults import ENV_VAR

    storage = tmp_path_factory.mktemp("p2p")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV_VAR, "train.fail_at_step=5")
        return train(tiny(storage, "p2p", "train.max_failures=1"))


@pytest.mark.ray
@pytest.mark.slow
def test_pix2pix_trains_on_outlines_and_checkpoints(killed_p2p, tmp_path, capsys):
    second = killed_p2p
    assert second.final_step == 6 and [s for s, _ in ckpt.list_checkpoints(second.run_dir)] == [3, 6]
    payload = torch.load(os.path.join(second.checkpoint_path, "model.pt"), weights_only=True)
    assert payload["image_shape"] == [1, 32, 32] and payload["config"]["data"]["pairs"] == "edges"
    assert any(k.startswith("unet.") for k in payload["generator_ema"])
    grid = np.asarray(Image.open(os.path.join(second.run_dir, "grids", "grid-000006.png")))
    # three rows (outlines, translations, targets) of 8 images of 32 px with 2 px gaps
    assert grid.shape[:2] == (3 * 34 + 2, 8 * 34 + 2)
    # sampling a translation checkpoint from noise: a usage error that names --translate, nothing written
    out = tmp_path / "never"
    assert cli_main(["sample", "--checkpoint", second.run_dir, "--num-samples", "4", "--out", str(out)]) == 2
    assert "--translate DATA" in capsys.readouterr().err and not out.exists()


def rgb_folder(root) -> str:
    """Domain B: 2 classes of 6 flat RGB images of 32 px (their labels are never used)."""
    for k in range(2):
        os.makedirs(root / f"c{k}")
        for i in range(6):
            color = np.full((32, 32, 3), 40 * i + 20 * k, dtype=np.uint8)
            Image.fromarray(color).save(root / f"c{k}" / f"{i}.png")
    return str(root)


def cycle_config(tmp_path, b_root: str, *overrides: str) -> ExperimentConfig:
    """A 2-step cyclegan run of tiny networks from 40 Fashion-MNIST images (A) to ``b_root``'s RGB images."""
    return load_config(
        ExperimentConfig,
        None,
        [
            f"run.storage_path={tmp_path}",
            "run.name=cycle",
            "data.resolution=32",
            "data.max_images=40",
            "data_b.source=imagefolder",
            f"data_b.root={b_root}",
            "data_b.channels=3",
            "data_b.resolution=32",
            "model.name=cyclegan",
            "model.arch.g_channels=4",
            "model.arch.g_blocks=1",
            "model.arch.d_channels=4",
            "train.num_workers=1",
            "train.cpus_per_worker=0.5",
            "train.batch_size=2",
            "train.steps=2",
            "train.checkpoint_every=2",
            "train.sample_every=2",
            "train.log_every=1",
            *overrides,
        ],
    )


@pytest.fixture(scope="module")
def semantic_cycle(ray_cluster, tmp_path_factory):
    """A 2-step cyclegan run from gray folder images (A, with a test split for its judge) to flat RGB ones (B),
    with CyCADA's semantic consistency on: its TrainResult."""
    root = tmp_path_factory.mktemp("cycle")
    a_root = gray_halves_folder(root / "gray")
    sources = ["data.source=imagefolder", f"data.root={a_root}", "data.channels=1", "data.max_images=0"]
    return train(cycle_config(root, rgb_folder(root / "rgb"), *sources, "model.arch.semantic_weight=1.0"))


@pytest.mark.ray
@pytest.mark.slow
def test_cyclegan_trains_between_gray_and_rgb_folders(semantic_cycle):
    result = semantic_cycle
    payload = torch.load(os.path.join(result.checkpoint_path, "model.pt"), weights_only=True)
    assert payload["image_shape"] == [3, 32, 32]
    assert {k.split(".")[0] for k in payload["generator_ema"]} == {"G_ab", "G_ba"}
    grid = np.asarray(Image.open(os.path.join(result.run_dir, "grids", "grid-000002.png")))
    assert grid.shape == (2 * 34 + 2, 8 * 34 + 2, 3)  # unpaired: inputs and translations only


@pytest.mark.ray
@pytest.mark.slow
def test_srgan_trains_on_downsample_pairs_and_grids_show_low_res_bicubic_upscaled_and_real(ray_cluster, tmp_path):
    cfg = tiny(
        tmp_path,
        "sr",
        "model.name=srgan",
        "data.pairs=downsample",
        "model.arch={factor: 4, g_channels: 8, g_blocks: 1, d_channels: 8, feature_weight: 0.0, degrade_noise: 0.05}",
        "train.num_workers=1",
    )
    result = train(cfg)
    payload = torch.load(os.path.join(result.checkpoint_path, "model.pt"), weights_only=True)
    assert payload["image_shape"] == [1, 32, 32] and payload["config"]["data"]["pairs"] == "downsample"
    assert any(k.startswith("tail.") for k in payload["generator_ema"])
    grid = np.asarray(Image.open(os.path.join(result.run_dir, "grids", "grid-000006.png")))
    assert grid.shape[:2] == (4 * 34 + 2, 8 * 34 + 2)  # low-res (pixel-repeated) | bicubic | upscaled | real


def gray_halves_folder(root, splits: tuple[str, ...] = ("train", "test")) -> str:
    """Domain A: gray 32 px images, class "left" lit on its left half, "right" on its right, 8 per class and split
    (``splits=("",)``: class folders right under ``root``, a train split only)."""
    for split in splits:
        for k, name in enumerate(("left", "right")):
            os.makedirs(root / split / name)
            for i in range(8):
                x = np.full((32, 32), 10 * i, dtype=np.uint8)
                x[:, k * 16 : (k + 1) * 16] = 200 + 5 * i
                Image.fromarray(x).save(root / split / name / f"{i}.png")
    return str(root)


@pytest.mark.ray
@pytest.mark.slow
def test_cyclegan_with_semantic_consistency_trains_with_domain_a_judge(semantic_cycle):
    result = semantic_cycle
    payload = torch.load(os.path.join(result.checkpoint_path, "model.pt"), weights_only=True)
    assert payload["config"]["model"]["arch"]["semantic_weight"] == 1.0 and result.final_step == 2


def test_semantic_consistency_without_a_classifiable_domain_a_is_refused_before_anything_is_written(tmp_path):
    a_root = gray_halves_folder(tmp_path / "gray", splits=("",))  # no test split: its judge cannot be scored
    sources = ["data.source=imagefolder", f"data.root={a_root}", "data.channels=1", "data.max_images=0"]
    cfg = cycle_config(tmp_path / "runs", rgb_folder(tmp_path / "rgb"), *sources, "model.arch.semantic_weight=1.0")
    with pytest.raises(ConfigError, match=r"semantic_weight=1.0 needs a classifier of domain A.*no test split"):
        train(cfg)
    assert not (tmp_path / "runs").exists()


def test_a_translation_model_without_its_second_domain_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ConfigError, match="set data_b"):
        load_config(ExperimentConfig, None, ["model.name=cyclegan", f"run.storage_path={tmp_path}"]).validate()
    with pytest.raises(ConfigError, match=r"data.pairs='outline' is invalid.*edges"):
        load_config(ExperimentConfig, "jobs/configs/pix2pix_edges_smoke.yaml", ["data.pairs=outline"])
    with pytest.raises(ConfigError, match="for models that translate images"):
        load_config(ExperimentConfig, None, ["data.pairs=edges"]).validate()  # cdcgan draws from noise
    assert not os.listdir(tmp_path)


@pytest.mark.ray
@pytest.mark.slow
def test_a_killed_translation_worker_is_replaced_and_continues_from_the_latest_checkpoint(killed_p2p):
    result = killed_p2p
    assert os.path.exists(os.path.join(result.run_dir, ".fault-injected"))  # the worker really died (at step 5)
    assert result.final_step == 6 and [s for s, _ in ckpt.list_checkpoints(result.run_dir)] == [3, 6]
    with open(os.path.join(result.run_dir, "timing.json"), encoding="utf-8") as fh:
        assert json.load(fh)["first_step"] == 4  # the replacement group restored checkpoint 3, not step 0
    rows = [json.loads(line)["step"] for line in open(os.path.join(result.run_dir, "metrics.jsonl"))]
    assert rows == [3, 6]  # each step logged once: the killed attempt's rows after 3 were dropped
