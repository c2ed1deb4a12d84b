"""The ``stylegan`` model: shapes, resolutions, determinism, W space, conditioning, D, R1, and real train steps.

Tiny widths throughout, so every test runs in seconds on one CPU thread.
"""

from __future__ import annotations

import dataclasses
import io

import pytest
import torch
from torch import nn

from synthgen.config import ExperimentConfig, ModelConfig, from_dict
from synthgen.errors import ConfigError
from synthgen.models import build_models, get_model_spec
from synthgen.models.losses import r1_penalty
from synthgen.models.stylegan import StyleGANOptions, StyleGenerator
from synthgen.models.stylegan_layers import StyleConv, class_minibatch_stddev, minibatch_stddev, modulated_conv2d

K = 10  # classes
TINY = {"channel_base": 64, "channel_max": 16, "w_dim": 16, "mapping_layers": 1}
Z_DIM = 8


def _build(size: int = 32, channels: int = 3, **arch) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    return build_models(ModelConfig(name="stylegan", z_dim=Z_DIM, arch={**TINY, **arch}), (channels, size, size), K)


def _set_noise(G: nn.Module, strength: float) -> None:
    """Give every noise input a visible strength (they start at 0, as in StyleGAN2)."""
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, StyleConv):
                m.noise_strength.fill_(strength)


# --- shapes, resolutions, options -----------------------------------------------------------------------


