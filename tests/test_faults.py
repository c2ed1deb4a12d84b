"""synthgen.faults: test-only fault injection comes from SYNTHGEN_FAULTS, never from user configs."""

from __future__ import annotations

import dataclasses

import pytest

from synthgen.config import ExperimentConfig, load_config
from synthgen.errors import ConfigError
from synthgen.faults import ENV_VAR, Faults, from_env, parse_faults
from synthgen.sample.config import SampleConfig


def test_the_variable_sets_each_fault_and_leaves_the_others_off():
    got = parse_faults("train.fail_at_step=9, sample.fail_after_batches=1")
    assert got == Faults(train_fail_at_step=9, train_nan_at_step=-1, sample_fail_after_batches=1)
    assert parse_faults("") == Faults()


def test_an_unknown_fault_or_a_bad_value_names_the_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown fault 'train.fail_at'.*train.fail_at_step"):
        parse_faults("train.fail_at=3")
    with pytest.raises(ConfigError, match="needs an integer value"):
        parse_faults("train.nan_at_step=soon")


def test_from_env_reads_the_variable(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "train.nan_at_step=4")
    assert from_env().train_nan_at_step == 4
    monkeypatch.delenv(ENV_VAR)
    assert from_env() == Faults()


def test_user_configs_hold_no_fault_keys():
    names = {f.name for cls in (ExperimentConfig, SampleConfig) for f in dataclasses.fields(cls)}
    names |= {f"train.{f.name}" for f in dataclasses.fields(ExperimentConfig().train)}
    assert not [n for n in names if "fail_" in n or "nan_at" in n]


def test_a_config_that_still_sets_a_fault_key_is_told_where_it_went():
    with pytest.raises(ConfigError, match="SYNTHGEN_FAULTS=train.fail_at_step"):
        load_config(ExperimentConfig, "jobs/configs/fashion_mnist_smoke.yaml", ["train.fail_at_step=3"])


def test_a_saved_config_with_the_retired_keys_still_loads():
    from synthgen.config import from_dict, to_dict, upgrade_legacy_config

    saved = to_dict(ExperimentConfig())
    saved["train"].update(fail_at_step=-1, nan_at_step=-1)  # what checkpoints written before held
    assert from_dict(ExperimentConfig, upgrade_legacy_config(saved)) == ExperimentConfig()
