"""What the training loop needs from a family of models, so ``train_loop_per_worker`` never branches on one.

- ``NoiseFamily``: noise + class -> image (cdcgan, stylegan, dcgan, mlp): one labelled set, ``GANStep``, grids
  of one row per class from fixed latents.
- ``TranslationFamily``: image -> image (pix2pix, cyclegan): domains A and B (``synthgen.train.domains``),
  ``TranslationStep``, grids of input | output (| target) rows for fixed images of A.

Each draws its batch of a step from (seed, rank, step) alone, so a resumed run draws the same data.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from synthgen.config import ExperimentConfig
from synthgen.pixels import to_float
from synthgen.train.progress import ProgressLog


def step_generator(seed: int, rank: int, step: int, stream: int = 0) -> torch.Generator:
    """A torch generator seeded by (seed, rank, step, stream) alone, so a resumed run draws the same.

    ``stream`` 0 is the batch a noise model has always drawn (its runs repeat as before); 1 is domain B's own
    batch; 2 a translation step's own draws (srgan's input degradation).
    """
    return torch.Generator().manual_seed((seed * 1_000_003 + rank) * 1_000_033 + step + stream * 7_919_000_017)


def batch_indices(num_images: int, batch_size: int, seed: int, rank: int, step: int, stream: int = 0) -> torch.Tensor:
    """Random batch indices that depend only on (seed, rank, step, stream) (``step_generator``)."""
    return torch.randint(num_images, (batch_size,), generator=step_generator(seed, rank, step, stream))


class NoiseFamily:
    """noise + class -> image: loads ``cfg.data``, builds the ``GANStep``, draws batches and grids."""

    def __init__(self, cfg: ExperimentConfig, device: torch.device, rank: int, world: int) -> None:
        from synthgen.data import load_images
        from synthgen.train.step import build_gan_step

        self.cfg, self.device = cfg, device
        data = load_images(cfg.data, "train")
        self.class_names, self.image_shape, self.size = data.class_names, data.image_shape, len(data)
        self.images_u8 = torch.from_numpy(np.ascontiguousarray(data.images))  # [N, C, H, W] uint8
        self.labels = torch.from_numpy(data.labels.astype(np.int64))  # [N]
        self.step = build_gan_step(cfg, data.image_shape, data.num_classes, device, world > 1, announce=rank == 0)
        cols = 8  # the grid's latents: fixed by a seed of their own, so grids compare over a run (and resumes)
        z = torch.randn(data.num_classes * cols, cfg.model.z_dim, generator=torch.Generator().manual_seed(12345))
        self.grid = (z.to(device), torch.arange(data.num_classes).repeat_interleave(cols).to(device), cols)

    @staticmethod
    def preflight(cfg: ExperimentConfig) -> None:
        """On the driver, before any worker starts: load the data and build the networks once (clear errors)."""
        from synthgen.data import load_images
        from synthgen.models import build_models

        data = load_images(cfg.data, "train")
        build_models(cfg.model, data.image_shape, data.num_classes)

    def train(self, step: int, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimisation step on this rank's batch of ``step``; returns (d_loss, g_loss)."""
        t = self.cfg.train
        idx = batch_indices(self.size, t.batch_size, t.seed, rank, step)
        real = to_float(self.images_u8[idx]).to(self.device)  # [B, C, H, W] in [-1, 1]
        return self.step(real, self.labels[idx].to(self.device), step)

    def save_grid(self, log: ProgressLog, step: int) -> None:
        """One row per class from the EMA generator."""
        log.save_grid(step, self.step.ema.module, *self.grid)


