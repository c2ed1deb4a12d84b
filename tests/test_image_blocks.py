"""synthgen.models.image_blocks: the translation models' U-Net, ResNet generator and PatchGAN (pure modules)."""

from __future__ import annotations

import pytest
import torch

from synthgen.models.image_blocks import (
    PatchDiscriminator,
    ResnetGenerator,
    UNetGenerator,
    patch_layers,
    patch_receptive_field,
)


@pytest.mark.parametrize("side", [32, 64, 128])
@pytest.mark.parametrize("channels", [(1, 3), (3, 3), (3, 1)])
def test_generators_keep_the_side_and_map_channels(side, channels):
    c_in, c_out = channels
    x = torch.rand(2, c_in, side, side) * 2 - 1
    for g in (UNetGenerator(c_in, c_out, side, base=8), ResnetGenerator(c_in, c_out, base=8, blocks=2)):
        y = g(x)
        assert y.shape == (2, c_out, side, side) and y.abs().max() <= 1.0


def test_the_unet_reaches_one_pixel_and_its_skips_carry_the_input_layout():
    torch.manual_seed(0)
    g = UNetGenerator(1, 1, 32, base=8, dropout=0.0).eval()
    assert g.levels == 5
    x = (torch.rand(1, 1, 32, 32) * 2 - 1).requires_grad_(True)
    g(x)[0, 0, 3, 3].backward()
    grad = x.grad[0, 0].abs()  # [32, 32]
    assert (grad > 0).all()  # through the 1x1 bottleneck every input pixel reaches every output pixel
    assert grad[1:6, 1:6].mean() > 2 * grad[24:, 24:].mean()  # and the skips make its own neighbourhood count most


def test_dropout_is_the_noise_source_in_train_mode_only():
    torch.manual_seed(0)
    g = UNetGenerator(1, 1, 32, base=8)
    x = torch.rand(1, 1, 32, 32)
    g.train()
    assert not torch.equal(g(x), g(x))  # two draws of the dropout masks: two variations
    g.eval()
    assert torch.equal(g(x), g(x))
    assert sum(isinstance(m, torch.nn.Dropout) for m in g.modules()) == 3  # the three innermost decoder levels


def test_an_image_is_translated_alike_whatever_else_is_in_its_batch():
    torch.manual_seed(0)
    g = UNetGenerator(3, 3, 32, base=8).eval()
    x = torch.rand(4, 3, 32, 32)
    assert torch.allclose(g(x)[:1], g(x[:1]), atol=1e-6)  # instance norm: no batch statistics


def test_class_conditioning_changes_the_output_and_needs_labels():
    torch.manual_seed(0)
    g = UNetGenerator(1, 1, 32, base=8, num_classes=10).eval()
    x = torch.rand(2, 1, 32, 32)
    a, b = g(x, torch.tensor([0, 0])), g(x, torch.tensor([1, 1]))
    assert not torch.allclose(a, b) and g.conditional
    with pytest.raises(ValueError, match="pass labels"):
        g(x)


@pytest.mark.parametrize("side,layers,field", [(32, 1, 16), (64, 2, 34), (128, 3, 70), (256, 4, 142)])
def test_the_patch_is_about_half_the_image_and_the_formula_matches_the_network(side, layers, field):
    assert patch_layers(side) == layers and patch_receptive_field(layers) == field
    d = PatchDiscriminator(3, base=8, layers=layers).eval()
    # instance norm's statistics span the image; the patch is what the convolutions see
    d.net = torch.nn.Sequential(*[torch.nn.Identity() if isinstance(m, torch.nn.InstanceNorm2d) else m for m in d.net])
    x = torch.zeros(1, 3, side, side, requires_grad=True)
    out = d(x)
    h = out.shape[-1] // 2
    out[0, 0, h, h].backward()
    rows = (x.grad[0].abs().sum(dim=(0, 2)) > 0).nonzero().flatten()
    assert int(rows.max() - rows.min() + 1) == field  # the patch one logit in the middle sees
    assert d.receptive_field == field


def test_patch_logits_are_one_per_patch_and_class_conditioning_is_optional():
    d = PatchDiscriminator(6, base=8, layers=2, num_classes=3)
    out = d(torch.rand(2, 6, 64, 64), torch.tensor([0, 2]))
    assert out.shape == (2, 1, 14, 14)  # 64 -> 32 -> 16 -> 15 -> 14 (the reference: 256 px -> 30)
