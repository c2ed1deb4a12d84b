"""GAN losses behind one interface, in an explicit registry (``model.loss`` names one).

Interface (what the training loop calls, and all it calls)::

    loss = get_loss(cfg.model.loss)
    d_total = loss.d_loss(d_real, d_fake) + loss.penalty(D, real, fake, labels, cfg.model.gp_weight)
    g_total = loss.g_loss(d_fake)

* ``d_loss(d_real [N], d_fake [N]) -> scalar``: what D minimises (``d_fake`` from detached fakes).
* ``g_loss(d_fake [N]) -> scalar``: what G minimises (``d_fake`` with the graph through G).
* ``penalty(D, real [N,C,H,W], fake [N,C,H,W], labels [N], weight) -> scalar``: an extra D term, already
  multiplied by ``weight``; a zero tensor for losses without one, so callers never branch on the loss.

Registered: ``bce`` (non-saturating), ``hinge``, ``wgan-gp``. ``LeCam`` (``model.lecam_weight``) and
``r1_penalty`` (``model.r1_gamma``, applied lazily by the train step) are discriminator regularisers that
work with any of them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synthgen.registries import lookup, register


class GANLoss:
    """Base class: no penalty. Subclasses implement ``d_loss`` and ``g_loss``."""

    name = "base"

    def d_loss(self, d_real: Tensor, d_fake: Tensor) -> Tensor:
        """Discriminator loss from logits on real [N] and (detached) fake [N] images."""
        raise NotImplementedError

    def g_loss(self, d_fake: Tensor) -> Tensor:
        """Generator loss from D's logits [N] on fresh fakes."""
        raise NotImplementedError

    def penalty(
        self,
        D: nn.Module,
        real: Tensor,
        fake: Tensor,
        labels: Tensor | None,
        weight: float,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Extra discriminator term, already scaled by ``weight``; zero for this loss."""
        return real.new_zeros(())


LOSSES: dict[str, type[GANLoss]] = {}


def register_loss(name: str) -> Callable[[type[GANLoss]], type[GANLoss]]:
    """Register a ``GANLoss`` subclass under ``name``."""

    def wrap(cls: type[GANLoss]) -> type[GANLoss]:
        register(LOSSES, name, cls, "loss")
        cls.name = name
        return cls

    return wrap


def get_loss(name: str) -> GANLoss:
    """Return a fresh loss object for ``name``.

    Raises:
        ConfigError: unknown name; the message lists the registered ones.
    """
    return lookup(LOSSES, name, "model.loss", "loss")()


@register_loss("bce")
class BCELoss(GANLoss):
    """Non-saturating GAN: D minimises BCE(real, 1) + BCE(fake, 0); G minimises BCE(fake, 1)."""

    def d_loss(self, d_real: Tensor, d_fake: Tensor) -> Tensor:
        # BCE-with-logits(x, 1) = softplus(-x) and (x, 0) = softplus(x), in a numerically stable form
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()

    def g_loss(self, d_fake: Tensor) -> Tensor:
        return F.softplus(-d_fake).mean()


@register_loss("hinge")
class HingeLoss(GANLoss):
    """Hinge GAN (Lim & Ye 2017; SNGAN): D minimises relu(1 - real) + relu(1 + fake); G minimises -fake."""

    def d_loss(self, d_real: Tensor, d_fake: Tensor) -> Tensor:
        return F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()

    def g_loss(self, d_fake: Tensor) -> Tensor:
        return -d_fake.mean()


@register_loss("wgan-gp")
class WGANGPLoss(GANLoss):
    """WGAN-GP (Gulrajani et al. 2017): D minimises fake - real + weight * (||grad D(x_hat)|| - 1)^2."""

    def d_loss(self, d_real: Tensor, d_fake: Tensor) -> Tensor:
        return d_fake.mean() - d_real.mean()

    def g_loss(self, d_fake: Tensor) -> Tensor:
        return -d_fake.mean()

    def penalty(
        self,
        D: nn.Module,
        real: Tensor,
        fake: Tensor,
        labels: Tensor | None,
        weight: float,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Gradient penalty on random interpolates of real and (detached) fake images.

        Args:
            D: the critic, called as ``D(x, labels)`` (a DDP wrapper is fine).
            real: [N, C, H, W] real images.
            fake: [N, C, H, W] generated images (detached here).
            labels: [N] class labels passed to D (ignored by unconditional critics).
            weight: the penalty weight (``model.gp_weight``).
            generator: optional RNG for the interpolation factors.

        Returns:
            Scalar ``weight * mean((||dD/dx_hat||_2 - 1)^2)``, differentiable w.r.t. D's parameters.
        """
        n = real.shape[0]
        eps = torch.rand(n, 1, 1, 1, device=real.device, dtype=real.dtype, generator=generator)  # [N,1,1,1]
        x_hat = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)  # [N, C, H, W]
        out = D(x_hat, labels)  # [N]
        # create_graph: the penalty itself must be differentiated w.r.t. D's weights
        (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)  # [N, C, H, W]
        norms = grad.flatten(1).norm(2, dim=1)  # [N]
        return weight * ((norms - 1.0) ** 2).mean()


