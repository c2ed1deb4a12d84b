"""One GAN optimisation step (D on real+fake, then G), shared by the Ray Train loop and the benchmark.

The device fast paths (channels_last, bf16 autocast, TF32, fused Adam, torch.compile; ``train.*``) are
resolved and set up by ``synthgen.train.fast_paths``; with all of them off (a default config on a CPU)
this is the plain fp32 step.

InfoGAN codes (``model.codes``): each fake batch gets prior code values, and ``model.info_weight`` times the
mutual-information loss of D's Q head on those fakes joins D's loss (Q trains with D: its output is part of
the DDP forward, so every D parameter gets a gradient each step) and G's loss. Without codes no code is drawn
and no call changes: the step is bit-identical to the one without the option.

Auxiliary classifier (``model.aux_weight`` > 0, AC-GAN): the Q head's last ``num_classes`` outputs are class
logits; ``aux_weight`` times their cross-entropy joins D's loss on the real half (D learns to classify real
images only, so it cannot learn the class from G's mistakes) and G's loss on its fakes (G is pushed toward
images that classifier recognises as their class).

Networks that define ``set_training_step(step)`` (the registry's contract) get it before each step; the EMA
generator copies their buffers, so it samples with the schedule's state at its last update.

Mode seeking (``model.mode_seeking_weight`` > 0, MSGAN): the G step's second half of fakes repeats the first
half's labels with fresh z, and the weighted ``mode_seeking_loss`` of the pairs joins G's loss.
"""

from __future__ import annotations

import torch
from torch import nn

from synthgen.checkpoint import TrainingState
from synthgen.config import ExperimentConfig
from synthgen.log import get_logger
from synthgen.train.fast_paths import (
    FastPaths,
    apply_backend_flags,
    autocast,
    make_adam,
    maybe_compile,
    prepare_module,
    resolve_fast_paths,
    to_memory_format,
)


