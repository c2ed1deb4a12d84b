"""Config loading: YAML + dotted overrides, unknown keys, wrong types, missing files, --dry-run."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from synthgen.cli import main
from synthgen.config import ExperimentConfig, dump_yaml, load_config
from synthgen.errors import ConfigError

CONFIG = "jobs/configs/fashion_mnist.yaml"


def test_default_config_file_loads_with_overrides():
    cfg = load_config(ExperimentConfig, CONFIG, ["train.steps=7", "train.num_workers=4", "model.loss=bce"])
    assert (cfg.train.steps, cfg.train.num_workers, cfg.model.loss) == (7, 4, "bce")
    assert cfg.model.name == "cdcgan"


def test_unknown_key_lists_valid_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  stepz: 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(ExperimentConfig, path)
    assert "stepz" in str(info.value) and "steps" in str(info.value) and "batch_size" in str(info.value)


def test_unknown_section_via_override_is_rejected():
    with pytest.raises(ConfigError, match="valid keys are"):
        load_config(ExperimentConfig, None, ["trian.steps=3"])


def test_wrong_type_names_key_and_value():
    with pytest.raises(ConfigError, match=r"train\.steps.*expected int.*'many'"):
        load_config(ExperimentConfig, None, ["train.steps=many"])


def test_int_is_accepted_for_float_but_bool_is_not_int():
    assert load_config(ExperimentConfig, None, ["train.lr_g=1"]).train.lr_g == 1.0
    with pytest.raises(ConfigError):
        load_config(ExperimentConfig, None, ["train.steps=true"])


def test_out_of_range_value_is_rejected():
    with pytest.raises(ConfigError, match="data.resolution"):
        load_config(ExperimentConfig, None, ["data.resolution=30"])


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config(ExperimentConfig, missing)


def test_malformed_override_is_rejected():
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(ExperimentConfig, None, ["train.steps"])


def test_dump_round_trips():
    cfg = load_config(ExperimentConfig, CONFIG, ["run.name=x"])
    again = load_config(ExperimentConfig, None, [])
    from synthgen.config import from_dict

    assert from_dict(ExperimentConfig, yaml.safe_load(dump_yaml(cfg))) == cfg
    assert again != cfg


def test_cli_dry_run_prints_resolved_config(capsys, tmp_path):
    code = main(["train", "--config", CONFIG, "--set", "train.steps=11", "--set",
                 f"run.storage_path={tmp_path}", "--dry-run"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert code == 0 and printed["train"]["steps"] == 11 and printed["model"]["name"] == "cdcgan"
    assert list(tmp_path.iterdir()) == []  # a dry run writes nothing


def test_cli_reports_config_errors_with_exit_code_2(capsys):
    code = main(["train", "--config", CONFIG, "--set", "model.widht=3", "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2 and "widht" in err and "g_channels" in err


def test_console_script_help_explains_outputs():
    out = subprocess.run([sys.executable, "-m", "synthgen.cli", "train", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "--resume" in out and "metrics.jsonl" in out and "--set" in out
