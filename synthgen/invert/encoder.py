"""The latent encoder of one generator checkpoint: its config, file format, ``load_encoder`` and ``encode``.

    synthgen train-encoder --checkpoint runs/fashion_mnist      # writes the folder below
    loaded = load_encoder("runs/fashion_mnist")                 # None when no encoder fits the checkpoint
    z0 = encode(encoder, images, labels)                        # [N, z_dim]: start of a short inversion
    inv = invert(generator, images, labels, init=z0, steps=30)

Layout (beside the checkpoints of the run):
    <run>/encoder/encoder-000500/model.pt      encoder weights + what it was made for (weights_only-loadable)
    <run>/encoder/encoder-000500/config.yaml   the same metadata and the resolved EncoderConfig, for humans
The number is the generator checkpoint's step; ``model.pt`` records that checkpoint's sha256, and
``load_encoder`` refuses (WARNING + None) an encoder whose digest differs from the checkpoint's, e.g.
after the run was retrained under the same name. The folder is written under a temporary name and
renamed when complete, so a crash never leaves a half-written encoder.

Training: ``synthgen.invert.encoder_train`` (``synthgen train-encoder``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

import synthgen
from synthgen.checkpoint import MODEL_FILE, CheckpointInfo, load_generator, resolve_checkpoint
from synthgen.config import check_ranges, from_dict, to_dict
from synthgen.errors import CheckpointError, ConfigError
from synthgen.log import get_logger
from synthgen.models.encoder import LatentEncoder
from synthgen.pixels import to_float
from synthgen.storage import atomic_write_bytes, atomic_write_text, file_sha256, is_uri

ENCODER_DIR = "encoder"  # sub-folder of the run folder holding one encoder per generator checkpoint
ENCODER_CONFIG_FILE = "config.yaml"
ENCODER_FORMAT_VERSION = 1
ENCODE_CHUNK = 64  # rows per encoder forward: fixed, so a row's latent never depends on batch_size
REAL_DATA = ("train", "none")  # the checkpoint's own training images, or generator samples only


@dataclass(frozen=True)
class EncoderConfig:
    checkpoint: str = ""  # run folder (its latest checkpoint) or checkpoint-NNNNNN folder; local paths only
    steps: int = 5000  # optimizer steps (the real-image reconstruction still improves well past 1500)
    batch_size: int = 64  # generator samples per step (and as many real images with real_data: train)
    lr: float = 1e-3  # Adam learning rate (cosine-decayed to 5% of it over the run)
    latent_weight: float = 0.1  # weight of |E(G(z, y), y) - z|^2 (keeps predictions where the prior has mass)
    pixel_weight: float = 1.0  # weight of |G(E(x, y), y) - x|^2 on generator samples
    real_data: str = "train"  # train = the checkpoint's own training images (its data config); none = samples only
    real_weight: float = 1.0  # weight of the pixel reconstruction error of real training images
    prior_weight: float = 0.01  # weight of mean(z^2) on the real images' latents (as in invert)
    channels: int = 32  # encoder base width (channels at half resolution)
    use_ema: bool = True  # invert into the EMA generator (the one sampling uses)
    seed: int = 0  # seed of the encoder's initialisation, the latents and the real batches
    num_threads: int = 0  # torch threads while training; 0 = torch's default (every core)
    log_every: int = 100  # steps between loss lines in the log
    overwrite: bool = False  # replace an existing encoder for the same generator checkpoint
    progress: bool = True  # show a tqdm progress bar

    def validate(self) -> None:
        """Check value ranges.

        Raises:
            ConfigError: naming the key, the bad value and the allowed range.
        """
        checks = [
            (self.steps >= 1, "steps", self.steps, ">= 1"),
            (self.batch_size >= 1, "batch_size", self.batch_size, ">= 1"),
            (self.lr > 0, "lr", self.lr, "> 0"),
            (
                min(self.latent_weight, self.pixel_weight, self.real_weight, self.prior_weight) >= 0,
                "weights",
                (self.latent_weight, self.pixel_weight, self.real_weight, self.prior_weight),
                ">= 0",
            ),
            (
                self.latent_weight + self.pixel_weight > 0,
                "latent_weight + pixel_weight",
                self.latent_weight + self.pixel_weight,
                "> 0 (something must be learned from generator samples)",
            ),
            (self.real_data in REAL_DATA, "real_data", self.real_data, f"one of {list(REAL_DATA)}"),
            (self.channels >= 1, "channels", self.channels, ">= 1, e.g. 32"),
            (self.num_threads >= 0, "num_threads", self.num_threads, ">= 0 (0 = torch's default)"),
            (self.log_every >= 1, "log_every", self.log_every, ">= 1"),
        ]
        check_ranges(checks)


@dataclass(frozen=True)
class EncoderInfo:
    path: str  # the encoder folder (<run>/encoder/encoder-NNNNNN)
    digest: str  # sha256 of its model.pt: identifies the exact encoder (record it with anything it made)
    generator_digest: str  # sha256 of the generator checkpoint's model.pt it was trained against
    generator_step: int  # that checkpoint's training step
    z_dim: int  # latent size
    image_shape: tuple[int, int, int]  # (C, H, W)
    class_names: tuple[str, ...]  # label index -> name
    channels: int  # encoder base width
    config: EncoderConfig  # the resolved config it was trained with
    losses: dict[str, float]  # final losses: training means over the last steps and held-out errors
    train_cpu_seconds: float = 0.0  # CPU seconds its training took (0 = not recorded): the one-off cost to amortise


def encoder_dir(run_dir: str, step: int) -> str:
    """``<run_dir>/encoder/encoder-NNNNNN``: the folder of the encoder of the checkpoint at ``step``."""
    return os.path.join(run_dir, ENCODER_DIR, f"encoder-{step:06d}")


def local_checkpoint(path: str) -> str:
    """The local checkpoint folder of ``path`` (run folder -> its latest checkpoint).

    Raises:
        ConfigError: ``path`` is empty or a remote URI (encoders live in local run folders).
        CheckpointError: no complete checkpoint at ``path``.
    """
    if not path:
        raise ConfigError("train-encoder needs --checkpoint RUN (a run folder or a checkpoint-NNNNNN folder)")
    if is_uri(path) and not path.startswith("file://"):
        raise ConfigError(
            f"{path!r} is remote storage: encoders are written into and read from local run "
            "folders; copy the run folder to local disk (or a shared mount) and pass that path"
        )
    return resolve_checkpoint(path)


def target_for(cfg: EncoderConfig) -> tuple[str, nn.Module, CheckpointInfo]:
    """Load the generator of ``cfg.checkpoint`` and name the encoder folder to write.

    Returns:
        (encoder folder, generator in eval mode, checkpoint info).

    Raises:
        ConfigError: no or remote checkpoint; CheckpointError: nothing loadable there.
    """
    folder = local_checkpoint(cfg.checkpoint)
    generator, info = load_generator(folder, use_ema=cfg.use_ema)
    return encoder_dir(os.path.dirname(os.path.abspath(folder)), info.step), generator, info


def encode(encoder: nn.Module, images: np.ndarray, labels: np.ndarray, batch_size: int = 512) -> torch.Tensor:
    """Predict the latent of each image: the start of a short ``invert(..., init=...)``.

    The encoder always runs on fixed ``ENCODE_CHUNK``-row chunks (the last one zero-padded), so row i's
    latent is bitwise the same whatever ``batch_size`` (at a fixed torch thread count) and the result is
    deterministic (no randomness, eval mode).

    Args:
        encoder: from ``load_encoder`` or ``fit_encoder``.
        images: uint8 [N, C, H, W] with the generator's shape.
        labels: int [N].
        batch_size: rows converted to float at once (bounds memory; rounded up to a multiple of ENCODE_CHUNK).

    Returns:
        float32 [N, z_dim] on the CPU.

    Raises:
        ConfigError: mismatched images/labels, wrong dtype or shape, ``batch_size`` < 1.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    shape = tuple(getattr(encoder, "image_shape", images.shape[1:]))
    if images.ndim != 4 or tuple(images.shape[1:]) != shape or len(images) != len(labels) or batch_size < 1:
        raise ConfigError(
            f"encode needs uint8 images [N, {', '.join(map(str, shape))}] with one label each and "
            f"batch_size >= 1, got images {images.shape}, {len(labels)} labels, batch_size {batch_size}"
        )
    encoder.eval()
    device = next(encoder.parameters()).device
    step = -(-batch_size // ENCODE_CHUNK) * ENCODE_CHUNK
    out = []
    with torch.inference_mode():
        for lo in range(0, len(images), step):
            x = to_float(images[lo : lo + step])  # [b, C, H, W]; raises on non-uint8
            y = torch.as_tensor(labels[lo : lo + step], dtype=torch.long)  # [b]
            for c in range(0, len(x), ENCODE_CHUNK):
                xc, yc = x[c : c + ENCODE_CHUNK], y[c : c + ENCODE_CHUNK]
                pad = ENCODE_CHUNK - len(xc)  # zero rows keep every forward the same shape
                xc = torch.cat([xc, xc.new_zeros(pad, *xc.shape[1:])]) if pad else xc  # [CHUNK, C, H, W]
                yc = torch.cat([yc, yc.new_zeros(pad)]) if pad else yc  # [CHUNK]
                out.append(encoder(xc.to(device), yc.to(device))[: ENCODE_CHUNK - pad].float().cpu())
    return torch.cat(out) if out else torch.zeros(0, int(encoder.z_dim))  # [N, z_dim]


def _metadata(
    info: CheckpointInfo, encoder: LatentEncoder, cfg: EncoderConfig, losses: dict[str, float], train_cpu_seconds: float
) -> dict[str, Any]:
    """What the encoder was made for and how: stored in model.pt and, readable, in config.yaml."""
    return {
        "format_version": ENCODER_FORMAT_VERSION,
        "synthgen_version": synthgen.__version__,
        "generator": {"path": info.path, "digest": info.digest, "step": int(info.step)},
        "z_dim": int(encoder.z_dim),
        "image_shape": [int(s) for s in encoder.image_shape],
        "class_names": list(info.class_names),
        "channels": int(encoder.channels),
        "encoder_config": to_dict(cfg),
        "losses": {k: float(v) for k, v in losses.items()},
        "train_cpu_seconds": float(train_cpu_seconds),
    }


def save_encoder(
    target: str,
    encoder: LatentEncoder,
    info: CheckpointInfo,
    cfg: EncoderConfig,
    losses: dict[str, float],
    train_cpu_seconds: float = 0.0,
) -> None:
    """Write the encoder folder under a temporary name and rename it into place (replacing an old one).

    Args:
        target: the encoder folder (``encoder_dir``).
        encoder: the trained encoder.
        info: the generator checkpoint it was trained against.
        cfg: the resolved config it was trained with.
        losses: its final losses.
        train_cpu_seconds: CPU seconds its training took.
    """
    import io

    import yaml

    meta = _metadata(info, encoder, cfg, losses, train_cpu_seconds)
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.tmp-", dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700 folders; give the usual permissions
    try:
        buf = io.BytesIO()
        torch.save({**meta, "encoder": {k: v.detach().cpu().clone() for k, v in encoder.state_dict().items()}}, buf)
        atomic_write_bytes(os.path.join(tmp, MODEL_FILE), buf.getvalue())
        atomic_write_text(os.path.join(tmp, ENCODER_CONFIG_FILE), yaml.safe_dump(meta, sort_keys=False))
        old = None
        if os.path.exists(target):  # --overwrite: move the old one aside, then swap in the new one
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.old-", dir=parent)
            os.replace(target, os.path.join(old, "encoder"))
        os.replace(tmp, target)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_encoder(path: str) -> tuple[nn.Module, EncoderInfo] | None:
    """The encoder trained for the checkpoint at ``path``, in eval mode on the CPU.

    Args:
        path: a run folder (its latest checkpoint) or a checkpoint-NNNNNN folder, local.

    Returns:
        (encoder, info), or None when no encoder was trained for that checkpoint, when ``path`` is a remote
        URI (encoders are local only), or when the encoder found was trained for a generator with another
        digest (logged as a WARNING: using it would start every inversion in the wrong place).

    Raises:
        CheckpointError: no checkpoint at ``path``, or an encoder file that is unreadable or does not fit.
    """
    if is_uri(path) and not path.startswith("file://"):
        get_logger().info(f"{path!r} is remote: encoders are read from local run folders only; none used")
        return None
    folder = resolve_checkpoint(path)
    from synthgen.checkpoint import step_of

    try:
        step = step_of(folder)
    except CheckpointError:
        return None  # a checkpoint folder outside a run (no checkpoint-NNNNNN name): no encoder beside it
    target = encoder_dir(os.path.dirname(os.path.abspath(folder)), step)
    file = os.path.join(target, MODEL_FILE)
    if not os.path.isfile(file):
        return None
    try:
        payload = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated / foreign files
        raise CheckpointError(
            f"cannot load encoder {file!r}: {exc}; retrain it with `synthgen train-encoder "
            f"--checkpoint {path} --overwrite`"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format_version") != ENCODER_FORMAT_VERSION:
        raise CheckpointError(
            f"{file!r} is not a synthgen encoder (format_version {ENCODER_FORMAT_VERSION}); "
            f"retrain it with `synthgen train-encoder --checkpoint {path} --overwrite`"
        )
    digest = file_sha256(os.path.join(folder, MODEL_FILE))
    if payload["generator"]["digest"] != digest:
        get_logger().warning(
            f"encoder {target} was trained for another generator (sha256 "
            f"{payload['generator']['digest'][:12]}..., this checkpoint {digest[:12]}...): not used; "
            f"retrain it with `synthgen train-encoder --checkpoint {path} --overwrite`"
        )
        return None
    return _build(payload, target, file)


def _build(payload: dict[str, Any], target: str, file: str) -> tuple[nn.Module, EncoderInfo]:
    """Rebuild the encoder module and its info from a loaded payload.

    Raises:
        CheckpointError: the weights do not fit the recorded shape.
    """
    shape = tuple(int(s) for s in payload["image_shape"])
    names = tuple(payload["class_names"])
    try:
        encoder = LatentEncoder(
            int(payload["z_dim"]),
            shape,  # type: ignore[arg-type]
            len(names),
            int(payload["channels"]),
        )
        encoder.load_state_dict(payload["encoder"])
    except (RuntimeError, ConfigError, KeyError) as exc:
        raise CheckpointError(
            f"encoder {file!r} does not fit its recorded shape ({exc}); retrain it with "
            "`synthgen train-encoder --overwrite`"
        ) from exc
    info = EncoderInfo(
        path=target,
        digest=file_sha256(file),
        generator_digest=str(payload["generator"]["digest"]),
        generator_step=int(payload["generator"]["step"]),
        z_dim=int(payload["z_dim"]),
        image_shape=shape,  # type: ignore[arg-type]
        class_names=names,
        channels=int(payload["channels"]),
        config=from_dict(EncoderConfig, payload["encoder_config"], "encoder"),
        losses={k: float(v) for k, v in payload["losses"].items()},
        train_cpu_seconds=float(payload.get("train_cpu_seconds", 0.0)),
    )
    return encoder.eval(), info
