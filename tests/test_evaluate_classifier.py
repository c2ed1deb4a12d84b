"""SmallCNN, train_classifier and the cached judge, on real Fashion-MNIST subsets."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from synthgen.config import DataConfig
from synthgen.data import ImageData, load_images, stratified_subset
from synthgen.errors import ConfigError
from synthgen.evaluate.config import JudgeConfig
from synthgen.judge.cache import META_FILE, WEIGHTS_FILE, load_or_train_judge
from synthgen.judge.classifier import accuracy, random_shift, train_classifier
from synthgen.models.classifier import SmallCNN
from synthgen.pixels import to_float


def subset(data: ImageData, n: int, seed: int = 0) -> ImageData:
    keep = stratified_subset(data.labels, n, seed)
    return ImageData(name=data.name, images=data.images[keep], labels=data.labels[keep], class_names=data.class_names)


@pytest.fixture(scope="module")
def small_real(fashion_mnist_root):
    """(train 2000, test 1000) stratified real subsets."""
    cfg = DataConfig(root=fashion_mnist_root)
    return subset(load_images(cfg, "train"), 2000), subset(load_images(cfg, "test"), 1000)


TINY = JudgeConfig(epochs=1, max_train_images=500)


def test_small_cnn_shapes_for_gray_28_and_rgb_32():
    for c, r in ((1, 28), (3, 32)):
        model = SmallCNN(c, 7, r).eval()
        x = torch.zeros(5, c, r, r)
        assert model(x).shape == (5, 7)
        assert model.features(x).shape == (5, 128)


def test_train_classifier_learns_real_fashion_mnist(small_real):
    train, test = small_real
    model = train_classifier(train.images, train.labels, 10, epochs=3, progress=False)
    assert accuracy(model, test.images, test.labels) > 0.7  # chance is 0.1


def test_train_classifier_is_deterministic_for_a_seed(small_real):
    train, _ = small_real
    a, b, c = (
        train_classifier(train.images[:256], train.labels[:256], 10, epochs=1, steps=4, seed=s, progress=False)
        for s in (3, 3, 4)
    )
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(pa, pb), name
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.state_dict().values(), c.state_dict().values()))


def test_random_shift_moves_content_by_at_most_two_pixels():
    img = np.zeros((64, 1, 28, 28), np.uint8)
    img[:, 0, 14, 14] = 255
    out = random_shift(to_float(img), torch.Generator().manual_seed(0))  # [64, 1, 28, 28]
    assert out.shape == (64, 1, 28, 28)
    bright = (out[:, 0] > 0).nonzero()  # one bright pixel per image, somewhere within +-2 of the centre
    assert len(bright) == 64
    assert (bright[:, 1:] - 14).abs().max() <= 2
    assert len({(int(y), int(x)) for _, y, x in bright}) > 5  # the shifts actually vary


def test_classifier_rejects_bad_inputs():
    with pytest.raises(ConfigError, match="uint8"):
        to_float(np.zeros((2, 1, 28, 28), np.float32))
    with pytest.raises(ConfigError, match="N > 0"):
        train_classifier(np.zeros((0, 1, 28, 28), np.uint8), np.zeros(0), 10, epochs=1)


def test_judge_is_trained_once_then_loaded_from_the_cache(small_real, tmp_path):
    first = load_or_train_judge(DataConfig(), str(tmp_path), judge_cfg=TINY, real=small_real, progress=False)
    assert os.path.isfile(os.path.join(first.path, WEIGHTS_FILE))
    meta = json.load(open(os.path.join(first.path, META_FILE)))
    assert meta["data"]["num_train"] == 500 and 0.3 < meta["test_accuracy"] <= 1.0
    state = torch.load(os.path.join(first.path, WEIGHTS_FILE), weights_only=True)  # plain tensors only
    assert set(state) == set(first.model.state_dict())
    second = load_or_train_judge(DataConfig(), str(tmp_path), judge_cfg=TINY, real=small_real, progress=False)
    assert second.path == first.path and second.meta == first.meta  # same "created" stamp: not retrained
    x = small_real[1].images[:50]
    np.testing.assert_array_equal(first.features(x), second.features(x))


def test_judge_cache_key_follows_recipe_and_data(small_real, tmp_path):
    base = load_or_train_judge(DataConfig(), str(tmp_path), judge_cfg=TINY, real=small_real, progress=False)
    other_recipe = load_or_train_judge(
        DataConfig(),
        str(tmp_path),
        real=small_real,
        progress=False,
        judge_cfg=JudgeConfig(epochs=1, max_train_images=400),
    )
    train, test = small_real
    changed = train.images.copy()
    changed[0, 0, 0, 0] ^= 1  # one pixel of one image
    other_data = load_or_train_judge(
        DataConfig(),
        str(tmp_path),
        judge_cfg=TINY,
        progress=False,
        real=(ImageData(train.name, changed, train.labels, train.class_names), test),
    )
    assert len({base.key, other_recipe.key, other_data.key}) == 3
    assert len({base.path, other_recipe.path, other_data.path}) == 3


def test_damaged_judge_cache_is_retrained_and_repaired(small_real, tmp_path):
    judge = load_or_train_judge(DataConfig(), str(tmp_path), judge_cfg=TINY, real=small_real, progress=False)
    with open(os.path.join(judge.path, WEIGHTS_FILE), "wb") as fh:
        fh.write(b"not a torch file")
    again = load_or_train_judge(DataConfig(), str(tmp_path), judge_cfg=TINY, real=small_real, progress=False)
    assert again.path == judge.path
    torch.load(os.path.join(judge.path, WEIGHTS_FILE), weights_only=True)  # readable again


def test_judge_probabilities_and_features(small_real, tmp_path):
    judge = load_or_train_judge(DataConfig(), str(tmp_path), judge_cfg=TINY, real=small_real, progress=False)
    x = small_real[1].images[:40]
    proba = judge.predict_proba(x)
    assert proba.shape == (40, 10) and np.allclose(proba.sum(1), 1.0, atol=1e-5)
    assert judge.features(x).shape == (40, 128)
    assert judge.class_names == small_real[0].class_names
