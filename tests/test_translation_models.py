"""pix2pix and cyclegan (synthgen.models.pix2pix / cyclegan): losses, the image pool, and that pix2pix learns."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from synthgen.config import DataConfig
from synthgen.data import load_images
from synthgen.data.pairs import edge_pairs
from synthgen.models.cyclegan import CycleGAN, CycleGANOptions, ImagePool, lsgan
from synthgen.models.pix2pix import Pix2Pix, Pix2PixOptions


def test_lsgan_is_the_squared_distance_to_the_target():
    logits = torch.tensor([0.0, 1.0, 3.0])
    assert lsgan(logits, True).item() == pytest.approx((1 + 0 + 4) / 3)
    assert lsgan(logits, False).item() == pytest.approx((0 + 1 + 9) / 3)


def test_the_pool_fills_first_then_swaps_about_half_and_repeats_under_its_seed():
    def run(seed: int) -> list[torch.Tensor]:
        pool = ImagePool(4, torch.Generator().manual_seed(seed))
        return [pool.query(torch.full((2, 1, 1, 1), float(k))) for k in range(20)]

    first = run(0)
    assert [b.flatten().tolist() for b in first[:2]] == [[0.0, 0.0], [1.0, 1.0]]  # filling: the fakes themselves
    later = torch.cat(first[2:]).flatten()
    fresh = torch.cat([torch.full((2,), float(k)) for k in range(2, 20)])
    swapped = (later != fresh).float().mean().item()
    assert 0.25 < swapped < 0.75  # about half come from the history
    assert all(torch.equal(a, b) for a, b in zip(first, run(0)))
    assert not all(torch.equal(a, b) for a, b in zip(first, run(1)))
    x = torch.rand(3, 1, 2, 2)
    assert ImagePool(0).query(x) is x


def test_cyclegan_identity_terms_apply_only_between_alike_channels():
    torch.manual_seed(0)
    small = CycleGANOptions(g_channels=8, g_blocks=1, d_channels=8)
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    model = CycleGAN(small, (3, 3), 32)
    with_id = model.g_loss(a, b)[0]
    model.opts = dataclasses.replace(small, identity_weight=0.0)
    assert model.g_loss(a, b)[0] < with_id  # the identity L1 adds to the loss
    gray_to_rgb = CycleGAN(small, (1, 3), 32)
    loss, fake_b, fake_a = gray_to_rgb.g_loss(a[:, :1], b)
    gray_to_rgb.opts = dataclasses.replace(small, identity_weight=0.0)
    assert torch.isclose(gray_to_rgb.g_loss(a[:, :1], b)[0], loss)  # no identity term across channel counts
    assert fake_b.shape == (2, 3, 32, 32) and fake_a.shape == (2, 1, 32, 32)
    assert torch.isfinite(gray_to_rgb.d_loss(a[:, :1], b, fake_a, fake_b))


@pytest.fixture(scope="module")
def outline_pairs(fashion_mnist_root):
    data = load_images(DataConfig(root=fashion_mnist_root, max_images=64, resolution=32), "train")
    pairs = edge_pairs(data)
    to = lambda x: torch.from_numpy(x).float() / 127.5 - 1  # noqa: E731
    return to(pairs.a.images), to(pairs.b.images), torch.from_numpy(pairs.a.labels)


def test_pix2pix_learns_to_render_outlines(outline_pairs):
    """200 steps on 64 real Fashion-MNIST outline -> image pairs: G's L1 to the targets falls well below the start
    and below what the best constant image achieves, while D's loss stays finite."""
    torch.manual_seed(0)
    a, b, y = outline_pairs
    model = Pix2Pix(Pix2PixOptions(g_channels=16, d_channels=16), 1, 1, 32)
    opt_g = torch.optim.Adam(model.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(model.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    model.G.eval()
    with torch.no_grad():
        start = (model.G(a) - b).abs().mean().item()
    model.G.train()
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        idx = torch.randint(len(a), (16,), generator=gen)
        fake = model.G(a[idx])
        d_loss = model.d_loss(a[idx], b[idx], fake)
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        g_loss = model.g_loss(a[idx], b[idx], fake)
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
    model.G.eval()
    with torch.no_grad():
        end = (model.G(a) - b).abs().mean().item()
    constant = (b - b.median()).abs().mean().item()  # the best constant image's L1
    assert torch.isfinite(d_loss) and end < 0.5 * start and end < 0.7 * constant


def test_class_conditioning_reaches_both_networks(outline_pairs):
    a, b, y = outline_pairs
    model = Pix2Pix(Pix2PixOptions(g_channels=8, d_channels=8, class_conditional=True), 1, 1, 32, num_classes=10)
    assert model.G.conditional and model.D.conditional
    fake = model.G(a[:4], y[:4])
    assert torch.isfinite(model.d_loss(a[:4], b[:4], fake, y[:4])) and torch.isfinite(
        model.g_loss(a[:4], b[:4], fake, y[:4])
    )
    assert np.isfinite(fake.detach().numpy()).all()