@pytest.mark.parametrize("size", [32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_output_shapes_and_range(size: int, channels: int) -> None:
    G, D = _build(size, channels)
    z, y = torch.randn(3, Z_DIM), torch.tensor([0, 4, 9])
    x = G(z, y)
    assert x.shape == (3, channels, size, size) and x.dtype == torch.float32
    assert x.min() >= -1.0 and x.max() <= 1.0
    assert x.std() > 0.05  # not a constant image
    assert G.synthesis.num_ws == G.num_ws == 2 + 2 * (size.bit_length() - 3)  # 2 at 4 px + 2 per doubling
    logits = D(x, y)
    assert logits.shape == (3,) and torch.isfinite(logits).all()


def test_contract_attributes_and_registration() -> None:
    spec = get_model_spec("stylegan")
    assert spec.conditional is True and spec.options is StyleGANOptions
    assert ModelConfig(name="stylegan").arch == dataclasses.asdict(StyleGANOptions())
    G, D = _build(32, 1)
    assert isinstance(G, StyleGenerator)
    assert (G.z_dim, G.num_classes, G.image_shape, G.w_dim) == (Z_DIM, K, (1, 32, 32), 16)
    assert (D.num_classes, D.image_shape) == (K, (1, 32, 32))
    assert G.conditional is True and D.conditional is True
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in G.modules())


@pytest.mark.parametrize("size", [28, 48, 16, 256])
def test_unsupported_resolution_is_a_config_error_naming_the_allowed_ones(size: int) -> None:
    with pytest.raises(ConfigError) as err:
        _build(size, 1)
    msg = str(err.value)
    assert str(size) in msg and "32, 64, 128" in msg and "data.resolution=32" in msg


def test_arch_options_reach_the_networks() -> None:
    small_g, small_d = _build(32, 3)
    big_g, big_d = _build(32, 3, channel_base=256, channel_max=64, w_dim=32, mapping_layers=3)
    assert small_g.synthesis.const.shape == (16, 4, 4)  # min(64 // 4, 16)
    assert big_g.synthesis.const.shape == (64, 4, 4)  # min(256 // 4, 64)
    assert len(big_g.mapping.fcs) == 3 and big_g.mapping.fcs[-1].weight.shape == (32, 32)
    assert big_g.mapping(torch.randn(2, Z_DIM), torch.tensor([1, 2])).shape == (2, 32)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(big_g) > 3 * count(small_g) and count(big_d) > 3 * count(small_d)


def test_unknown_or_invalid_arch_keys_are_rejected() -> None:
    with pytest.raises(ConfigError, match=r"valid keys are: \['channel_base', 'channel_max', 'cond_fade_start'"):
        ModelConfig(name="stylegan", arch={"g_channels": 64})
    with pytest.raises(ConfigError, match="model.arch.channel_base"):
        ModelConfig(name="stylegan", arch={"channel_base": 0})
    with pytest.raises(ConfigError, match="model.arch.mapping_lr_mul"):
        ModelConfig(name="stylegan", arch={"mapping_lr_mul": 0.0})


def test_linear_output_is_unsquashed_in_training_and_clamped_in_eval_and_tanh_stays_the_default() -> None:
    assert ModelConfig(name="stylegan").arch["output"] == "tanh"  # older checkpoints sample as they did
    tanh_g, _ = _build(32, 1)
    lin_g, _ = _build(32, 1, output="linear")  # same seed: the same weights (the option adds none)
    with torch.no_grad():
        for m in (tanh_g, lin_g):
            m.synthesis.rgb4.bias.fill_(-3.0)  # push part of the image far below -1, as a black background does
        z, y = torch.randn(6, Z_DIM), torch.arange(6)
        pre = lin_g.train()(z, y)  # noise strengths start at 0: train mode is deterministic here
        assert pre.min() < -1.5  # unsquashed
        # (eval mode runs the fused modulated conv: equal up to float rounding)
        assert torch.allclose(lin_g.eval()(z, y), pre.clamp(-1.0, 1.0), atol=1e-5)
        assert torch.allclose(tanh_g.eval()(z, y), pre.tanh(), atol=1e-5)
    with pytest.raises(ConfigError, match=r"model.arch.output='sigmoid'.*'tanh', 'linear'"):
        ModelConfig(name="stylegan", arch={"output": "sigmoid"})


# --- determinism and noise ------------------------------------------------------------------------------


def test_eval_mode_is_deterministic_and_batch_independent() -> None:
    G, _ = _build(32, 3)
    _set_noise(G, 0.5)  # so that a random (non-const) eval noise would show
    G.eval()
    z, y = torch.randn(6, Z_DIM), torch.tensor([0, 1, 2, 3, 4, 5])
    with torch.no_grad():
        a, b = G(z, y), G(z, y)
        assert torch.equal(a, b)  # the same bytes every call
        for i in (0, 3, 5):
            alone = G(z[i : i + 1], y[i : i + 1])[0]
            # not bit-equal: CPU kernels block differently per batch size (cdcgan's too; the sampler uses
            # canonical spans), but any cross-sample coupling (batch norm, per-batch noise) is far above this
            torch.testing.assert_close(alone, a[i], rtol=0, atol=1e-5)
        other = G(torch.cat([z[:3], torch.randn(3, Z_DIM)]), y)  # change rows 3..5 only
        torch.testing.assert_close(other[:3], a[:3], rtol=0, atol=1e-5)


def test_noise_is_random_in_train_mode_and_const_in_eval_mode() -> None:
    G, _ = _build(32, 3)
    z, y = torch.randn(2, Z_DIM), torch.tensor([1, 7])
    G.train()
    with torch.no_grad():
        assert torch.equal(G(z, y), G(z, y))  # strength 0 at init: no noise reaches the image yet
        _set_noise(G, 0.5)
        assert (G(z, y) - G(z, y)).abs().max() > 1e-3
        G.eval()
        assert torch.equal(G(z, y), G(z, y))


def test_the_const_noise_is_saved_with_the_weights() -> None:
    G, _ = _build(32, 1)
    _set_noise(G, 0.5)
    torch.manual_seed(123)  # a different init, so the copy's noise and weights come from the file only
    G2, _ = build_models(ModelConfig(name="stylegan", z_dim=Z_DIM, arch=TINY), (1, 32, 32), K)
    assert any(k.endswith("noise_const") for k in G.state_dict())
    buf = io.BytesIO()
    torch.save(G.state_dict(), buf)
    buf.seek(0)
    G2.load_state_dict(torch.load(buf, weights_only=True))
    G.eval(), G2.eval()
    z, y = torch.randn(4, Z_DIM), torch.arange(4)
    with torch.no_grad():
        assert torch.equal(G(z, y), G2(z, y))


def test_fused_and_unfused_modulated_conv_agree() -> None:
    torch.manual_seed(0)
    x, w, s = torch.randn(3, 5, 8, 8), torch.randn(4, 5, 3, 3), torch.randn(3, 5)
    for demod in (True, False):
        fused = modulated_conv2d(x, w, s, demod, fused=True)
        plain = modulated_conv2d(x, w, s, demod, fused=False)
        torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-5)
        # reference: sample 1 alone with its own modulated (and demodulated) weight
        w1 = w * s[1][None, :, None, None]  # [O, I, 3, 3]
        if demod:
            w1 = w1 / w1.square().sum(dim=(1, 2, 3), keepdim=True).sqrt()
        ref = nn.functional.conv2d(x[1:2], w1, padding=1)[0]
        torch.testing.assert_close(fused[1], ref, rtol=1e-4, atol=1e-4)
    demodded = modulated_conv2d(torch.randn(64, 5, 8, 8), w, s[:1].expand(64, -1) * 7.0, True, fused=True)
    assert 0.7 < demodded.std().item() < 1.3  # demodulation undoes the style's scale