def lsgan(logits: Tensor, real: bool) -> Tensor:
    """Least-squares GAN loss (Mao et al. 2017): mean (D(x) - target)^2 with target 1 for real, 0 for fake."""
    return F.mse_loss(logits, torch.full_like(logits, 1.0 if real else 0.0))


def mode_seeking_loss(fake_a: Tensor, fake_b: Tensor, z_a: Tensor, z_b: Tensor, eps: float = 1e-5) -> Tensor:
    """MSGAN's mode-seeking term (Mao et al. 2019): small when images move as much as their latents do.

    Each row of ``fake_a`` and ``fake_b`` shares a class and differs in z; the loss is
    ``1 / (mean|fake_a - fake_b| / mean|z_a - z_b| + eps)``, so a generator that draws one class alike
    whatever z is (within-class collapse) pays a large loss, and one that spreads its images pays little.

    Args:
        fake_a, fake_b: [P, C, H, W] fakes of the same labels.
        z_a, z_b: [P, Z] their latents.
        eps: keeps the loss finite for identical images.

    Returns:
        Scalar loss (to be scaled by ``model.mode_seeking_weight``).
    """
    ratio = (fake_a - fake_b).abs().mean() / (z_a - z_b).abs().mean()
    return 1.0 / (ratio + eps)


def r1_penalty(
    D: nn.Module,
    real: Tensor,
    labels: Tensor | None,
    gamma: float,
    augment: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """R1 gradient penalty (Mescheder et al. 2018; StyleGAN2): ``gamma / 2 * mean_i ||dD(x)_i / dx_i||^2`` on reals.

    It pushes D's gradient towards zero on the real data, so D cannot keep sharpening its boundary around
    the training images; this is what keeps an unnormalised D (StyleGAN's) stable.

    Args:
        D: the discriminator, called as ``D(x, labels)`` (a DDP wrapper is fine).
        real: [N, C, H, W] real images (detached here).
        labels: [N] class labels passed to D.
        gamma: the penalty weight (``model.r1_gamma``).
        augment: optional differentiable augmentation applied before D (DiffAugment), as in
            StyleGAN2-ADA: the gradient is taken w.r.t. the un-augmented image, through the augmentation.

    Returns:
        Scalar penalty, differentiable w.r.t. D's parameters.
    """
    x = real.detach().requires_grad_(True)  # [N, C, H, W]
    out = D(augment(x) if augment is not None else x, labels)  # [N]
    # create_graph: the penalty itself must be differentiated w.r.t. D's weights
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)  # [N, C, H, W]
    return 0.5 * gamma * grad.square().flatten(1).sum(dim=1).mean()


class LeCam:
    """LeCam regulariser (Tseng et al. 2021) against discriminator overfitting on small datasets.

    ``R = mean(relu(D(real) - ema_fake)^2) + mean(relu(ema_real - D(fake))^2)``, where ``ema_real`` /
    ``ema_fake`` are moving averages of D's mean logits. It pulls real and fake logits towards each other's
    running mean, so D cannot push the (memorised) training images ever further from the fakes.
    Each DDP rank keeps its own averages of its own logits; they agree to within batch noise.
    """

    def __init__(self, weight: float, decay: float = 0.99) -> None:
        self.weight, self.decay = float(weight), float(decay)
        self.ema_real = torch.zeros(())
        self.ema_fake = torch.zeros(())

    def __call__(self, d_real: Tensor, d_fake: Tensor) -> Tensor:
        """Update the averages with this step's logits (real [N], fake [N]); return ``weight * R``."""
        if self.weight == 0.0:
            return d_real.new_zeros(())
        with torch.no_grad():
            d = self.decay
            self.ema_real = d * self.ema_real.to(d_real.device) + (1 - d) * d_real.detach().float().mean()
            self.ema_fake = d * self.ema_fake.to(d_fake.device) + (1 - d) * d_fake.detach().float().mean()
        reg = F.relu(d_real - self.ema_fake).pow(2).mean() + F.relu(self.ema_real - d_fake).pow(2).mean()
        return self.weight * reg

    def state_dict(self) -> dict[str, Tensor]:
        """The running averages (CPU tensors), for checkpoints."""
        return {"ema_real": self.ema_real.detach().cpu().clone(), "ema_fake": self.ema_fake.detach().cpu().clone()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore the running averages saved by ``state_dict``."""
        self.ema_real = state["ema_real"].detach().clone().float()
        self.ema_fake = state["ema_fake"].detach().clone().float()
