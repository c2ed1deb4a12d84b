"""GAN losses: registry, hand-computed values, and the wgan-gp gradient penalty."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from synthgen.config import ModelConfig
from synthgen.errors import ConfigError
from synthgen.models import LOSSES, LeCam, build_models, get_loss


class LinearCritic(nn.Module):
    """D(x) = <w, flatten(x)>: its input gradient is w everywhere, so ||grad|| = ||w||."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return x.flatten(1) @ self.w  # [N]


def test_registry_names() -> None:
    assert sorted(LOSSES) == ["bce", "hinge", "wgan-gp"]


def test_unknown_loss_lists_valid_names() -> None:
    with pytest.raises(ConfigError) as err:
        get_loss("lsgan")
    assert "lsgan" in str(err.value)
    for name in ("bce", "hinge", "wgan-gp"):
        assert name in str(err.value)


def test_hinge_is_zero_beyond_the_margins() -> None:
    loss = get_loss("hinge")
    assert loss.d_loss(torch.full((4,), 2.0), torch.full((4,), -2.0)).item() == 0.0


def test_hinge_values() -> None:
    loss = get_loss("hinge")
    # relu(1 - 0.5) = 0.5 and relu(1 + 0.25) = 1.25 for the first pair; 0 and 0 for the second
    d = loss.d_loss(torch.tensor([0.5, 3.0]), torch.tensor([0.25, -1.5]))
    assert d.item() == pytest.approx((0.5 + 0.0) / 2 + (1.25 + 0.0) / 2)
    assert loss.g_loss(torch.tensor([1.0, 3.0])).item() == pytest.approx(-2.0)


def test_bce_matches_hand_computation() -> None:
    loss = get_loss("bce")
    sig = lambda v: 1.0 / (1.0 + math.exp(-v))  # noqa: E731
    real, fake = [0.5, -2.0], [-1.0, 3.0]
    expected_d = -sum(math.log(sig(r)) for r in real) / 2 - sum(math.log(1.0 - sig(f)) for f in fake) / 2
    expected_g = -sum(math.log(sig(f)) for f in fake) / 2
    assert loss.d_loss(torch.tensor(real), torch.tensor(fake)).item() == pytest.approx(expected_d, rel=1e-6)
    assert loss.g_loss(torch.tensor(fake)).item() == pytest.approx(expected_g, rel=1e-6)


def test_bce_is_stable_for_huge_logits() -> None:
    loss = get_loss("bce")
    d = loss.d_loss(torch.tensor([1e4]), torch.tensor([-1e4]))
    g = loss.g_loss(torch.tensor([-1e4]))
    assert d.item() == pytest.approx(0.0, abs=1e-6)
    assert g.item() == pytest.approx(1e4, rel=1e-6)


def test_wgan_values() -> None:
    loss = get_loss("wgan-gp")
    assert loss.d_loss(torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])).item() == pytest.approx(-2.5)
    assert loss.g_loss(torch.tensor([-1.0, 0.0])).item() == pytest.approx(0.5)


@pytest.mark.parametrize("name", ["bce", "hinge"])
def test_losses_without_penalty_return_zero(name: str) -> None:
    critic = LinearCritic(torch.randn(12) * 5)
    p = get_loss(name).penalty(critic, torch.randn(3, 1, 2, 6), torch.randn(3, 1, 2, 6), None, 10.0)
    assert p.shape == () and p.item() == 0.0


def test_gradient_penalty_vanishes_for_unit_norm_linear_critic() -> None:
    w = torch.randn(12)
    critic = LinearCritic(w / w.norm())
    real, fake = torch.randn(5, 1, 3, 4), torch.randn(5, 1, 3, 4)
    p = get_loss("wgan-gp").penalty(critic, real, fake, None, 10.0)
    assert p.item() == pytest.approx(0.0, abs=1e-8)


def test_gradient_penalty_for_non_unit_critic_and_differentiable() -> None:
    w = torch.randn(12)
    critic = LinearCritic(3.0 * w / w.norm())  # ||grad|| = 3 everywhere -> weight * (3 - 1)^2
    real, fake = torch.randn(5, 1, 3, 4), torch.randn(5, 1, 3, 4)
    p = get_loss("wgan-gp").penalty(critic, real, fake, None, 10.0)
    assert p.item() == pytest.approx(40.0, rel=1e-5)
    p.backward()
    # d/dw of 10 * (||w|| - 1)^2 = 20 * (||w|| - 1) * w / ||w||
    expected = 20.0 * 2.0 * critic.w.detach() / 3.0
    torch.testing.assert_close(critic.w.grad, expected, rtol=1e-4, atol=1e-5)


def test_gradient_penalty_on_a_real_discriminator() -> None:
    torch.manual_seed(0)
    _, D = build_models(ModelConfig(name="cdcgan", loss="wgan-gp"), (1, 28, 28), 10)
    real, fake = torch.rand(4, 1, 28, 28) * 2 - 1, torch.rand(4, 1, 28, 28) * 2 - 1
    labels = torch.tensor([0, 1, 2, 3])
    loss = get_loss("wgan-gp")
    D.eval()  # no power-iteration update between the two calls, so equal RNG -> equal penalty
    p1 = loss.penalty(D, real, fake, labels, 10.0, generator=torch.Generator().manual_seed(3))
    p2 = loss.penalty(D, real, fake, labels, 10.0, generator=torch.Generator().manual_seed(3))
    assert p1.item() > 0 and p1.item() == p2.item()
    p1.backward()
    # every weight shapes the input gradient (biases do not, so they get none)
    weights = {n: p.grad for n, p in D.named_parameters() if n.endswith("weight.original")}
    assert len(weights) == 5  # three convs, the linear head, the projection embedding
    for name, grad in weights.items():
        assert grad is not None and grad.abs().sum() > 0, name