# --- conditioning and W space ---------------------------------------------------------------------------


def test_class_conditioning_changes_the_output() -> None:
    G, _ = _build(32, 3)
    G.eval()
    z = torch.randn(1, Z_DIM).repeat(K, 1)  # the same z for every class
    with torch.no_grad():
        x = G(z, torch.arange(K))  # [K, 3, 32, 32]
    diffs = (x[:, None] - x[None]).abs().flatten(2).amax(-1)  # [K, K]
    assert diffs[~torch.eye(K, dtype=torch.bool)].min() > 1e-3


def test_w_space_api() -> None:
    G, _ = _build(32, 3)
    _set_noise(G, 0.3)
    G.eval()
    z, y = torch.randn(4, Z_DIM), torch.tensor([2, 2, 5, 9])
    with torch.no_grad():
        w = G.mapping(z, y)  # [4, w_dim]
        assert w.shape == (4, G.w_dim)
        assert torch.equal(G.synthesis(w), G(z, y))
        assert torch.equal(G.synthesis(w[:, None].repeat(1, G.num_ws, 1)), G(z, y))  # W+ with equal rows = W
        w_plus = w[:, None].repeat(1, G.num_ws, 1)
        w_plus[:, -1] = G.mapping(torch.randn(4, Z_DIM), y)  # a different style for the last toRGB only
        assert (G.synthesis(w_plus) - G(z, y)).abs().max() > 1e-4
        mean = G.class_mean_w(y, num=64)
        assert torch.equal(mean, G.class_mean_w(y, num=64))  # deterministic
        assert torch.equal(mean[0], mean[1]) and (mean[0] - mean[2]).abs().max() > 1e-4
        z_ref = torch.randn(64, Z_DIM, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(mean[3], G.mapping(z_ref, torch.full((64,), 9)).mean(0))
        assert torch.equal(G.truncate(w, y, 1.0, num=64), w)
        torch.testing.assert_close(G.truncate(w, y, 0.0, num=64), mean)
        torch.testing.assert_close(G.truncate(w, y, 0.5, num=64), (w + mean) / 2)
        torch.testing.assert_close(G.truncate(w_plus, y, 0.0, num=64), mean[:, None].expand_as(w_plus))
    with pytest.raises(ValueError, match="synthesis needs w"):
        G.synthesis(torch.randn(2, G.w_dim + 1))
    with pytest.raises(ValueError, match="labels"):
        G(z, None)


# --- discriminator --------------------------------------------------------------------------------------


def test_discriminator_gradients_flow_to_input_and_every_parameter() -> None:
    G, D = _build(32, 3)
    y = torch.arange(K)
    x = G(torch.randn(K, Z_DIM), y)
    x.retain_grad()
    D(x, y).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for net in (G, D):
        for name, p in net.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


def test_discriminator_uses_the_label() -> None:
    _, D = _build(32, 3)
    x = torch.randn(4, 3, 32, 32)
    a, b = D(x, torch.zeros(4, dtype=torch.long)), D(x, torch.full((4,), 3))
    assert (a - b).abs().min() > 1e-5


def test_minibatch_stddev_groups_consecutive_samples() -> None:
    x = torch.cat([torch.zeros(4, 2, 4, 4), torch.randn(4, 2, 4, 4) * 3.0])  # [8, 2, 4, 4]: a flat "real" half
    out = minibatch_stddev(x, group_size=4)
    assert out.shape == (8, 3, 4, 4) and torch.equal(out[:, :2], x)
    assert out[:4, 2].max() < 1e-3  # the flat half's group sees no spread: no mixing with the other half
    assert out[4:, 2].min() > 1.0
    assert minibatch_stddev(x[:3], group_size=4).shape == (3, 3, 4, 4)  # 3 samples: groups of 3
    assert minibatch_stddev(x[:1], group_size=4)[:, 2].max() < 1e-3  # one sample: its own group


def test_class_minibatch_stddev_compares_only_samples_of_one_class_in_one_chunk() -> None:
    same = torch.randn(1, 2, 4, 4).expand(3, -1, -1, -1)  # a collapsed class: three identical samples
    spread = torch.randn(3, 2, 4, 4) * 3.0  # another class, varied
    x = torch.cat([same[:2], spread[:2], same[2:], spread[2:]])  # [6, 2, 4, 4], labels 0 0 1 1 0 1
    y = torch.tensor([0, 0, 1, 1, 0, 1])
    out = class_minibatch_stddev(x, y, num_classes=2, chunk_size=6)
    assert out.shape == (6, 3, 4, 4) and torch.equal(out[:, :2], x)
    assert out[y == 0, 2].max() < 1e-3  # identical class-mates: no spread, however varied the other class is
    expected = spread.var(dim=0, unbiased=False).add(1e-8).sqrt().mean()
    assert torch.allclose(out[y == 1, 2], expected.expand(3, 4, 4), rtol=1e-4)
    # chunks of 3: sample 4 (class 0) is alone in its chunk's class, so it sees no spread either
    chunked = class_minibatch_stddev(x, y, num_classes=2, chunk_size=3)
    assert chunked[4, 2].max() < 1e-3 and chunked[5, 2].min() > 1.0
    assert minibatch_stddev(x, group_size=6)[y == 0, 2].min() > 1.0  # the class-blind mbstd cannot see it


def test_d_with_class_mbstd_tells_a_collapsed_class_from_a_varied_one() -> None:
    _, D = _build(32, 1, mbstd_class_chunk=8)
    y = torch.tensor([0, 1] * 4)
    x = torch.randn(8, 1, 32, 32)
    collapsed = x.clone()
    collapsed[y == 0] = x[0]  # class 0's samples made identical; class 1's untouched
    with torch.no_grad():
        a, b = D(x, y), D(collapsed, y)
    assert (a - b)[y == 1].abs().max() < 1e-4 * a.abs().max().clamp(min=1.0)  # class 1's statistic unchanged
    assert (a - b)[y == 0].abs().min() > 1e-5  # class 0's moved, even sample 0's own image is unchanged
    with pytest.raises(ConfigError, match="mbstd_class_chunk"):
        from_dict(ModelConfig, {"name": "stylegan", "arch": {"mbstd_class_chunk": -1}})


def test_a_class_mbstd_chunk_that_does_not_divide_the_batch_is_refused_naming_the_fix() -> None:
    cfg = from_dict(
        ExperimentConfig,
        {"model": {"name": "stylegan", "arch": {"mbstd_class_chunk": 32}}, "train": {"batch_size": 48}},
    )
    with pytest.raises(ConfigError) as err:
        cfg.validate()
    assert all(w in str(err.value) for w in ["model.arch.mbstd_class_chunk=32", "train.batch_size=48", "e.g. 48"])
    dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, batch_size=64)).validate()  # 32 divides 64


