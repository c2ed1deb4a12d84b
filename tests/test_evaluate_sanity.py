"""Sanity metrics on real Fashion-MNIST through the registered metrics and a real (small) judge:
identical sets give FD ~ 0 and precision/recall ~ 1; real images from the same split score like the
real anchor; a generator that outputs noise gets a huge FD, ~0 precision and chance-level CAS."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from judge_recipe import judge_config
from torch import nn

from synthgen.config import DataConfig
from synthgen.data import ImageData, load_images, stratified_subset
from synthgen.evaluate.config import CasConfig, EvalConfig
from synthgen.evaluate.context import EvalContext
from synthgen.evaluate.metrics import get_metric
from synthgen.evaluate.sources import Source
from synthgen.judge.cache import default_cache_dir, load_or_train_judge

# The CAS recipe equals the judge's, so the judge doubles as CAS's real-data anchor (no extra training). The
# judge's size matters for the noise checks here (tests/judge_recipe.py says why).
JUDGE = judge_config()
CAS = CasConfig(num_train=10000, epochs=1)


def subset(data: ImageData, n: int, seed: int) -> ImageData:
    keep = stratified_subset(data.labels, n, seed)
    return ImageData(name=data.name, images=data.images[keep], labels=data.labels[keep], class_names=data.class_names)


class NoiseGenerator(nn.Module):
    """A 'generator' whose images are uniform noise in [-1, 1] (deterministic in z)."""

    conditional = True

    def __init__(self, z_dim: int = 16) -> None:
        super().__init__()
        self.z_dim = z_dim

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        gen = torch.Generator().manual_seed(int(z[0, 0].abs().mul(1e6)) % (2**31))
        return torch.rand(z.shape[0], 1, 28, 28, generator=gen) * 2 - 1  # [N, 1, 28, 28]


@pytest.fixture(scope="module")
def real(fashion_mnist_root):
    """The whole real train and test splits (the test split is every metric's reference, as in production)."""
    cfg = DataConfig(root=fashion_mnist_root)
    return load_images(cfg, "train"), load_images(cfg, "test")


@pytest.fixture(scope="module")
def judge(real):
    # the session's cache (tests/conftest.py sets SYNTHGEN_CACHE), shared with the other tests of this recipe
    judge = load_or_train_judge(DataConfig(), default_cache_dir(), judge_cfg=JUDGE, real=real, progress=False)
    judge.split_features("train"), judge.split_features("test")  # computed once, cached beside the judge
    return judge


def context(
    real,
    judge,
    tmp_path,
    *,
    images: ImageData | None = None,
    generator: nn.Module | None = None,
    num_samples: int = 1000,
    test: ImageData | None = None,
) -> EvalContext:
    """An EvalContext over fixed images (kind "shards") or an in-memory generator (kind "checkpoint")."""
    train, test = real[0], test or real[1]
    names = train.class_names
    cfg = EvalConfig(checkpoint="in-memory", num_samples=num_samples, judge=JUDGE, cas=CAS)
    source = Source(
        kind="checkpoint" if generator is not None else "shards",
        path="in-memory",
        class_names=names,
        image_shape=(1, 28, 28),
        data_cfg=DataConfig(),
        identity={"kind": "test"},
        generator=generator,
        _cache=images,
    )
    return EvalContext(cfg=cfg, source=source, judge=judge, real_train=train, real_test=test, out_dir=str(tmp_path))


def test_identical_sets_give_zero_fd_and_full_precision_recall(real, judge, tmp_path):
    test = subset(real[1], 2000, seed=0)
    ctx = context(real, judge, tmp_path, images=test, test=test, num_samples=2000)  # generated = the reference
    fd = get_metric("fd").compute(ctx).results
    pr = get_metric("pr").compute(ctx).results
    dc = get_metric("dc").compute(ctx).results
    assert fd["fd"] < 1e-6
    assert pr["precision"] == 1.0 and pr["recall"] == 1.0
    assert dc["coverage"] == 1.0


def test_other_real_images_score_like_the_real_anchor(real, judge, tmp_path):
    fresh = subset(real[0], 1000, seed=7)  # real training images, a different draw than the anchor's
    ctx = context(real, judge, tmp_path, images=fresh)
    fd = get_metric("fd").compute(ctx).results
    pr = get_metric("pr").compute(ctx).results
    acc = get_metric("label_acc").compute(ctx).results
    assert fd["fd_ratio"] < 1.5
    assert pr["precision"] > 0.8 and pr["recall"] > 0.8
    assert acc["label_acc"] > 0.7 and abs(acc["label_acc"] - judge.test_accuracy) < 0.08


def test_noise_generator_gets_huge_fd_and_no_precision(real, judge, tmp_path):
    ctx = context(real, judge, tmp_path, generator=NoiseGenerator())
    fd = get_metric("fd").compute(ctx).results
    pr = get_metric("pr").compute(ctx).results
    assert len(ctx.generated()) == 1000 and np.bincount(ctx.generated().labels).tolist() == [100] * 10
    assert fd["fd"] > 50 * fd["fd_floor"]
    assert pr["precision"] < 0.1 and pr["recall"] < 0.05


def test_noise_generator_gets_chance_level_cas_and_a_large_gap(real, judge, tmp_path):
    ctx = context(real, judge, tmp_path, generator=NoiseGenerator())
    out = get_metric("cas").compute(ctx)
    assert out.counts["synthetic_train"] == 10000
    assert out.results["cas"] < 0.2  # 10 classes: chance is 0.1
    assert out.results["real_acc"] == judge.test_accuracy > 0.7
    assert out.results["gap_points"] > 50
