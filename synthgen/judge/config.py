"""Typed, frozen training recipe of the judge classifier (part of ``EvalConfig`` as ``judge``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JudgeConfig:
    epochs: int = 4  # passes over the real training split
    batch_size: int = 128  # images per Adam step
    lr: float = 1e-3  # Adam learning rate (cosine-decayed to 0)
    width: int = 32  # SmallCNN first-block channels (features are always 128-d)
    augment: bool = False  # random 2-px shifts while training
    seed: int = 0  # weight init and batch order
    max_train_images: int = 0  # 0 = the whole training split; N = a stratified subset (tests, smoke runs)
    cache_dir: str = ""  # "" = ~/.cache/synthgen/judges; trained judges are reused per dataset + config