# --- R1 ---------------------------------------------------------------------------------------------------


def test_r1_penalty_of_a_linear_critic_is_analytic() -> None:
    w = torch.randn(3 * 4 * 4)
    critic = lambda x, labels: x.flatten(1) @ w  # noqa: E731  ||grad|| = ||w|| for every sample
    value = r1_penalty(critic, torch.randn(5, 3, 4, 4), None, gamma=0.4)
    assert value.item() == pytest.approx(0.5 * 0.4 * w.square().sum().item(), rel=1e-5)
    doubled = r1_penalty(critic, torch.randn(5, 3, 4, 4), None, gamma=0.4, augment=lambda x: 2.0 * x)
    assert doubled.item() == pytest.approx(4 * value.item(), rel=1e-5)  # the gradient goes through the augment


def test_r1_penalty_matches_an_independent_autograd_computation() -> None:
    _, D = _build(32, 1)
    D.double()
    real, y = torch.randn(4, 1, 32, 32, dtype=torch.float64), torch.tensor([0, 3, 3, 8])
    gamma = 0.7
    value = r1_penalty(D, real, y, gamma)
    jac = torch.autograd.functional.jacobian(lambda x: D(x, y), real)  # [4 outputs, 4, 1, 32, 32]
    grad_of_sum = jac.sum(dim=0)  # d(sum_j D(x)_j) / dx_i: minibatch stddev couples the samples
    expected = 0.5 * gamma * grad_of_sum.flatten(1).square().sum(dim=1).mean()
    torch.testing.assert_close(value, expected, rtol=1e-9, atol=1e-12)
    value.backward()  # differentiable w.r.t. D's weights (double backward)
    assert D.from_rgb.weight.grad is not None and D.from_rgb.weight.grad.abs().sum() > 0


