"""One GAN optimisation step (D on real+fake, then G), shared by the Ray Train loop and the benchmark."""

from __future__ import annotations

import torch
from torch import nn

from synthgen.checkpoint import TrainingState
from synthgen.config import ExperimentConfig


class GANStep:
    """Holds the networks and optimisers and runs one step.

    ``G_train`` / ``D_train`` are the DDP wrappers (or the bare modules with one worker). Inside the D
    step the generator runs unwrapped under no_grad; inside the G step the discriminator runs unwrapped
    and frozen — so DDP only syncs the gradients of the network being trained.
    """

    def __init__(
        self,
        cfg: ExperimentConfig,
        G: nn.Module,
        D: nn.Module,
        G_train: nn.Module,
        D_train: nn.Module,
        num_classes: int,
        device: torch.device,
    ) -> None:
        from synthgen.models import EMA, LeCam, get_loss

        t, m = cfg.train, cfg.model
        self.cfg, self.G, self.D, self.G_train, self.D_train = cfg, G, D, G_train, D_train
        self.num_classes, self.device = num_classes, device
        self.opt_g = torch.optim.Adam(G.parameters(), lr=t.lr_g, betas=(t.beta1, t.beta2))
        self.opt_d = torch.optim.Adam(D.parameters(), lr=t.lr_d, betas=(t.beta1, t.beta2))
        self.ema = EMA(G, decay=m.ema_decay, start=m.ema_start)
        self.loss_fn = get_loss(m.loss)
        self.lecam = LeCam(m.lecam_weight)
        self.autocast = torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    def training_state(self) -> TrainingState:
        """The objects a checkpoint saves and a restart restores (the bare networks, not DDP wrappers)."""
        return TrainingState(
            generator=self.G, discriminator=self.D, generator_ema=self.ema.module,
            opt_g=self.opt_g, opt_d=self.opt_d, lecam=self.lecam,
        )

    def __call__(self, real: torch.Tensor, y_real: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Train on ``real`` [B, C, H, W] in [-1, 1] with labels ``y_real`` [B]; return (d_loss, g_loss)."""
        from synthgen.models import diff_augment
        from synthgen.models.losses import r1_penalty

        m, bs, dev = self.cfg.model, real.shape[0], self.device
        aug = m.diffaugment

        # D step: one DDP forward on real+fake, so DDP sees one forward per backward.
        z = torch.randn(bs, m.z_dim, device=dev)
        y_fake = torch.randint(self.num_classes, (bs,), device=dev)
        with torch.no_grad(), self.autocast:
            fake = self.G(z, y_fake).float()  # [B, C, H, W]
        with self.autocast:
            both = diff_augment(torch.cat([real, fake]), aug)  # [2B, C, H, W]
            logits = self.D_train(both, torch.cat([y_real, y_fake])).float()  # [2B]
            d_loss = self.loss_fn.d_loss(logits[:bs], logits[bs:])
        d_loss = d_loss + self.loss_fn.penalty(self.D, real, fake, y_real, m.gp_weight)
        d_loss = d_loss + self.lecam(logits[:bs], logits[bs:])
        if m.r1_gamma > 0.0 and step % m.r1_interval == 0:
            # Lazy R1 (StyleGAN2): every r1_interval steps, scaled by the interval so its average strength
            # is r1_gamma; on the images D sees (augmented), in float32 like the gradient penalty above.
            augment = (lambda x: diff_augment(x, aug)) if aug else None
            d_loss = d_loss + m.r1_interval * r1_penalty(self.D, real, y_real, m.r1_gamma, augment)
        if self.cfg.train.nan_at_step == step:
            d_loss = d_loss * float("nan")
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()

        # G step: D unwrapped and frozen.
        self.D.requires_grad_(False)
        z = torch.randn(bs, m.z_dim, device=dev)
        y_fake = torch.randint(self.num_classes, (bs,), device=dev)
        with self.autocast:
            fake = self.G_train(z, y_fake)  # [B, C, H, W]
            g_loss = self.loss_fn.g_loss(self.D(diff_augment(fake, aug), y_fake).float())
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        self.D.requires_grad_(True)
        self.ema.update(self.G, step)
        return d_loss.detach(), g_loss.detach()


def build_gan_step(
    cfg: ExperimentConfig,
    image_shape: tuple[int, int, int],
    num_classes: int,
    device: torch.device,
    distributed: bool = False,
) -> GANStep:
    """Build fresh networks for ``cfg.model`` on ``device`` and the step that trains them.

    Args:
        cfg: the resolved experiment config.
        image_shape: (C, H, W) of the training images.
        num_classes: number of labels.
        device: where the networks live.
        distributed: wrap G and D in DDP (inside an initialised process group, e.g. a Ray Train worker).

    Raises:
        ConfigError: unknown model or unsupported image shape.
    """
    from synthgen.models import build_models

    G, D = build_models(cfg.model, image_shape, num_classes)
    G, D = G.to(device), D.to(device)
    G_train, D_train = G, D
    if distributed:
        # one wrapper per network: a single wrapper around both breaks gradient sync
        ddp_kwargs = {"device_ids": [device.index]} if device.type == "cuda" else {}
        G_train = nn.parallel.DistributedDataParallel(G, **ddp_kwargs)
        D_train = nn.parallel.DistributedDataParallel(D, **ddp_kwargs)
    return GANStep(cfg, G, D, G_train, D_train, num_classes, device)
