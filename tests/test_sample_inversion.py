"""GAN inversion and latent-neighbour sampling (synthgen.invert.inversion) on a small real generator.

The targets are the generator's own images for known latents, so a perfect inversion exists; the
generator is a freshly initialised conditional DCGAN (the tests check the search, not a trained model)
whose output layer is scaled up: at initialisation its images are almost flat grey.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from synthgen.config import ModelConfig
from synthgen.errors import ConfigError
from synthgen.invert.inversion import invert, neighbour_images
from synthgen.models import build_models
from synthgen.pixels import to_uint8

NUM_CLASSES, N = 3, 12


@pytest.fixture(scope="module")
def generator() -> torch.nn.Module:
    torch.manual_seed(0)
    g, _ = build_models(ModelConfig(z_dim=16, arch={"g_channels": 8, "d_channels": 8}), (1, 28, 28), NUM_CLASSES)
    with torch.no_grad():
        g.to_image.weight.mul_(30.0)  # pixel std 0.008 -> 0.23: images that differ by latent
    return g.eval()


@pytest.fixture(scope="module")
def targets(generator) -> tuple[np.ndarray, np.ndarray]:
    """N uint8 images the generator makes for known latents, with their labels."""
    z = torch.randn(N, 16, generator=torch.Generator().manual_seed(1))  # [N, z_dim]
    y = torch.arange(N) % NUM_CLASSES  # [N]
    with torch.no_grad():
        return to_uint8(generator(z, y)).numpy(), y.numpy()


def test_inversion_brings_the_reconstructions_close_to_the_images(generator, targets):
    images, labels = targets
    inv = invert(generator, images, labels, steps=150, restarts=4)
    assert inv.latents.shape == (N, 16) and inv.labels.tolist() == labels.tolist()
    assert inv.mse < 0.25 * inv.start_mse
    with torch.no_grad():
        rebuilt = generator(inv.latents, torch.as_tensor(labels)).numpy()  # [N, 1, 28, 28]
    target = images.astype(np.float32) / 127.5 - 1
    assert float(((rebuilt - target) ** 2).mean()) == pytest.approx(inv.mse, rel=1e-4)


def test_inversion_does_not_depend_on_the_batch_size(generator, targets):
    images, labels = targets
    whole = invert(generator, images, labels, steps=20, restarts=3, seed=5)
    batched = invert(generator, images, labels, steps=20, restarts=3, seed=5, batch_size=5)
    torch.testing.assert_close(whole.latents, batched.latents, rtol=1e-4, atol=1e-5)


def test_inversion_leaves_the_generator_untouched(generator, targets):
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    invert(generator, *targets, steps=5, restarts=2)
    assert all(p.grad is None for p in generator.parameters())
    for k, v in generator.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_sigma_zero_neighbours_are_the_reconstructions_each_used_once_per_cycle(generator, targets):
    inv = invert(generator, *targets, steps=0, restarts=1)
    with torch.no_grad():
        recon = to_uint8(generator(inv.latents, torch.as_tensor(inv.labels))).numpy()  # [N, 1, 28, 28]
    index = {recon[i].tobytes(): i for i in range(N)}
    assert len(index) == N  # distinct images, so each output names its source
    images, labels = neighbour_images(generator, inv, 2 * N + 1, sigma=0.0, seed=3, batch_size=7)
    assert images.shape == (2 * N + 1, 1, 28, 28) and images.dtype == np.uint8
    sources = [index[im.tobytes()] for im in images]
    assert sorted(Counter(sources[:N]).values()) == [1] * N  # the first N samples use every image once
    assert sorted(Counter(sources).values()) == [2] * (N - 1) + [3]
    assert labels.tolist() == [int(inv.labels[s]) for s in sources]


def test_neighbours_are_deterministic_and_move_with_sigma(generator, targets):
    inv = invert(generator, *targets, steps=0, restarts=1)
    a, la = neighbour_images(generator, inv, 30, sigma=0.7, seed=1)
    b, lb = neighbour_images(generator, inv, 30, sigma=0.7, seed=1, batch_size=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    c, lc = neighbour_images(generator, inv, 30, sigma=0.0, seed=1)
    np.testing.assert_array_equal(la, lc)  # same sources, only the noise differs
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 1.0
    d, _ = neighbour_images(generator, inv, 30, sigma=0.7, seed=2)
    assert not np.array_equal(a, d)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda g, im, lb: invert(g, im, lb[:-1]), "one label per image"),
        (lambda g, im, lb: invert(g, im[:0], lb[:0]), "at least one image"),
        (lambda g, im, lb: invert(g, im, lb, restarts=0), "restarts >= 1"),
        (lambda g, im, lb: neighbour_images(g, invert(g, im, lb, steps=0), 5, sigma=-0.1), "sigma >= 0"),
        (lambda g, im, lb: neighbour_images(g, invert(g, im, lb, steps=0), 0, sigma=0.5), "num_samples >= 1"),
    ],
)
def test_bad_arguments_raise_a_config_error(generator, targets, call, match):
    with pytest.raises(ConfigError, match=match):
        call(generator, *targets)