class TranslationFamily:
    """image -> image: loads the domains, builds the ``TranslationStep``, draws (a, b, labels) batches and grids."""

    GRID_IMAGES = 8  # columns of the grid: the first images of A (and their targets when paired)

    def __init__(self, cfg: ExperimentConfig, device: torch.device, rank: int, world: int) -> None:
        from synthgen.train.domains import load_domains
        from synthgen.train.translation_step import build_translation_step

        self.cfg, self.device = cfg, device
        self.domains = load_domains(cfg, "train")
        a, b = self.domains.a, self.domains.b
        self.class_names, self.image_shape = a.class_names, b.image_shape
        self.a_u8 = torch.from_numpy(np.ascontiguousarray(a.images))  # [N_a, C_a, H, W] uint8
        self.b_u8 = torch.from_numpy(np.ascontiguousarray(b.images))  # [N_b, C_b, H, W] uint8
        self.labels = torch.from_numpy(a.labels.astype(np.int64))  # [N_a]
        self.step = build_translation_step(cfg, a.image_shape, b.image_shape, a.num_classes, device, world > 1)
        k = min(self.GRID_IMAGES, len(a))
        self.grid_a, self.grid_y = to_float(self.a_u8[:k]).to(device), self.labels[:k].to(device)
        self.grid_b = to_float(self.b_u8[:k]).to(device) if self.domains.paired else None

    @staticmethod
    def preflight(cfg: ExperimentConfig) -> None:
        """On the driver, before any worker starts: load both domains and build the networks once."""
        from synthgen.models import build_translation_models
        from synthgen.train.domains import load_domains
        from synthgen.train.translation_step import domain_classifier, needs_domain_classifier

        domains = load_domains(cfg, "train")
        build_translation_models(cfg.model, domains.a.image_shape, domains.b.image_shape, domains.a.num_classes)
        if needs_domain_classifier(cfg):  # train and cache A's judge here, once, with a clear error if it fails
            domain_classifier(cfg, domains.a.num_classes, torch.device("cpu"), progress=True)

    def train(self, step: int, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimisation step on this rank's batch of ``step``; returns (d_loss, g_loss)."""
        t = self.cfg.train
        idx_a = batch_indices(len(self.a_u8), t.batch_size, t.seed, rank, step)
        # paired: B's rows are A's partners; unpaired: B draws its own rows
        idx_b = idx_a if self.domains.paired else batch_indices(len(self.b_u8), t.batch_size, t.seed, rank, step, 1)
        a = to_float(self.a_u8[idx_a]).to(self.device)  # [B, C_a, H, W] in [-1, 1]
        b = to_float(self.b_u8[idx_b]).to(self.device)  # [B, C_b, H, W]
        return self.step(a, b, self.labels[idx_a].to(self.device), step, step_generator(t.seed, rank, step, 2))

    @torch.no_grad()
    def save_grid(self, log: ProgressLog, step: int) -> None:
        """Rows: A's first images, the EMA generator's translations (dropout off) and, when paired, the targets.
        An upscaler's smaller inputs are shown pixel-repeated to B's side, then bicubic-upscaled, the baseline."""
        import torch.nn.functional as F

        G: nn.Module = self.step.ema.module
        out = G.translate(self.grid_a, self.grid_y).float()  # [k, C_b, H, W]
        inputs = [self.grid_a]
        factor = out.shape[-1] // self.grid_a.shape[-1]
        if factor > 1:  # low-res | bicubic | upscaled | real
            inputs = [
                F.interpolate(self.grid_a, scale_factor=factor, mode="nearest"),
                F.interpolate(self.grid_a, scale_factor=factor, mode="bicubic").clamp(-1, 1),
            ]
        rows = [*inputs, out] + ([self.grid_b] if self.grid_b is not None else [])
        channels = max(r.shape[1] for r in rows)
        log.save_image_rows(step, [r.expand(-1, channels, -1, -1) if r.shape[1] == 1 else r for r in rows])


def family_of(cfg: ExperimentConfig) -> type[NoiseFamily] | type[TranslationFamily]:
    """The family of ``cfg.model`` as the model registry declares it (image-to-image models take an input image)."""
    from synthgen.models import get_model_spec

    return TranslationFamily if get_model_spec(cfg.model.name).translation else NoiseFamily