class GANStep:
    """Holds the networks and optimisers and runs one step.

    ``G_train`` / ``D_train`` are the DDP wrappers (or the bare modules with one worker). Inside the D
    step the generator runs unwrapped under no_grad; inside the G step the discriminator runs unwrapped
    and frozen — so DDP only syncs the gradients of the network being trained.

    Forwards run under ``self.autocast`` (bf16 when ``fast.bf16``) and, with ``fast.compile``, through
    compiled wrappers; losses and penalties (WGAN-GP, R1, LeCam) run in fp32 on the bare D, since double
    backward does not compile and bf16 gradients of gradients are too coarse for a penalty.
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
        fast: FastPaths | None = None,
    ) -> None:
        """Set up optimizers, EMA, loss and the fast paths.

        Args:
            cfg: the resolved experiment config.
            G, D: the bare networks (already on ``device`` and in the memory format of ``fast``).
            G_train, D_train: their DDP wrappers, or G and D themselves with one worker.
            num_classes: number of labels.
            device: where the networks live.
            fast: the resolved fast paths; None = ``resolve_fast_paths(cfg.train, device)``.
        """
        from synthgen.models import EMA, LeCam, get_loss

        t, m = cfg.train, cfg.model
        self.fast = fast if fast is not None else resolve_fast_paths(t, device)
        self.cfg, self.G, self.D = cfg, G, D
        self.num_classes, self.device = num_classes, device
        self.nan_at_step = -1  # test-only fault (synthgen.faults): the D loss becomes NaN at this step
        # compiled forwards share the bare modules' parameters; the bare ones stay for EMA, penalties, checkpoints
        self.G_fwd, self.D_fwd = maybe_compile(G, self.fast), maybe_compile(D, self.fast)
        self.G_train = self.G_fwd if G_train is G else maybe_compile(G_train, self.fast)
        self.D_train = self.D_fwd if D_train is D else maybe_compile(D_train, self.fast)
        self.opt_g = make_adam(G.parameters(), t.lr_g, (t.beta1, t.beta2), self.fast.fused_adam)
        self.opt_d = make_adam(D.parameters(), t.lr_d, (t.beta1, t.beta2), self.fast.fused_adam)
        self.ema = EMA(G, decay=m.ema_decay, start=m.ema_start)
        self.loss_fn = get_loss(m.loss)
        self.lecam = LeCam(m.lecam_weight)
        self.autocast = autocast(self.fast, device)
        self.codes = tuple(getattr(G, "codes", ()))  # InfoGAN codes (synthgen.models.codes); () = off
        self.code_dim = int(getattr(G, "code_dim", 0))  # their columns in the Q head's output
        self.aux_weight = m.aux_weight  # > 0: the Q head also has class logits (after the codes' columns)
        self.with_q = bool(self.codes) or self.aux_weight > 0.0  # D runs its Q head
        self.last_info_loss = torch.zeros(())  # the D step's mutual-information loss (0 without codes)
        self.last_aux_loss = torch.zeros(())  # the D step's classifier loss on real images (0 without aux)

    def describe_fast_paths(self) -> str:
        """One line naming the fast paths this step runs with (fused Adam as the optimizers really are)."""
        fused = self.opt_g.defaults.get("fused") is True and self.opt_d.defaults.get("fused") is True
        return self.fast.describe(fused_in_use=fused)

    def training_state(self) -> TrainingState:
        """The objects a checkpoint saves and a restart restores (the bare networks, not DDP wrappers)."""
        return TrainingState(
            generator=self.G,
            discriminator=self.D,
            generator_ema=self.ema.module,
            opt_g=self.opt_g,
            opt_d=self.opt_d,
            lecam=self.lecam,
        )

    def __call__(self, real: torch.Tensor, y_real: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Train on ``real`` [B, C, H, W] in [-1, 1] with labels ``y_real`` [B]; return (d_loss, g_loss)."""
        for net in (self.G, self.D):  # schedules that live in the networks (stylegan's class fade-in)
            if hasattr(net, "set_training_step"):
                net.set_training_step(step)
        real = to_memory_format(real, self.fast)  # [B, C, H, W], NHWC with channels_last
        d_loss = self._d_step(real, y_real, step)
        g_loss = self._g_step(real.shape[0])
        self.ema.update(self.G, step)
        return d_loss, g_loss

    def _d_step(self, real: torch.Tensor, y_real: torch.Tensor, step: int) -> torch.Tensor:
        """One D update on ``real`` [B, C, H, W] and as many fakes; returns the detached D loss."""
        from synthgen.models import diff_augment
        from synthgen.models.codes import aux_loss
        from synthgen.models.losses import r1_penalty

        m, bs, dev = self.cfg.model, real.shape[0], self.device
        aug = m.diffaugment
        # One DDP forward on real+fake, so DDP sees one forward per backward.
        z = torch.randn(bs, m.z_dim, device=dev)
        y_fake = torch.randint(self.num_classes, (bs,), device=dev)
        codes = self._draw_codes(bs)  # [B, num_codes] or None
        with torch.no_grad(), self.autocast:
            fake = self._generate(self.G_fwd, z, y_fake, codes).float()  # [B, C, H, W]
        with self.autocast:
            both = to_memory_format(diff_augment(torch.cat([real, fake]), aug), self.fast)  # [2B, C, H, W]
            logits, q = self._discriminate(self.D_train, both, torch.cat([y_real, y_fake]))  # [2B], [2B, code_dim]
        # losses and penalties in fp32, outside autocast; the penalties' double backward runs on the bare D
        d_loss = self.loss_fn.d_loss(logits[:bs], logits[bs:])
        if codes is not None:  # Q's loss on the fakes (the real half's predictions are unused)
            info = self._info(q[bs:], codes)
            self.last_info_loss = info.detach()
            d_loss = d_loss + m.info_weight * info
        if self.aux_weight > 0.0:  # the auxiliary classifier learns on the real half only
            aux = aux_loss(q[:bs, self.code_dim :], y_real)
            self.last_aux_loss = aux.detach()
            d_loss = d_loss + self.aux_weight * aux
        d_loss = d_loss + self.loss_fn.penalty(self.D, real, fake, y_real, m.gp_weight)
        d_loss = d_loss + self.lecam(logits[:bs], logits[bs:])
        if m.r1_gamma > 0.0 and step % m.r1_interval == 0:
            # Lazy R1 (StyleGAN2): every r1_interval steps, scaled by the interval so its average strength
            # is r1_gamma; on the images D sees (augmented), in float32 like the gradient penalty above.
            augment = (lambda x: to_memory_format(diff_augment(x, aug), self.fast)) if aug else None
            d_loss = d_loss + m.r1_interval * r1_penalty(self.D, real, y_real, m.r1_gamma, augment)
        if self.nan_at_step == step:  # test-only fault (synthgen.faults), set by the training loop
            d_loss = d_loss * float("nan")
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        return d_loss.detach()

    def _g_step(self, bs: int) -> torch.Tensor:
        """One G update on ``bs`` fakes, D unwrapped and frozen; returns the detached G loss."""
        from synthgen.models import diff_augment
        from synthgen.models.codes import aux_loss
        from synthgen.models.losses import mode_seeking_loss

        m, dev, aug = self.cfg.model, self.device, self.cfg.model.diffaugment
        self.D.requires_grad_(False)
        z = torch.randn(bs, m.z_dim, device=dev)
        y_fake = torch.randint(self.num_classes, (bs,), device=dev)
        pairs = bs // 2 if m.mode_seeking_weight > 0.0 else 0
        if pairs:  # rows i and pairs + i share a label: the mode-seeking pairs
            y_fake[pairs : 2 * pairs] = y_fake[:pairs]
        codes = self._draw_codes(bs)  # [B, num_codes] or None
        with self.autocast:
            fake = self._generate(self.G_train, z, y_fake, codes)  # [B, C, H, W] (bf16 under bf16 autocast)
            logits, q = self._discriminate(self.D_fwd, to_memory_format(diff_augment(fake, aug), self.fast), y_fake)
        g_loss = self.loss_fn.g_loss(logits)
        if codes is not None:
            g_loss = g_loss + m.info_weight * self._info(q, codes)
        if self.aux_weight > 0.0:
            g_loss = g_loss + self.aux_weight * aux_loss(q[:, self.code_dim :], y_fake)
        if pairs:
            f = fake.float()
            g_loss = g_loss + m.mode_seeking_weight * mode_seeking_loss(
                f[:pairs], f[pairs : 2 * pairs], z[:pairs], z[pairs : 2 * pairs]
            )
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        self.D.requires_grad_(True)
        return g_loss.detach()

    def _draw_codes(self, n: int) -> torch.Tensor | None:
        """Prior InfoGAN code values [n, num_codes] (torch's RNG), or None without codes (nothing drawn)."""
        from synthgen.models.codes import sample_code_values

        return sample_code_values(self.codes, n, self.device) if self.codes else None

    @staticmethod
    def _generate(g: nn.Module, z: torch.Tensor, y: torch.Tensor, codes: torch.Tensor | None) -> torch.Tensor:
        """``g(z, y)``, or ``g(z, y, codes)`` with InfoGAN codes: [N, C, H, W]."""
        return g(z, y) if codes is None else g(z, y, codes)

    def _discriminate(self, d: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(float logits [N], Q's float predictions [N, code_dim (+ num_classes)] or None without a Q head)."""
        if not self.with_q:
            return d(x, y).float(), None
        logits, q = d(x, y, with_codes=True)
        return logits.float(), q.float()

    def _info(self, q: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """InfoGAN's mutual-information loss of predictions ``q`` [N, code_dim] for ``codes`` [N, num_codes]."""
        from synthgen.models.codes import info_loss

        return info_loss(self.codes, q, codes)


def build_gan_step(
    cfg: ExperimentConfig,
    image_shape: tuple[int, int, int],
    num_classes: int,
    device: torch.device,
    distributed: bool = False,
    announce: bool = True,
) -> GANStep:
    """Build fresh networks for ``cfg.model`` on ``device`` and the step that trains them.

    Resolves the fast paths of ``cfg.train`` for ``device``, sets TF32, and puts the networks in their
    memory format before DDP wraps them (DDP and the EMA copy take the parameters as they are then).

    Args:
        cfg: the resolved experiment config.
        image_shape: (C, H, W) of the training images.
        num_classes: number of labels.
        device: where the networks live.
        distributed: wrap G and D in DDP (inside an initialised process group, e.g. a Ray Train worker).
        announce: log the one line naming the fast paths in use (the loop passes True on rank 0 only).

    Returns:
        The step, holding the networks and optimizers.

    Raises:
        ConfigError: unknown model or unsupported image shape.
    """
    from synthgen.models import build_models

    fast = resolve_fast_paths(cfg.train, device)
    apply_backend_flags(fast)
    G, D = build_models(cfg.model, image_shape, num_classes)
    G, D = prepare_module(G.to(device), fast), prepare_module(D.to(device), fast)
    G_train, D_train = G, D
    if distributed:
        # one wrapper per network: a single wrapper around both breaks gradient sync
        ddp_kwargs = {"device_ids": [device.index]} if device.type == "cuda" else {}
        G_train = nn.parallel.DistributedDataParallel(G, **ddp_kwargs)
        D_train = nn.parallel.DistributedDataParallel(D, **ddp_kwargs)
    gan_step = GANStep(cfg, G, D, G_train, D_train, num_classes, device, fast)
    if announce:
        get_logger().info(f"train step fast paths on {device.type}: {gan_step.describe_fast_paths()}")
    return gan_step
