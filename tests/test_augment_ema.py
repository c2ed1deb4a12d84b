"""DiffAugment ops and the generator EMA (including a real DistributedDataParallel wrapper)."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
from torch import nn

from synthgen.config import ModelConfig
from synthgen.errors import ConfigError
from synthgen.models import AUGMENTS, EMA, build_models, diff_augment, parse_policy

ALL_OPS = "translation,cutout,color"


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- DiffAugment


@pytest.mark.parametrize("policy", ["translation", "cutout", "color", ALL_OPS])
@pytest.mark.parametrize("shape", [(5, 1, 28, 28), (5, 3, 32, 32)])
def test_augment_keeps_shape_and_dtype(policy: str, shape: tuple[int, ...]) -> None:
    x = torch.rand(*shape) * 2 - 1
    out = diff_augment(x, policy, _gen(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert not torch.equal(out, x)  # each op really changes a random batch


@pytest.mark.parametrize("policy", ["", "  ", ","])
def test_empty_policy_is_identity(policy: str) -> None:
    x = torch.randn(2, 1, 8, 8)
    assert diff_augment(x, policy) is x


def test_unknown_op_lists_valid_ops() -> None:
    with pytest.raises(ConfigError) as err:
        diff_augment(torch.zeros(1, 1, 8, 8), "translation,flip")
    assert "flip" in str(err.value)
    for op in AUGMENTS:
        assert op in str(err.value)


def test_parse_policy_strips_spaces() -> None:
    assert parse_policy(" color , translation ") == ["color", "translation"]


@pytest.mark.parametrize("policy", ["translation", "cutout", "color", ALL_OPS])
def test_augment_is_differentiable(policy: str) -> None:
    x = (torch.rand(4, 3, 16, 16) * 2 - 1).requires_grad_(True)
    out = diff_augment(x, policy, _gen(1))
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_augment_is_reproducible_with_a_generator() -> None:
    x = torch.rand(6, 3, 16, 16)
    a = diff_augment(x, ALL_OPS, _gen(7))
    b = diff_augment(x, ALL_OPS, _gen(7))
    c = diff_augment(x, ALL_OPS, _gen(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_translation_only_moves_pixels_within_each_image() -> None:
    n, h = 8, 16
    x = torch.arange(n * h * h, dtype=torch.float32).view(n, 1, h, h) + 1.0  # unique, non-zero values
    out = diff_augment(x, "translation", _gen(2))
    for i in range(n):
        values = out[i].flatten()
        moved = values[values != 0]  # zeros are the fill of shifted-in border pixels
        assert torch.isin(moved, x[i].flatten()).all()
        assert moved.numel() >= (h - 2 * 2) ** 2  # max shift 1/8 of 16 = 2 px per axis


def test_cutout_zeroes_at_most_a_half_side_square() -> None:
    x = torch.ones(8, 1, 16, 16)
    out = diff_augment(x, "cutout", _gen(3))
    zeros = (out == 0).flatten(1).sum(1)  # [N]
    assert ((zeros > 0) & (zeros <= 8 * 8)).all()
    assert ((out == 0) | (out == 1)).all()


def test_color_on_grayscale_is_a_per_image_affine_map() -> None:
    # brightness and contrast are affine in x; saturation is skipped for one channel
    x = torch.rand(4, 1, 8, 8)
    out = diff_augment(x, "color", _gen(4))
    for i in range(4):
        xs, ys = x[i].flatten(), out[i].flatten()
        a = torch.stack([xs, torch.ones_like(xs)], 1)  # [P, 2]
        coef = torch.linalg.lstsq(a, ys[:, None]).solution  # [2, 1]
        torch.testing.assert_close(a @ coef, ys[:, None], atol=1e-5, rtol=1e-5)
        assert 0.5 - 1e-5 <= coef[0].item() <= 1.5 + 1e-5  # contrast factor range


# ---------------------------------------------------------------- EMA


def _small_generator() -> nn.Module:
    torch.manual_seed(0)
    G, _ = build_models(ModelConfig(name="cdcgan", arch={"g_channels": 8, "d_channels": 8}, z_dim=8), (1, 28, 28), 10)
    return G


def _perturb_and_run(G: nn.Module) -> None:
    """Change every parameter and the BN running statistics, as one training step would."""
    with torch.no_grad():
        for p in G.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    G.train()
    G(torch.randn(6, G.z_dim), torch.arange(6))  # updates BN running stats


def test_ema_is_a_frozen_eval_copy() -> None:
    G = _small_generator()
    ema = EMA(G, decay=0.9, start=0)
    assert ema.module is not G
    assert not ema.module.training
    assert all(not p.requires_grad for p in ema.module.parameters())
    _perturb_and_run(G)  # the copy must not follow G until update()
    assert not torch.equal(ema.module.fc.weight, G.fc.weight)


def test_ema_copies_before_start() -> None:
    G = _small_generator()
    ema = EMA(G, decay=0.9, start=5)
    _perturb_and_run(G)
    ema.update(G, step=4)
    for key, value in G.state_dict().items():
        assert torch.equal(ema.module.state_dict()[key], value), key


def test_ema_follows_the_decay_formula_after_start() -> None:
    G = _small_generator()
    decay = 0.9
    ema = EMA(G, decay=decay, start=5)
    _perturb_and_run(G)
    ema.update(G, step=5)  # step >= start: average
    old = {k: v.clone() for k, v in ema.module.named_parameters()}
    for _ in range(2):
        _perturb_and_run(G)
        ema.update(G, step=6)
        for name, p in G.named_parameters():
            expected = decay * old[name] + (1 - decay) * p.detach()
            torch.testing.assert_close(dict(ema.module.named_parameters())[name], expected)
            old[name] = expected
    # buffers (BN running stats) are copied, not averaged
    for name, b in G.named_buffers():
        assert torch.equal(dict(ema.module.named_buffers())[name], b), name


def test_ema_state_dict_round_trip() -> None:
    G = _small_generator()
    ema = EMA(G, decay=0.5, start=0)
    _perturb_and_run(G)
    ema.update(G, step=1)
    other = EMA(_small_generator(), decay=0.5, start=0)
    other.load_state_dict(ema.state_dict())
    for key, value in ema.state_dict().items():
        assert torch.equal(other.state_dict()[key], value)


def test_recalibrate_bn_fits_running_stats_to_the_averaged_weights() -> None:
    G = _small_generator()
    ema = EMA(G, decay=0.5, start=0)
    for _ in range(3):  # averaged weights now differ from G, whose running stats update() copies
        _perturb_and_run(G)
        ema.update(G, step=1)
    z, labels = torch.randn(256, G.z_dim), torch.arange(256) % 10

    def eval_vs_batch_stats() -> float:
        with torch.no_grad():
            ema.module.eval()
            a = ema.module(z, labels)
            ema.module.train()
            b = ema.module(z, labels)  # batch statistics of the averaged weights themselves
            ema.module.eval()
        return (a - b).abs().mean().item()

    before = eval_vs_batch_stats()
    ema.recalibrate_bn(num_batches=8, batch_size=64, seed=0)
    assert not ema.module.training
    stats = {k: v.clone() for k, v in ema.module.named_buffers()}
    after = eval_vs_batch_stats()  # (its train-mode pass moves the stats again; re-done below)
    assert after < 0.25 * before
    # deterministic: a second recalibration with the same seed gives identical statistics
    ema.recalibrate_bn(num_batches=8, batch_size=64, seed=0)
    for k, v in ema.module.named_buffers():
        assert torch.equal(v, stats[k]), k
    momenta = {b.momentum for b in ema.module.modules() if isinstance(b, nn.BatchNorm2d)}
    assert momenta == {0.1}  # the cumulative-average setting is undone


@pytest.mark.parametrize("decay,start", [(1.0, 0), (-0.1, 0), (0.9, -1)])
def test_ema_rejects_bad_settings(decay: float, start: int) -> None:
    with pytest.raises(ConfigError, match="ema"):
        EMA(_small_generator(), decay=decay, start=start)


def test_ema_unwraps_distributed_data_parallel(tmp_path) -> None:
    # a real one-process gloo group, so DDP wraps G exactly as in a Ray Train worker
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        G = _small_generator()
        ddp = nn.parallel.DistributedDataParallel(G)
        ema = EMA(ddp, decay=0.5, start=0)
        assert not isinstance(ema.module, nn.parallel.DistributedDataParallel)
        before = ema.module.fc.weight.clone()
        _perturb_and_run(G)
        ema.update(ddp, step=1)
        torch.testing.assert_close(ema.module.fc.weight, 0.5 * before + 0.5 * G.fc.weight.detach())
        assert set(ema.module.state_dict()) == set(G.state_dict())  # no "module." prefix
    finally:
        dist.destroy_process_group()
