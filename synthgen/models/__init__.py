"""Networks, losses, DiffAugment and EMA. Importing this package registers every model.

G, D = build_models(cfg.model, image_shape=(C, H, W), num_classes=10)
fake = G(z, labels)            # z [N, z_dim], labels [N] int64 -> [N, C, H, W] in [-1, 1]
logits = D(fake, labels)       # -> [N]
loss = get_loss(cfg.model.loss)  # .d_loss / .g_loss / .penalty
lecam = LeCam(cfg.model.lecam_weight)  # optional D regulariser: lecam(d_real, d_fake) -> scalar
"""

from synthgen.models import cdcgan, cyclegan, dcgan, mlp, pix2pix, pixelda, srgan, stylegan  # noqa: F401  (registration side effect)
from synthgen.models.augment import AUGMENTS, diff_augment, parse_policy
from synthgen.models.ema import EMA, unwrap
from synthgen.models.losses import LOSSES, GANLoss, LeCam, get_loss, register_loss
from synthgen.models.registry import (
    MODELS,
    ModelSpec,
    build_models,
    build_translation_models,
    get_model_spec,
    register_model,
    register_translation_model,
)

__all__ = [
    "AUGMENTS",
    "EMA",
    "GANLoss",
    "LOSSES",
    "LeCam",
    "MODELS",
    "ModelSpec",
    "build_models",
    "build_translation_models",
    "diff_augment",
    "get_loss",
    "get_model_spec",
    "parse_policy",
    "register_loss",
    "register_model",
    "register_translation_model",
    "unwrap",
]