@pytest.mark.parametrize("name", ["bce", "hinge", "wgan-gp"])
def test_uniform_interface_gives_differentiable_scalars(name: str) -> None:
    loss = get_loss(name)
    critic = LinearCritic(torch.randn(12))
    real, fake = torch.randn(3, 1, 3, 4), torch.randn(3, 1, 3, 4, requires_grad=True)
    d_real, d_fake = critic(real), critic(fake.detach())
    total_d = loss.d_loss(d_real, d_fake) + loss.penalty(critic, real, fake, None, 1.0)
    total_g = loss.g_loss(critic(fake))
    assert total_d.shape == () and total_g.shape == ()
    total_d.backward()
    assert critic.w.grad is not None and critic.w.grad.abs().sum() > 0
    total_g.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0


def test_gradient_penalty_through_distributed_data_parallel(tmp_path) -> None:
    # the training loop passes its DDP-wrapped D; the double backward must work through DDP's reducer
    import torch.distributed as dist

    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        cfg = ModelConfig(name="cdcgan", loss="wgan-gp", arch={"d_channels": 8, "g_channels": 8})
        _, D = build_models(cfg, (1, 28, 28), 10)
        D.eval()  # freeze the power iteration so both runs see the same weights
        ddp = nn.parallel.DistributedDataParallel(D)
        loss = get_loss("wgan-gp")
        real, fake = torch.rand(4, 1, 28, 28), torch.rand(4, 1, 28, 28)
        labels = torch.tensor([0, 1, 2, 3])
        grads = []
        for net in (D, ddp):
            D.zero_grad(set_to_none=True)
            out = net(torch.cat([real, fake]), torch.cat([labels, labels]))  # [8]
            total = loss.d_loss(out[:4], out[4:]) + loss.penalty(
                net, real, fake, labels, 10.0, generator=torch.Generator().manual_seed(0)
            )
            total.backward()
            grads.append([p.grad.clone() for p in D.parameters()])
        for plain, wrapped in zip(*grads):
            torch.testing.assert_close(plain, wrapped)
    finally:
        dist.destroy_process_group()


def test_lecam_matches_hand_computation() -> None:
    reg = LeCam(weight=0.5, decay=0.0)  # decay 0: the averages are this batch's means
    d_real, d_fake = torch.tensor([1.0, 2.0]), torch.tensor([-1.0, 0.0])
    # ema_real = 1.5, ema_fake = -0.5: relu(real - ema_fake) = [1.5, 2.5]; relu(ema_real - fake) = [2.5, 1.5]
    expected = 0.5 * ((1.5**2 + 2.5**2) / 2 + (2.5**2 + 1.5**2) / 2)
    assert reg(d_real, d_fake).item() == pytest.approx(expected)


def test_lecam_running_averages_follow_the_decay() -> None:
    reg = LeCam(weight=1.0, decay=0.5)
    reg(torch.tensor([2.0]), torch.tensor([-2.0]))
    reg(torch.tensor([4.0]), torch.tensor([0.0]))
    # 0.5 * (0.5 * 0 + 0.5 * 2) + 0.5 * 4 = 2.5 ; 0.5 * (0.5 * 0 + 0.5 * -2) + 0 = -0.5
    assert reg.ema_real.item() == pytest.approx(2.5) and reg.ema_fake.item() == pytest.approx(-0.5)


def test_lecam_is_zero_and_stateless_when_off() -> None:
    reg = LeCam(weight=0.0)
    out = reg(torch.tensor([5.0]), torch.tensor([-5.0]))
    assert out.item() == 0.0 and reg.ema_real.item() == 0.0 and reg.ema_fake.item() == 0.0


def test_lecam_gradient_pulls_logits_towards_the_other_sides_average() -> None:
    reg = LeCam(weight=1.0, decay=0.0)
    d_real = torch.tensor([3.0, 3.0], requires_grad=True)
    d_fake = torch.tensor([-3.0, -3.0], requires_grad=True)
    reg(d_real, d_fake).backward()
    # descending the regulariser lowers real logits and raises fake ones: D cannot drift them apart
    assert (d_real.grad > 0).all() and (d_fake.grad < 0).all()


def test_lecam_state_round_trips_through_a_weights_only_checkpoint(tmp_path) -> None:
    reg = LeCam(weight=0.3)
    reg(torch.tensor([1.0, 3.0]), torch.tensor([-2.0, 0.0]))
    torch.save({"lecam": reg.state_dict()}, tmp_path / "m.pt")
    back = LeCam(weight=0.3)
    back.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True)["lecam"])
    args = (torch.tensor([0.5]), torch.tensor([0.25]))
    assert back(*args).item() == pytest.approx(reg(*args).item())
    assert back.ema_real.item() == pytest.approx(reg.ema_real.item()) != 0.0


def test_negative_lecam_weight_is_a_config_error() -> None:
    from synthgen.config import ExperimentConfig

    cfg = ExperimentConfig(model=ModelConfig(lecam_weight=-0.1))
    with pytest.raises(ConfigError, match="model.lecam_weight"):
        cfg.validate()
