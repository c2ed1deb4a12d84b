"""Config loading: YAML + dotted overrides, unknown keys, wrong types, missing files, model.arch, --dry-run."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import yaml

from synthgen.cli import main
from synthgen.config import ExperimentConfig, ModelConfig, dump_yaml, from_dict, load_config, to_dict
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


def test_dump_round_trips_and_an_override_changes_exactly_its_field(tmp_path):
    cfg = load_config(ExperimentConfig, CONFIG)
    path = tmp_path / "dumped.yaml"
    path.write_text(dump_yaml(cfg))
    assert load_config(ExperimentConfig, path) == cfg  # dump -> load is the identity

    changed = load_config(ExperimentConfig, path, ["train.steps=123", "model.arch.d_channels=24"])
    before, after = to_dict(cfg), to_dict(changed)
    assert after["train"] == {**before["train"], "steps": 123}
    assert after["model"] == {**before["model"], "arch": {**before["model"]["arch"], "d_channels": 24}}
    assert {k: v for k, v in after.items() if k not in ("train", "model")} == {
        k: v for k, v in before.items() if k not in ("train", "model")
    }


def test_model_arch_is_resolved_with_the_models_defaults():
    cfg = load_config(ExperimentConfig, None, ["model.arch.g_channels=16"])
    assert cfg.model.arch == {"g_channels": 16, "d_channels": 64}  # d_channels: cdcgan's default
    assert ModelConfig(name="mlp").arch == {}  # the mlp declares no options
    assert yaml.safe_load(dump_yaml(cfg))["model"]["arch"] == {"g_channels": 16, "d_channels": 64}
    # a resolved config stays the same when resolved again (checkpoints and Ray workers reload it)
    assert from_dict(ExperimentConfig, to_dict(cfg)) == cfg
    assert dataclasses.replace(cfg.model, z_dim=7).arch == cfg.model.arch


def test_old_flat_model_width_is_rejected_naming_its_new_key(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("model:\n  name: cdcgan\n  g_channels: 32\n")
    with pytest.raises(ConfigError) as info:
        load_config(ExperimentConfig, path)
    assert "unknown key(s) ['g_channels']" in str(info.value) and "model.arch.g_channels" in str(info.value)


@pytest.mark.parametrize(
    "override, problem",
    [
        (
            ["model.arch.g_chanels=8"],
            r"model\.arch: unknown key\(s\) \['g_chanels'\]; valid keys are: \['d_channels', 'g_channels'\]",
        ),
        (
            ["model.name=mlp", "model.arch.g_channels=8"],
            r"unknown key\(s\) \['g_channels'\]; valid keys are: \[\].*'mlp'",
        ),
        (["model.arch.g_channels=wide"], r"model\.arch\.g_channels: expected int, got 'wide'"),
        (["model.arch.d_channels=0"], r"model\.arch\.d_channels=0 is invalid: must be >= 1"),
        (["model.arch=[8, 8]"], r"model\.arch: expected a mapping"),
    ],
)
def test_model_arch_is_validated_against_the_chosen_models_options(override, problem):
    with pytest.raises(ConfigError, match=problem):
        load_config(ExperimentConfig, None, override)


def test_cli_dry_run_prints_resolved_config(capsys, tmp_path):
    code = main(
        ["train", "--config", CONFIG, "--set", "train.steps=11", "--set", f"run.storage_path={tmp_path}", "--dry-run"]
    )
    printed = yaml.safe_load(capsys.readouterr().out)
    assert code == 0 and printed["train"]["steps"] == 11 and printed["model"]["name"] == "cdcgan"
    assert printed["model"]["arch"] == {"g_channels": 64, "d_channels": 64}  # the full resolved options
    assert list(tmp_path.iterdir()) == []  # a dry run writes nothing


def test_cli_reports_config_errors_with_exit_code_2(capsys):
    code = main(["train", "--config", CONFIG, "--set", "model.widht=3", "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown key(s) ['widht']" in err and "model.arch.widht" in err


def test_console_script_help_explains_outputs():
    out = subprocess.run(
        [sys.executable, "-m", "synthgen.cli", "train", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--resume" in out and "metrics.jsonl" in out and "--set" in out


@pytest.mark.parametrize(
    "path",
    [
        "jobs/configs/fashion_mnist.yaml",
        "jobs/configs/fashion_mnist_smoke.yaml",
        "jobs/configs/stylegan_rgb64.yaml",
        "jobs/configs/cyclegan_rgb.yaml",
        "jobs/configs/cyclegan_scene.yaml",
        "jobs/configs/pixelda_rgb.yaml",
        "jobs/configs/pixelda_scene.yaml",
        "jobs/configs/pix2pix_edges.yaml",
        "jobs/configs/srgan_rgb128.yaml",
        "experiments/configs/srgan_rgb32.yaml",
        "experiments/configs/srgan_rgb32_subpixel.yaml",
        "experiments/configs/cascade_gan8.yaml",
        "experiments/configs/edges_1pct.yaml",
        "experiments/configs/honest_1pct.yaml",
        "experiments/configs/honest_10pct.yaml",
        "experiments/configs/honest_longtail.yaml",
        "experiments/configs/compare_rgb32_cdcgan.yaml",
        "experiments/configs/compare_rgb32_stylegan.yaml",
    ],
)
def test_every_training_config_loads_and_validates(path):
    cfg = load_config(ExperimentConfig, path)
    cfg.validate()
    assert cfg.run.name  # each names its run folder
