"""stylegan's class fade-in (``model.arch.cond_fade_start`` / ``cond_fade_steps``): the class condition starts at
0 (unconditional G and D) and ramps to full strength; the train step sets it, the EMA copy and checkpoints
carry it, and models without the option keep their exact state_dict keys."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from synthgen.config import ExperimentConfig, ModelConfig, from_dict
from synthgen.errors import ConfigError
from synthgen.models import build_models
from synthgen.models.stylegan import StyleGANOptions

K = 10  # classes
TINY = {"channel_base": 64, "channel_max": 16, "w_dim": 16, "mapping_layers": 1}
Z_DIM = 8
FADE = {"cond_fade_start": 10, "cond_fade_steps": 20}


def _build(**arch) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    return build_models(ModelConfig(name="stylegan", z_dim=Z_DIM, arch={**TINY, **arch}), (3, 32, 32), K)


def _label_spread(G: nn.Module, D: nn.Module) -> tuple[float, float]:
    """(largest change of G's image, of D's logit) when only the label changes: 0 = the label is ignored."""
    G.eval()
    z = torch.randn(1, Z_DIM, generator=torch.Generator().manual_seed(3)).repeat(K, 1)  # one z for every class
    with torch.no_grad():
        x = G(z, torch.arange(K))  # [K, 3, 32, 32]
        logits = D(x[:1].repeat(K, 1, 1, 1), torch.arange(K))  # [K]: one image judged as every class
    return float((x - x[:1]).abs().max()), float((logits - logits[0]).abs().max())


def test_the_ramp_is_zero_before_the_start_linear_then_one() -> None:
    opts = StyleGANOptions(**FADE)
    assert [opts.cond_strength_at(s) for s in (0, 10, 15, 20, 30, 1000)] == [0.0, 0.0, 0.25, 0.5, 1.0, 1.0]
    assert StyleGANOptions().cond_strength_at(0) == 1.0  # off: conditional from the first step


def test_at_strength_zero_g_and_d_ignore_the_label_and_at_one_they_use_it() -> None:
    G, D = _build(**FADE)
    for net in (G, D):
        net.set_training_step(0)
    g_spread, d_spread = _label_spread(G, D)
    assert g_spread < 1e-6 and d_spread < 1e-6
    for net in (G, D):
        net.set_training_step(30)
    g_spread, d_spread = _label_spread(G, D)
    assert g_spread > 1e-3 and d_spread > 1e-3


def test_d_projection_term_scales_with_the_strength() -> None:
    _, D = _build(**FADE)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(4)).repeat(K, 1, 1, 1) * 2 - 1
    spreads = []
    for step in (0, 20, 30):  # strength 0, 0.5, 1
        D.set_training_step(step)
        with torch.no_grad():
            logits = D(x, torch.arange(K))  # [K]: one image judged as every class
        spreads.append(logits - logits[0])
    assert spreads[0].abs().max() < 1e-6 < spreads[2].abs().max()
    torch.testing.assert_close(spreads[1], spreads[2] / 2, rtol=1e-4, atol=1e-6)


def test_without_the_option_the_state_dict_keys_are_unchanged_and_the_hook_does_nothing() -> None:
    G, D = _build()
    G_fade, D_fade = _build(**FADE)
    assert not any("cond_strength" in k for k in [*G.state_dict(), *D.state_dict()])
    assert set(G_fade.state_dict()) - set(G.state_dict()) == {"mapping.cond_strength"}
    assert set(D_fade.state_dict()) - set(D.state_dict()) == {"cond_strength"}
    before = _label_spread(G, D)
    for net in (G, D):
        net.set_training_step(0)
    assert _label_spread(G, D) == before


def test_the_strength_is_saved_with_the_weights() -> None:
    G, _ = _build(**FADE)
    G.set_training_step(15)
    fresh, _ = _build(**FADE)
    fresh.load_state_dict(G.state_dict())
    assert float(fresh.mapping.cond_strength) == 0.25


@pytest.mark.parametrize("key", ["cond_fade_start", "cond_fade_steps"])
def test_negative_fade_options_are_refused_naming_the_key(key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        StyleGANOptions(**{key: -1})


def test_the_train_step_sets_the_strength_and_the_ema_generator_follows() -> None:
    from synthgen.train.step import build_gan_step

    cfg = from_dict(
        ExperimentConfig,
        {
            "data": {"resolution": 32, "channels": 3},
            "model": {"name": "stylegan", "z_dim": Z_DIM, "arch": {**TINY, **FADE}, "ema_start": 0, "loss": "bce"},
            "train": {"batch_size": 8},
        },
    )
    torch.manual_seed(0)
    step_fn = build_gan_step(cfg, (3, 32, 32), K, torch.device("cpu"), announce=False)
    data = torch.Generator().manual_seed(1)
    seen = []
    for step in (5, 15, 25, 40):
        real = torch.rand(8, 3, 32, 32, generator=data) * 2 - 1
        step_fn(real, torch.randint(K, (8,), generator=data), step)
        seen.append(
            (
                float(step_fn.G.mapping.cond_strength),
                float(step_fn.D.cond_strength),
                float(step_fn.ema.module.mapping.cond_strength),
            )
        )
    assert seen == [(0.0, 0.0, 0.0), (0.25, 0.25, 0.25), (0.75, 0.75, 0.75), (1.0, 1.0, 1.0)]


def test_a_fade_that_ends_after_train_steps_is_refused_naming_the_fix() -> None:
    cfg = from_dict(ExperimentConfig, {"model": {"name": "stylegan", "arch": FADE}, "train": {"steps": 25}})
    with pytest.raises(ConfigError) as err:
        cfg.validate()
    assert all(w in str(err.value) for w in ["cond_fade_steps = 30", "train.steps=25", "raise train.steps"])
    dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=30)).validate()  # ends exactly at the last step
