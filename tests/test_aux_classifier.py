"""The auxiliary classifier (``model.aux_weight``, AC-GAN): config checks, D's class logits, and the train step."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from synthgen.config import ExperimentConfig, ModelConfig, from_dict, load_config
from synthgen.errors import ConfigError
from synthgen.models import build_models
from synthgen.train.step import build_gan_step

CDCGAN = {"name": "cdcgan", "z_dim": 8, "arch": {"g_channels": 8, "d_channels": 8}}
STYLEGAN = {"name": "stylegan", "z_dim": 8, "arch": {"channel_base": 64, "channel_max": 16, "w_dim": 32}}
SHAPES = {"cdcgan": (1, 28, 28), "stylegan": (1, 32, 32)}
CODES = [{"name": "thickness", "kind": "continuous"}, {"name": "style", "kind": "categorical", "size": 4}]
K = 3  # classes


def _models(model: dict, seed: int = 0, **extra) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(seed)
    g, d = build_models(from_dict(ModelConfig, {**model, **extra}), SHAPES[model["name"]], K)
    return g.eval(), d.eval()


@pytest.mark.parametrize("name", ["mlp", "dcgan"])
def test_aux_on_a_model_without_a_q_head_is_refused_naming_the_fix(name):
    with pytest.raises(ConfigError) as err:
        from_dict(ExperimentConfig, {"model": {"name": name, "aux_weight": 0.5}})
    assert all(w in str(err.value) for w in ["model.aux_weight", name, "model.aux_weight=0", "cdcgan"]), str(err.value)


def test_aux_weight_loads_from_overrides_and_a_negative_one_is_refused():
    assert load_config(ExperimentConfig).model.aux_weight == 0.0
    assert load_config(ExperimentConfig, None, ["model.aux_weight=0.5"]).model.aux_weight == 0.5
    with pytest.raises(ConfigError, match="model.aux_weight"):
        load_config(ExperimentConfig, None, ["model.aux_weight=-1"])


@pytest.mark.parametrize("model", [CDCGAN, STYLEGAN])
@pytest.mark.parametrize("codes, code_cols", [([], 0), (CODES, 5)])
@torch.no_grad()
def test_d_predicts_class_logits_after_the_codes_and_g_is_unchanged(model, codes, code_cols):
    g, d = _models(model, aux_weight=0.5, codes=codes)
    g0, _ = _models(model, codes=codes)
    assert g.state_dict().keys() == g0.state_dict().keys()
    assert all(torch.equal(g.state_dict()[k], g0.state_dict()[k]) for k in g0.state_dict())  # G built first, same draws
    x, y = torch.rand(4, *SHAPES[model["name"]]) * 2 - 1, torch.tensor([0, 1, 2, 0])
    logits, q = d(x, y, with_codes=True)
    assert logits.shape == (4,) and q.shape == (4, code_cols + K)
    assert torch.equal(d(x, y), logits)


@pytest.mark.parametrize("model", [CDCGAN, STYLEGAN])
def test_aux_classifier_learns_the_real_classes_in_the_train_step(model):
    """Three classes told apart by where a bright bar is: the real-image cross-entropy falls far below log(3)."""
    torch.manual_seed(0)
    cfg = from_dict(
        ExperimentConfig,
        {
            "model": {**model, "aux_weight": 1.0, "ema_start": 0},
            "train": {"batch_size": 24, "lr_g": 2e-3, "lr_d": 2e-3},
        },
    )
    shape = SHAPES[model["name"]]
    step = build_gan_step(cfg, shape, K, torch.device("cpu"), announce=False)
    y = torch.arange(24) % K
    real = -torch.ones(24, *shape)
    third = shape[1] // K
    for i, k in enumerate(y.tolist()):
        real[i, :, k * third : (k + 1) * third, :] = 1.0  # [C, H, W]: class k lights the k-th horizontal band
    losses = []
    for i in range(60):
        step(real, y, i)
        losses.append(float(step.last_aux_loss))
    assert abs(np.mean(losses[:2]) - math.log(K)) < 0.5  # starts near chance
    assert np.mean(losses[-5:]) < 0.25 * math.log(K), losses[-5:]
    assert all(p.grad is not None for p in step.D.parameters())  # the head trains inside the D step
    assert all(p.grad is not None for p in step.G.parameters())


def test_aux_off_keeps_the_step_without_a_q_head():
    cfg = from_dict(ExperimentConfig, {"model": {**CDCGAN}})
    step = build_gan_step(cfg, (1, 28, 28), K, torch.device("cpu"), announce=False)
    assert not step.with_q and not hasattr(step.D, "q_head")
    step(torch.rand(8, 1, 28, 28) * 2 - 1, torch.arange(8) % K, 0)
    assert float(step.last_aux_loss) == 0.0
