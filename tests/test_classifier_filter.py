"""jobs/train_classifier.py's ``filter_threshold`` (``synthgen.classify.honest_filter``): synthetic rows are kept
only when a real-only classifier of the same recipe gives their label enough probability (honest: it sees only the
real subset)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from job_module import JOBS, load_job

from synthgen.config import DataConfig, load_config
from synthgen.errors import ConfigError

tc = load_job("train_classifier")


@pytest.fixture(scope="module")
def parts(fashion_mnist_root):
    """(real 600-image subset, 400 other real training images as the 'synthetic' rows, the test split)."""
    from synthgen.data import load_images

    data = DataConfig(root=fashion_mnist_root, max_images=600)
    real = load_images(data, "train")
    whole = load_images(dataclasses.replace(data, max_images=0), "train")
    test = load_images(dataclasses.replace(data, max_images=0), "test")
    others = np.random.default_rng(0).choice(len(whole), 400, replace=False)
    return data, real, whole.images[others], whole.labels[others], test


def _synthetic(images: np.ndarray, labels: np.ndarray, names):
    from synthgen.data import ImageData

    return ImageData("syn", images, labels, tuple(names))


def _filter(cfg, real, synthetic, test):
    """The job's filter step: ``synthgen.classify.honest_filter`` with the job's settings."""
    from synthgen.classify import honest_filter

    return honest_filter(real, synthetic, test, tc.settings_of(cfg, real, synthetic), progress=False)


def _cfg(data: DataConfig, **kw) -> tc.ClassifierJobConfig:
    base = dict(
        data=data,
        shards="unused",
        train_on="real+synthetic",
        steps=80,
        batch_size=64,
        width=8,
        num_threads=1,
        filter_threshold=0.5,
    )
    return tc.ClassifierJobConfig(**{**base, **kw})


def test_the_filter_keeps_rows_of_their_label_and_drops_mislabelled_ones(parts):
    data, real, images, labels, test = parts
    wrong = (labels + 1 + np.random.default_rng(1).integers(0, 9, len(labels))) % 10  # every label changed
    both = _synthetic(np.concatenate([images, images]), np.concatenate([labels, wrong]), test.class_names)
    kept, info = _filter(_cfg(data), real, both, test)
    kept_images, kept_labels = kept.images, kept.labels
    rows = kept_labels
    source = {
        (img.tobytes(), int(y)) for img, y in zip(np.concatenate([images, images]), np.concatenate([labels, wrong]))
    }
    assert all((img.tobytes(), int(y)) in source for img, y in zip(kept_images, kept_labels))  # rows unchanged
    right = sum(
        int(y) == int(labels[np.flatnonzero((images == img).all(axis=(1, 2, 3)))[0]])
        for img, y in zip(kept_images, kept_labels)
    )
    assert right > 150 and len(rows) - right < right / 4  # most true labels kept, few wrong ones
    assert info["synthetic_before_filter"] == 800 and sum(info["synthetic_kept_per_class"].values()) == len(rows)


def test_the_filter_is_the_real_only_arm(parts):
    data, real, images, labels, test = parts
    _, info = _filter(_cfg(data), real, _synthetic(images, labels, test.class_names), test)
    real_arm = tc.train_and_test(_cfg(data, train_on="real", filter_threshold=0.0), real, None, test, progress=False)
    assert info["real_only_accuracy"] == real_arm["accuracy"]


def test_a_threshold_that_keeps_nothing_is_a_config_error(parts):
    data, real, images, labels, test = parts
    with pytest.raises(ConfigError, match="keeps none.*lower it"):  # one step of a tiny net: p(label) ~ 0.1
        _filter(
            _cfg(data, steps=1, width=1, filter_threshold=0.99),
            real,
            _synthetic(images, labels, test.class_names),
            test,
        )


@pytest.mark.parametrize(
    "override", ["filter_threshold=1.0", "filter_threshold=-0.1", "filter_threshold=0.5 --set train_on=real"]
)
def test_bad_filter_settings_are_refused(override):
    sets = override.split(" --set ")
    with pytest.raises(ConfigError, match="filter_threshold"):
        load_config(tc.ClassifierJobConfig, JOBS / "configs" / "train_classifier_smoke.yaml", sets).validate()
