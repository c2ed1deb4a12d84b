"""``synthgen evaluate --metrics upscale``: an srgan checkpoint on held-out real images against bicubic; which
metrics fit which checkpoint; PSNR and SSIM from torchmetrics on the right scale."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from PIL import Image

from synthgen.config import ExperimentConfig, from_dict
from synthgen.errors import ConfigError
from synthgen.evaluate.config import EvalConfig
from synthgen.evaluate.run import evaluate, metrics_for_source, open_source
from synthgen.evaluate.upscale import image_scores
from synthgen.judge.config import JudgeConfig
from synthgen.train.untrained import write_random_checkpoint


@pytest.fixture(scope="module")
def rgb_root(tmp_path_factory) -> str:
    """An RGB imagefolder, 32 px, 2 classes (a bright square on the left or right), 12 train + 6 test per class."""
    root = tmp_path_factory.mktemp("rgb")
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("test", 6)):
        for k, name in enumerate(("left", "right")):
            os.makedirs(root / split / name)
            for i in range(n):
                img = rng.integers(0, 60, (32, 32, 3), dtype=np.uint8)
                img[8:24, 2 + 16 * k : 14 + 16 * k] = rng.integers(150, 255, 3, dtype=np.uint8)
                Image.fromarray(img).save(root / split / name / f"{i}.png")
    return str(root)


def upscaler(run_dir: str, root: str, tail_std: float = 0.0) -> str:
    """An untrained srgan x4 (exactly bicubic), or with its last conv perturbed by ``tail_std``."""
    cfg = from_dict(
        ExperimentConfig,
        {
            "data": {"source": "imagefolder", "root": root, "channels": 3, "resolution": 32, "pairs": "downsample"},
            "model": {"name": "srgan", "arch": {"g_channels": 4, "g_blocks": 1, "d_channels": 4}},
        },
    )
    ckpt = write_random_checkpoint(run_dir, cfg, class_names=("left", "right"))
    if tail_std:
        path = os.path.join(ckpt, "model.pt")
        payload = torch.load(path, weights_only=True)
        torch.manual_seed(0)
        for key in ("generator", "generator_ema"):
            payload[key]["tail.weight"] = torch.randn_like(payload[key]["tail.weight"]) * tail_std
        torch.save(payload, path)
    return ckpt


def config(ckpt: str, out: str, tmp_path, **kw) -> EvalConfig:
    judge = JudgeConfig(epochs=2, cache_dir=str(tmp_path / "judges"))
    return EvalConfig(checkpoint=ckpt, out=out, metrics=("upscale",), num_samples=12, judge=judge, **kw)


def test_psnr_and_ssim_are_torchmetrics_on_the_0_1_scale():
    rng = np.random.default_rng(0)
    ref = rng.integers(20, 200, (3, 3, 16, 16), dtype=np.uint8)
    scores = image_scores(ref + 10, ref)  # every pixel 10 / 255 off
    assert scores["psnr"] == pytest.approx(10 * math.log10(1 / (10 / 255) ** 2), abs=1e-3)
    assert image_scores(ref, ref)["ssim"] == pytest.approx(1.0) and scores["ssim"] < 1.0


def test_an_untrained_upscaler_scores_exactly_as_bicubic_and_a_perturbed_one_does_not(rgb_root, tmp_path):
    (row,) = evaluate(config(upscaler(str(tmp_path / "bicubic"), rgb_root), str(tmp_path / "e1"), tmp_path), False)
    r = row["results"]
    assert row["metric"] == "upscale" and r["factor"] == 4 and row["counts"]["real_test_images"] == 12
    for key in ("psnr", "ssim", "fd", "label_acc"):
        assert r["upscaled"][key] == pytest.approx(r["bicubic"][key], abs=1e-6), key
    assert abs(r["psnr_gain_db"]) < 1e-6 and 10 < r["bicubic"]["psnr"] < 60
    noisy = upscaler(str(tmp_path / "noisy"), rgb_root, tail_std=0.2)
    (row,) = evaluate(config(noisy, str(tmp_path / "e2"), tmp_path), False)
    assert row["results"]["psnr_gain_db"] < -0.5  # a random residual on top of bicubic only hurts
    assert os.path.isfile(tmp_path / "e2" / "metrics.jsonl") and not os.path.exists(tmp_path / "e2" / "report.html")


def test_every_metric_means_upscale_for_an_upscaler_and_the_others_are_refused(rgb_root, tmp_path):
    ckpt = upscaler(str(tmp_path / "sr"), rgb_root)
    every = EvalConfig(checkpoint=ckpt)
    assert metrics_for_source(every, open_source(every)).metrics == ("upscale",)
    with pytest.raises(ConfigError, match=r"is an upscaler checkpoint \(srgan\); \['fd'\] measure a generator"):
        evaluate(EvalConfig(checkpoint=ckpt, metrics=("fd",), out=str(tmp_path / "e1")), False)
    noise = write_random_checkpoint(str(tmp_path / "noise"), ExperimentConfig())
    with pytest.raises(ConfigError, match=r"\['upscale'\] measure an upscaler checkpoint"):
        evaluate(EvalConfig(checkpoint=noise, metrics=("upscale",), out=str(tmp_path / "e2")), False)
    assert not (tmp_path / "e1").exists() and not (tmp_path / "e2").exists()
