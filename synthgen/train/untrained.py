"""An untrained (randomly initialised) checkpoint, for smoke tests and throughput benchmarks.

Sampling speed and the output machinery do not depend on what the weights learned, so the
``--smoke-test`` jobs and the test suite write a real checkpoint (the same ``make_payload`` /
``write_checkpoint_dir`` path training uses) with fresh weights instead of training first.
The images it produces are noise-like: never use it for quality work.
"""

from __future__ import annotations

import copy
import os

import torch

from synthgen.config import ExperimentConfig
from synthgen.data.idx import FASHION_MNIST_CLASSES


def write_random_checkpoint(
    run_dir: str,
    config: ExperimentConfig | None = None,
    class_names: tuple[str, ...] = FASHION_MNIST_CLASSES,
    seed: int = 0,
    step: int = 0,
) -> str:
    """Write ``<run_dir>/checkpoint-NNNNNN`` holding freshly initialised networks.

    Args:
        run_dir: run folder to create the checkpoint in.
        config: experiment config (model and data shape); defaults to ``ExperimentConfig()``.
        class_names: label index -> name.
        seed: torch seed of the initialisation (same seed -> same weights -> same digest).
        step: step number recorded (and used in the folder name).

    Returns:
        The checkpoint folder.
    """
    from synthgen.checkpoint import TrainingState, checkpoint_name, make_payload, write_checkpoint_dir
    from synthgen.models import build_models, build_translation_models, get_model_spec
    from synthgen.translation import translator_shapes

    config = config or ExperimentConfig()
    side = config.data.resolution
    shape = (config.data.channels, side, side)
    torch.manual_seed(seed)
    if get_model_spec(config.model.name).translation:  # an image -> image model: domain A -> domain B
        b = config.data_b if config.data_b is not None else config.data  # data.pairs=edges: B = data's images
        shape = (b.channels, side, side)
        in_shape, _ = translator_shapes(config, shape)
        generator, discriminator = build_translation_models(config.model, in_shape, shape, len(class_names))
    else:
        generator, discriminator = build_models(config.model, shape, len(class_names))
        # BatchNorm running stats start at (0, 1); one train-mode forward gives them realistic values.
        with torch.no_grad():
            generator.train()
            generator(torch.randn(64, config.model.z_dim), torch.arange(64) % len(class_names))
    generator_ema = copy.deepcopy(generator)
    state = TrainingState(
        generator=generator,
        discriminator=discriminator,
        generator_ema=generator_ema,
        opt_g=torch.optim.Adam(generator.parameters()),
        opt_d=torch.optim.Adam(discriminator.parameters()),
    )
    payload = make_payload(state, step=step, config=config, class_names=class_names, image_shape=shape)
    return write_checkpoint_dir(os.path.join(run_dir, checkpoint_name(step)), payload, config)
