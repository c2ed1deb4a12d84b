"""The uplift metric trains its real+synthetic arm on the synthetic pool it is given, through the one mixing
path (synthgen.data.mix): a correctly labelled pool beats a mislabelled one, while the real-only arm of the
same subset and seed is untouched. Small: the three-class band images of test_evaluate_registry."""

from __future__ import annotations

import pytest
from test_evaluate_registry import context, data_cfg  # noqa: F401  (data_cfg is a fixture)

from synthgen.data import ImageData, load_images
from synthgen.data.mix import synthetic_per_batch
from synthgen.evaluate.config import EvalConfig
from synthgen.evaluate.metrics import get_metric
from synthgen.errors import ConfigError

UPLIFT = {"generator": "evaluated", "pool": "prior", "seeds": 1, "steps": 40, "batch_size": 16,
          "synthetic_fraction": 0.5, "fractions": (0.1,), "num_synthetic": 300, "augment": False}


def _uplift(data_cfg, tmp_path, pool: ImageData) -> dict:
    from synthgen.config import from_dict

    ctx = context(data_cfg, tmp_path, generated=pool, uplift=from_dict(type(EvalConfig().uplift), UPLIFT))
    return get_metric("uplift").compute(ctx).results["by_fraction"]["10%"]


def test_the_mixed_arm_learns_from_the_pool_and_the_real_arm_does_not_see_it(data_cfg, tmp_path):
    train = load_images(data_cfg, "train")
    good = ImageData("pool", train.images, train.labels, train.class_names)
    wrong = ImageData("pool", train.images, (train.labels + 1) % 3, train.class_names)  # every label wrong
    a, b = _uplift(data_cfg, tmp_path, good), _uplift(data_cfg, tmp_path, wrong)
    assert a["num_real"] == b["num_real"] == 30  # 10% of 300, class-stratified
    assert a["real_only"] == b["real_only"]  # same subset, init and batches: the pool never reaches this arm
    assert a["real_plus_synthetic"]["mean"] > b["real_plus_synthetic"]["mean"] + 0.2
    assert a["uplift_points"]["mean"] > b["uplift_points"]["mean"]


def test_synthetic_share_per_batch_keeps_both_kinds():
    assert synthetic_per_batch(64, 0.25) == 16  # the uplift default: round(fraction * batch)
    assert synthetic_per_batch(64, 0.001) == 1 and synthetic_per_batch(64, 0.999) == 63  # never all one kind
    assert synthetic_per_batch(64, 0.0) == 0 and synthetic_per_batch(64, 1.0) == 64
    with pytest.raises(ConfigError, match="synthetic_fraction"):
        synthetic_per_batch(64, 1.5)
