"""Latent spaces declared by generators (``synthgen.models.latent``): z for the DCGAN family, W for stylegan;
truncation, inversion, variations and the encoder go through the space, never through the model's name."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthgen.config import ModelConfig
from synthgen.draws import around_noise
from synthgen.errors import ConfigError
from synthgen.invert.inversion import Inversion, around_images, invert, neighbour_images
from synthgen.models import build_models
from synthgen.models.encoder import encoder_for
from synthgen.models.latent import WSpace, ZSpace, images_from_z, latent_space
from synthgen.pixels import to_uint8

SMALL_STYLE = {"channel_base": 64, "channel_max": 16, "w_dim": 32, "mapping_layers": 2}


def _stylegan(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    g, _ = build_models(ModelConfig(name="stylegan", z_dim=16, arch=SMALL_STYLE), (1, 32, 32), 3)
    return g.eval()


def _cdcgan() -> torch.nn.Module:
    torch.manual_seed(0)
    g, _ = build_models(ModelConfig(z_dim=16, arch={"g_channels": 8, "d_channels": 8}), (1, 28, 28), 3)
    return g.eval()


def test_each_generator_declares_its_space():
    assert isinstance(latent_space(_cdcgan()), ZSpace) and latent_space(_cdcgan()).dim == 16
    space = latent_space(_stylegan())
    assert isinstance(space, WSpace) and space.name == "w" and space.dim == 32


@torch.no_grad()
def test_truncation_scales_z_for_z_models_and_pulls_w_to_the_class_mean_for_stylegan():
    z, y = torch.randn(4, 16), torch.tensor([0, 1, 2, 1])
    g = _cdcgan()
    assert torch.equal(images_from_z(latent_space(g), z, y, 0.5), g(0.5 * z, y))
    s = _stylegan()
    w, (mean, _) = s.mapping(z, y), s.class_w_stats(y)
    expect = s.synthesis(mean + 0.5 * (w - mean))
    assert torch.allclose(images_from_z(latent_space(s), z, y, 0.5), expect, atol=1e-6)
    assert not torch.allclose(images_from_z(latent_space(s), z, y, 0.5), s(z, y), atol=1e-3)
    assert torch.equal(images_from_z(latent_space(s), z, y, 1.0), s(z, y))


@torch.no_grad()
def test_w_penalty_is_about_one_for_prior_draws_and_zero_at_the_class_mean():
    s = _stylegan()
    space, y = latent_space(s), torch.full((2000,), 1)
    w = space.from_z(torch.randn(2000, 16, generator=torch.Generator().manual_seed(5)), y)
    assert abs(float(space.penalty(w, y).mean()) - 1.0) < 0.1
    mean = s.class_mean_w(y[:3])
    assert float(space.penalty(mean, y[:3]).max()) < 1e-8


def test_inversion_of_stylegan_happens_in_w_and_recovers_its_own_images():
    s = _stylegan()
    space = latent_space(s)
    y = torch.tensor([0, 1, 2, 0])
    with torch.no_grad():
        w = space.from_z(torch.randn(4, 16, generator=torch.Generator().manual_seed(1)), y)  # [4, w_dim]
        images = to_uint8(space.generate(w, y)).numpy()
    inv = invert(s, images, y.numpy(), steps=60, lr=0.05, restarts=4)
    assert inv.latents.shape == (4, 32)  # W, not z
    assert inv.mse < 0.5 * inv.start_mse
    with pytest.raises(ConfigError, match=r"\[4, 32\] \(w space\)"):
        invert(s, images, y.numpy(), steps=1, init=torch.zeros(4, 16))


@torch.no_grad()
def test_variations_in_w_are_scaled_by_the_class_spread():
    s = _stylegan()
    space = latent_space(s)
    latents = space.from_z(torch.randn(3, 16), torch.tensor([0, 1, 2]))  # [3, w_dim]
    rows, labels = np.array([0, 1, 2]), np.array([0, 1, 2])
    zero = around_images(space, latents, rows, rows, np.zeros(3, np.int64), labels, 0.0, 0, "cpu")
    assert torch.equal(zero, to_uint8(s.synthesis(latents)))  # sigma 0: the reconstructions
    var = np.array([1, 2, 3])
    eps = torch.from_numpy(around_noise(rows, var, 0, 32))  # [3, w_dim]
    std = s.class_w_stats(torch.from_numpy(labels))[1]  # [3, w_dim]
    moved = around_images(space, latents, rows, rows, var, labels, 0.5, 0, "cpu")
    assert torch.equal(moved, to_uint8(s.synthesis(latents + 0.5 * std * eps)))
    inv = Inversion(latents=latents, labels=labels, mse=0.0, start_mse=0.0)
    a, _ = neighbour_images(s, inv, 6, sigma=0.5, seed=0)
    b, _ = neighbour_images(s, inv, 6, sigma=0.5, seed=0)
    assert np.array_equal(a, b) and not np.array_equal(a[:3], zero.numpy())


def test_the_encoder_predicts_the_declared_latent():
    assert encoder_for(_stylegan()).z_dim == 32 and encoder_for(_cdcgan()).z_dim == 16


@pytest.mark.ray
def test_stylegan_samples_with_truncation_and_around_real_images_end_to_end(ray_cluster, tmp_path):
    import os

    from PIL import Image

    from synthgen.config import ExperimentConfig, from_dict
    from synthgen.sample.config import SampleConfig
    from synthgen.sample.run import run_sample
    from synthgen.sample.verify import verify_output
    from synthgen.train.untrained import write_random_checkpoint

    cfg = from_dict(
        ExperimentConfig,
        {"data": {"resolution": 32, "channels": 3}, "model": {"name": "stylegan", "z_dim": 16, "arch": SMALL_STYLE}},
    )
    run = write_random_checkpoint(str(tmp_path / "run"), cfg, class_names=("a", "b"))
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        os.makedirs(tmp_path / "real" / name)
        for k in range(3):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
                tmp_path / "real" / name / f"{k}.png"
            )
    real = tmp_path / "real.yaml"
    real.write_text(f"source: imagefolder\nroot: {tmp_path / 'real'}\nresolution: 32\nchannels: 3\n")
    common = dict(checkpoint=run, format="parquet", images_per_shard=8, num_actors=1, batch_size=64, progress=False)
    prior = run_sample(SampleConfig(out=str(tmp_path / "prior"), num_samples=12, truncation=0.5, **common))
    around = run_sample(
        SampleConfig(
            out=str(tmp_path / "around"), around=str(real), per_image=2, inversion_steps=3, encoder="none", **common
        )
    )
    assert verify_output(str(tmp_path / "prior")).ok and verify_output(str(tmp_path / "around")).ok
    assert (
        prior.manifest["total"] == 12
        and around.manifest["total"] == 12
        and prior.manifest["image_shape"] == [3, 32, 32]
    )
    chunk = np.load(tmp_path / "around" / "inversion" / "chunk-000000.npz")
    assert chunk["latents"].shape[1] == SMALL_STYLE["w_dim"]  # inverted in W
