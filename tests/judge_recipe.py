"""Test helper: the tests' one judge recipe. Every test that trains or evaluates with a judge uses it, so the session
trains it and computes its real-split features once, in the session's cache (tests/conftest.py sets
SYNTHGEN_CACHE); a test with its own recipe would train a second judge (~40 s here).

A judge of >= 5000 images (~80% accuracy) is needed for test_evaluate_sanity's noise checks: weaker feature spaces
put the tight cluster of noise features inside the k-NN ball of some real outlier, which lifts precision.
"""

from __future__ import annotations

from synthgen.judge.config import JudgeConfig

JUDGE_RECIPE = {"epochs": 1, "max_train_images": 10000}  # one pass over a stratified 10,000-image subset


def judge_config() -> JudgeConfig:
    """The recipe as the judge's config."""
    return JudgeConfig(**JUDGE_RECIPE)


def judge_sets(prefix: str = "judge") -> list[str]:
    """The recipe as dotted overrides under ``prefix`` (``judge`` for evaluate, ``evaluate.judge`` for a pipeline)."""
    return [f"{prefix}.{key}={value}" for key, value in JUDGE_RECIPE.items()]


def judge_args(prefix: str = "judge") -> list[str]:
    """The recipe as command-line ``--set`` pairs."""
    return [arg for override in judge_sets(prefix) for arg in ("--set", override)]
