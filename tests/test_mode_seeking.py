"""The mode-seeking regulariser (``model.mode_seeking_weight``, MSGAN): the loss, its config, and the train step."""

from __future__ import annotations

import pytest
import torch

from synthgen.config import ExperimentConfig, from_dict, load_config
from synthgen.errors import ConfigError
from synthgen.models.losses import mode_seeking_loss
from synthgen.train.step import build_gan_step

STYLEGAN = {
    "name": "stylegan",
    "z_dim": 8,
    "ema_start": 0,
    "arch": {"channel_base": 64, "channel_max": 16, "w_dim": 16, "mapping_layers": 1},
}
K = 3  # classes


def test_mode_seeking_loss_is_the_inverse_of_image_distance_over_latent_distance():
    a, z_a, z_b = torch.zeros(4, 1, 8, 8), torch.zeros(4, 5), torch.full((4, 5), 2.0)
    near, far = torch.full((4, 1, 8, 8), 0.5), torch.full((4, 1, 8, 8), 1.0)
    assert mode_seeking_loss(a, near, z_a, z_b).item() == pytest.approx(1 / (0.5 / 2.0 + 1e-5))
    assert mode_seeking_loss(a, far, z_a, z_b).item() == pytest.approx(1 / (1.0 / 2.0 + 1e-5))
    assert mode_seeking_loss(a, a.clone(), z_a, z_b).item() == pytest.approx(1e5)  # collapse: the largest loss


def test_mode_seeking_weight_loads_from_overrides_and_a_negative_one_is_refused():
    assert load_config(ExperimentConfig).model.mode_seeking_weight == 0.0
    assert load_config(ExperimentConfig, None, ["model.mode_seeking_weight=1"]).model.mode_seeking_weight == 1.0
    with pytest.raises(ConfigError, match="model.mode_seeking_weight"):
        load_config(ExperimentConfig, None, ["model.mode_seeking_weight=-1"])


def _within_class_spread(G: torch.nn.Module) -> float:
    """Mean per-pixel std over 16 z of each class (eval mode: constant noise, so only z varies)."""
    G.eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        z = torch.randn(16, 8, generator=gen)
        spread = [G(z, torch.full((16,), k)).std(dim=0).mean().item() for k in range(K)]
    G.train()
    return sum(spread) / K


def _trained_spread(weight: float) -> float:
    torch.manual_seed(0)
    cfg = from_dict(
        ExperimentConfig,
        {"model": {**STYLEGAN, "mode_seeking_weight": weight}, "train": {"batch_size": 16, "lr_g": 2e-3, "lr_d": 2e-3}},
    )
    step = build_gan_step(cfg, (1, 32, 32), K, torch.device("cpu"), announce=False)
    real = torch.zeros(16, 1, 32, 32)  # every real image alike: nothing but the regulariser rewards spread
    for i in range(15):
        step(real, torch.arange(16) % K, i)
    return _within_class_spread(step.G)


def test_the_train_step_with_mode_seeking_spreads_each_class_more_than_without():
    without, with_ms = _trained_spread(0.0), _trained_spread(1.0)
    assert with_ms > 1.5 * without, (with_ms, without)
