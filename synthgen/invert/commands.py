"""CLI of the encoder: ``synthgen train-encoder``.

``synthgen.cli`` calls ``register(subparsers)``. Config precedence, as ``synthgen sample``: EncoderConfig
defaults < ``--config`` YAML (flat EncoderConfig keys) < explicit flags < ``--set key=value`` overrides.
Typed errors propagate to ``synthgen.cli_args.run_guarded`` (exit 1 or 2).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from synthgen.cli_args import add_command, add_config_arguments, add_no_progress_argument, config_path, flag_values
from synthgen.config import apply_overrides, config_data, dump_yaml, from_dict
from synthgen.invert.encoder import EncoderConfig

TRAIN_ENCODER_EPILOG = """\
what it writes (beside the run's checkpoints; the number is the generator checkpoint's step):
  <run>/encoder/encoder-000500/model.pt      encoder weights, the generator checkpoint's sha256 and step,
                                             image shape, z_dim, class names, config, final losses
  <run>/encoder/encoder-000500/config.yaml   the same, readable
`synthgen sample --around` and the uplift inversion start from E(image, label) when the encoder of
their checkpoint exists (an encoder made for other generator weights is ignored with a warning), then
refine it with a few optimisation steps instead of hundreds.

examples:
  synthgen train-encoder --checkpoint runs/fashion_mnist
  synthgen train-encoder --checkpoint runs/fashion_mnist/checkpoint-005000 --set steps=3000 --overwrite
  synthgen train-encoder --checkpoint runs/fashion_mnist --set real_data=none --dry-run
  python benchmarks/bench_invert.py --checkpoint runs/fashion_mnist     # optimisation vs encoder + k steps

"""


def register(subparsers: Any) -> None:
    """Add the ``train-encoder`` subcommand to an argparse subparsers object."""
    p = add_command(
        subparsers,
        "train-encoder",
        "train an encoder E(image, label) -> z against a checkpoint's generator (fast inversion)",
        "Train a latent encoder for a trained generator checkpoint (the generator stays frozen) on "
        "the generator's own samples and the checkpoint's real training images, and write it into the run "
        "folder. Inversions then start from E(x) and need a few optimisation steps instead of hundreds.",
        TRAIN_ENCODER_EPILOG,
    )
    add_config_arguments(
        p,
        config_help="flat YAML of EncoderConfig keys (steps, batch_size, lr, weights, ...)",
        set_example="steps=3000",
        smoke_test=False,
        dry_run_help="print the resolved config and what would be written, then exit without "
        "training or writing anything",
    )
    p.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="run folder (its latest checkpoint) or checkpoint-NNNNNN folder, on local disk",
    )
    p.add_argument("--steps", type=int, metavar="N", help=f"optimizer steps (default {EncoderConfig.steps})")
    p.add_argument(
        "--overwrite",
        action="store_true",
        default=None,
        help="replace an existing encoder of the "
        "same checkpoint (without it, re-training is refused and nothing is touched)",
    )
    add_no_progress_argument(p, "no progress bar (loss lines in the log instead)")
    p.set_defaults(func=cmd_train_encoder)


def resolve_config(args: argparse.Namespace) -> EncoderConfig:
    """Build the validated EncoderConfig from --config, explicit flags and --set overrides.

    Raises:
        ConfigError: unreadable YAML, unknown key, wrong type or invalid value.
    """
    data = config_data(config_path(args), flag_values(args, EncoderConfig))
    cfg = from_dict(EncoderConfig, apply_overrides(data, list(args.overrides or [])), "encoder")
    cfg.validate()
    return cfg


def cmd_train_encoder(args: argparse.Namespace) -> int:
    """``synthgen train-encoder``: returns 0; typed errors propagate to ``cli_args.run_guarded``.

    Raises:
        ConfigError: bad flags or config, no or remote checkpoint (exit 2; nothing written).
        CheckpointError: unloadable checkpoint, or an encoder exists without --overwrite (exit 1).
    """
    cfg = resolve_config(args)
    if args.dry_run:
        return _dry_run(cfg)
    from synthgen.invert.encoder_train import train_encoder

    info = train_encoder(cfg)
    print(f"encoder: {info.path} (for generator step {info.generator_step}, sha256 {info.generator_digest[:16]}...)")
    print("losses: " + ", ".join(f"{k} {v:.4f}" for k, v in info.losses.items()))
    return 0


def _dry_run(cfg: EncoderConfig) -> int:
    """Print the resolved config and the target folder; read the checkpoint, write nothing."""
    from synthgen.invert.encoder import target_for

    print("# resolved train-encoder config")
    print(dump_yaml(cfg), end="")
    target, generator, info = target_for(cfg)
    exists = os.path.exists(target)
    print("# plan (nothing written)")
    print(f"checkpoint: {info.path} (step {info.step}, sha256 {info.digest[:16]}...)")
    print(f"generator: z_dim {generator.z_dim}, image shape {list(info.image_shape)}, {len(info.class_names)} classes")
    print(
        f"encoder: {target}"
        + (
            " (exists: " + ("will be replaced" if cfg.overwrite else "refused without --overwrite") + ")"
            if exists
            else ""
        )
    )
    return 0