# --- the real train step --------------------------------------------------------------------------------


def _step_config(name: str, **model) -> ExperimentConfig:
    arch = TINY if name == "stylegan" else {"g_channels": 8, "d_channels": 8}
    return from_dict(
        ExperimentConfig,
        {
            "data": {"resolution": 32, "channels": 3},
            "model": {"name": name, "z_dim": Z_DIM, "arch": arch, "ema_start": 0, **model},
            "train": {"batch_size": 8},
        },
    )


def _run_steps(cfg: ExperimentConfig, steps: int, seed: int = 0):
    from synthgen.train.step import build_gan_step

    torch.manual_seed(seed)
    step_fn = build_gan_step(cfg, (3, 32, 32), K, torch.device("cpu"))
    data = torch.Generator().manual_seed(1)
    losses = []
    for step in range(1, steps + 1):
        real = torch.rand(8, 3, 32, 32, generator=data) * 2 - 1
        y = torch.randint(K, (8,), generator=data)
        losses.append(tuple(float(v) for v in step_fn(real, y, step)))
    return step_fn, losses


def test_stylegan_train_steps_with_r1_diffaugment_and_lecam_stay_finite() -> None:
    cfg = _step_config(
        "stylegan", loss="bce", r1_gamma=1.0, r1_interval=2, diffaugment="translation,color", lecam_weight=0.1
    )
    before = _build(32, 3)[0].state_dict()  # the same seed as _run_steps: the initial weights
    step_fn, losses = _run_steps(cfg, 4)
    assert all(torch.isfinite(torch.tensor(pair)).all() for pair in losses)
    after = step_fn.G.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if not k.endswith("noise_const"))
    with torch.no_grad():  # the EMA generator samples deterministically
        ema = step_fn.ema.module
        z, y = torch.randn(2, Z_DIM), torch.tensor([0, 1])
        assert not ema.training and torch.equal(ema(z, y), ema(z, y))


@pytest.mark.parametrize("name", ["stylegan", "cdcgan"])
def test_lazy_r1_runs_only_on_its_steps_and_leaves_the_others_untouched(name: str) -> None:
    _, off = _run_steps(_step_config(name, loss="bce"), 2)
    _, on = _run_steps(_step_config(name, loss="bce", r1_gamma=5.0, r1_interval=2), 2)
    assert on[0] == off[0]  # step 1: no R1, the same bytes as with R1 off (no extra RNG draws either)
    assert on[1][0] > off[1][0]  # step 2: the penalty (>= 0, scaled by the interval) is in the D loss


def test_lazy_r1_is_called_every_interval_and_scaled_by_it(monkeypatch) -> None:
    import synthgen.models.losses as losses

    calls = []

    def spy(D, real, labels, gamma, augment=None):
        calls.append((gamma, augment is not None, tuple(real.shape), tuple(labels.shape)))
        return real.new_tensor(0.25)

    _, off = _run_steps(_step_config("cdcgan", diffaugment="translation"), 6)
    monkeypatch.setattr(losses, "r1_penalty", spy)
    _, on = _run_steps(_step_config("cdcgan", diffaugment="translation", r1_gamma=0.5, r1_interval=3), 6)
    assert calls == [(0.5, True, (8, 3, 32, 32), (8,))] * 2  # steps 3 and 6, on the augmented reals
    assert on[:2] == off[:2]
    assert on[2][0] == pytest.approx(off[2][0] + 3 * 0.25, abs=1e-6)  # scaled by the interval


def test_r1_config_values_are_validated() -> None:
    from synthgen.config import load_config

    with pytest.raises(ConfigError, match="model.r1_gamma"):
        load_config(ExperimentConfig, None, ["model.r1_gamma=-1"])
    with pytest.raises(ConfigError, match="model.r1_interval"):
        load_config(ExperimentConfig, None, ["model.r1_interval=0"])


def test_train_refuses_a_resolution_stylegan_cannot_build_before_any_worker_starts(tmp_path, capsys):
    from synthgen.cli import main

    code = main(
        [
            "train",
            "--set",
            "model.name=stylegan",
            "--set",
            f"run.storage_path={tmp_path}",
            "--set",
            "run.name=sg28",
            "--set",
            "data.max_images=50",
        ]
    )
    assert code == 2  # a config error on the driver, not TrainingFailedError (1) from inside a Ray worker
    assert "data.resolution=32" in capsys.readouterr().err
    assert not (tmp_path / "sg28").exists()
