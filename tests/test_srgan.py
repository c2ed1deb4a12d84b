"""srgan (synthgen.models.srgan) and its derived pairs (data.pairs: downsample): shapes, the bicubic start, the input
degradation, the losses, clear errors, and that an L1-trained upscaler beats bicubic on held-out real images."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torchmetrics.functional.image import peak_signal_noise_ratio

from synthgen.config import DataConfig, ExperimentConfig, load_config
from synthgen.data import load_images
from synthgen.data.pairs import downsample, downsample_pairs
from synthgen.errors import ConfigError
from synthgen.models import build_translation_models
from synthgen.models.classifier import SmallCNN
from synthgen.models.srgan import SRGANObjective, SRGANOptions, bicubic, build_srgan, degrade
from synthgen.pixels import to_float

TINY = SRGANOptions(g_channels=8, g_blocks=1, d_channels=8)


@pytest.mark.parametrize("factor,channels,upsampler", [(2, 1, "stages"), (4, 3, "stages"), (4, 3, "subpixel")])
def test_an_untrained_upscaler_is_bicubic_and_has_the_factor_s_shape(factor, channels, upsampler):
    torch.manual_seed(0)
    opts = dataclasses.replace(TINY, factor=factor, upsampler=upsampler)
    G, D = build_srgan(opts, (channels, 8, 8), (channels, 8 * factor, 8 * factor))
    a = torch.rand(3, channels, 8, 8) * 1.6 - 0.8
    out = G.translate(a)
    assert out.shape == (3, channels, 8 * factor, 8 * factor)
    assert torch.allclose(out, bicubic(a, factor).clamp(-1, 1))  # the zero-initialised tail adds nothing yet
    assert D(out).shape[:2] == (3, 1)


def test_a_subpixel_upscaler_runs_no_conv_at_the_output_side_and_a_bad_upsampler_is_refused():
    G, _ = build_srgan(dataclasses.replace(TINY, upsampler="subpixel"), (3, 8, 8), (3, 32, 32))
    seen: list[tuple[int, ...]] = []
    for m in G.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_hook(lambda _m, inp, _out: seen.append(tuple(inp[0].shape[-2:])))
    G(torch.zeros(1, 3, 8, 8))
    assert seen and set(seen) == {(8, 8)}  # every conv reads the 8 px input side; only the shuffle makes 32 px
    with pytest.raises(ConfigError, match=r"model.arch.upsampler='espcn' is invalid: one of \['stages', 'subpixel'\]"):
        SRGANOptions(upsampler="espcn")


def test_the_registry_refuses_sides_that_do_not_match_the_factor():
    model = load_config(ExperimentConfig, None, ["model.name=srgan", "data.pairs=downsample"]).model
    G, _ = build_translation_models(model, (3, 8, 8), (3, 32, 32), 10)
    assert G.factor == 4
    with pytest.raises(ConfigError, match=r"x4 upscales A images of side s to B images of side 4s.*\(3, 16, 16\)"):
        build_translation_models(model, (3, 16, 16), (3, 32, 32), 10)
    with pytest.raises(ConfigError, match="power of two"):
        build_translation_models(model, (3, 6, 6), (3, 24, 24), 10)


def test_downsample_pairs_need_an_upscaler_and_an_upscaler_needs_them():
    with pytest.raises(ConfigError, match="model.name='pix2pix' is not one"):
        load_config(ExperimentConfig, None, ["model.name=pix2pix", "data.pairs=downsample"])
    with pytest.raises(ConfigError, match="set data.pairs=downsample"):
        load_config(ExperimentConfig, None, ["model.name=srgan", "data.pairs=edges"])
    with pytest.raises(ConfigError, match=r"model.arch.factor=3 is invalid: srgan upscales by one of \[2, 4\]"):
        load_config(ExperimentConfig, None, ["model.name=srgan", "data.pairs=downsample", "model.arch.factor=3"])


def test_downsample_is_antialiased_and_keeps_flat_images_flat():
    flat = np.full((2, 3, 32, 32), 77, dtype=np.uint8)
    assert np.array_equal(downsample(flat, 4), np.full((2, 3, 8, 8), 77, dtype=np.uint8))
    checker = np.indices((32, 32)).sum(axis=0) % 2 * 255  # 1-px checkerboard: pure aliasing without a filter
    small = downsample(checker.astype(np.uint8)[None, None], 2)
    assert small.shape == (1, 1, 16, 16) and small.dtype == np.uint8
    assert np.abs(small[0, 0, 2:-2, 2:-2].astype(int) - 128).max() <= 2  # averaged to mid-gray, not 0 / 255


def test_downsample_pairs_keep_labels_and_rows(fashion_mnist_root):
    data = load_images(DataConfig(root=fashion_mnist_root, max_images=20, resolution=32), "train")
    pairs = downsample_pairs(data, 4)
    assert pairs.a.images.shape == (20, 1, 8, 8) and pairs.b is data
    assert np.array_equal(pairs.a.labels, data.labels)
    assert np.array_equal(pairs.a.images[3], downsample(data.images[3:4], 4)[0])  # row for row


def test_degradation_is_drawn_from_the_step_generator_and_off_by_default():
    a = torch.rand(4, 3, 8, 8) * 2 - 1
    assert degrade(a, TINY, torch.Generator().manual_seed(0)) is a
    opts = dataclasses.replace(TINY, degrade_blur=1.5, degrade_noise=0.1)
    one = degrade(a, opts, torch.Generator().manual_seed(5))
    assert torch.equal(one, degrade(a, opts, torch.Generator().manual_seed(5)))
    assert not torch.equal(one, degrade(a, opts, torch.Generator().manual_seed(6)))
    blur_only = degrade(a, dataclasses.replace(TINY, degrade_blur=3.0), torch.Generator().manual_seed(1))
    assert blur_only.diff(dim=-1).abs().mean() < a.diff(dim=-1).abs().mean()  # smoother than the input


def test_the_feature_loss_needs_the_classifier_and_counts_only_when_weighted():
    torch.manual_seed(0)
    G, D = build_srgan(TINY, (1, 8, 8), (1, 32, 32))
    a, b = torch.rand(2, 1, 8, 8) * 2 - 1, torch.rand(2, 1, 32, 32) * 2 - 1
    objective = SRGANObjective(TINY)
    assert objective.needs_classifier
    fake = objective.generate(G, a, b, torch.zeros(2, dtype=torch.long))
    with pytest.raises(RuntimeError, match="no classifier"):
        objective.g_loss(D, a, b, None, fake)
    objective.classifier = SmallCNN(1, 10, 32, width=4).eval().requires_grad_(False)
    with_features = objective.g_loss(D, a, b, None, fake)
    plain = SRGANObjective(dataclasses.replace(TINY, feature_weight=0.0))
    assert not plain.needs_classifier and plain.g_loss(D, a, b, None, fake) < with_features
    l1_only = SRGANObjective(dataclasses.replace(TINY, feature_weight=0.0, adversarial_weight=0.0))
    assert l1_only.g_loss(D, a, b, None, fake).item() == pytest.approx((fake - b).abs().mean().item())


@pytest.mark.parametrize("upsampler", ["stages", "subpixel"])
def test_an_l1_trained_upscaler_beats_bicubic_on_held_out_images(fashion_mnist_root, upsampler):
    cfg = DataConfig(root=fashion_mnist_root, resolution=32)
    train = downsample_pairs(load_images(dataclasses.replace(cfg, max_images=1000), "train"), 4)
    test = downsample_pairs(load_images(dataclasses.replace(cfg, max_images=300), "test"), 4)
    torch.manual_seed(0)
    opts = SRGANOptions(g_channels=16, g_blocks=2, feature_weight=0.0, adversarial_weight=0.0, upsampler=upsampler)
    G, D = build_srgan(opts, (1, 8, 8), (1, 32, 32))
    objective, opt = SRGANObjective(opts), torch.optim.Adam(G.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(150):
        idx = torch.randint(len(train), (16,), generator=gen).numpy()
        a, b = to_float(torch.from_numpy(train.a.images[idx])), to_float(torch.from_numpy(train.b.images[idx]))
        loss = objective.g_loss(D, a, b, None, objective.generate(G, a, b, None))
        opt.zero_grad()
        loss.backward()
        opt.step()
    a, b = to_float(torch.from_numpy(test.a.images)), to_float(torch.from_numpy(test.b.images))
    with torch.no_grad():
        psnr_sr = peak_signal_noise_ratio(G.translate(a), b, data_range=2.0).item()
    psnr_bicubic = peak_signal_noise_ratio(bicubic(a, 4).clamp(-1, 1), b, data_range=2.0).item()
    assert psnr_sr > psnr_bicubic + 0.5, (psnr_sr, psnr_bicubic)
