"""``synthgen sample`` / ``synthgen verify`` argument handling (no Ray needed)."""

from __future__ import annotations

import os

import pytest

from synthgen.cli import main
from synthgen.config import ExperimentConfig, from_dict
from synthgen.train.untrained import write_random_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    cfg = from_dict(ExperimentConfig, {"model": {"z_dim": 16, "arch": {"g_channels": 16, "d_channels": 16}}})
    return write_random_checkpoint(str(tmp_path_factory.mktemp("run")), cfg)


def test_help_documents_the_output_layout(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sample", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for needle in (
        "parquet/shard-000000.parquet",
        "png/<class folder>",
        "manifest.json",
        "--class-weights",
        "--dry-run",
    ):
        assert needle in text


def test_dry_run_prints_the_resolved_config_and_plan_and_writes_nothing(checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        [
            "sample",
            "--checkpoint",
            checkpoint,
            "--out",
            str(out),
            "--num-samples",
            "30",
            "--classes",
            "Bag,Sneaker",
            "--set",
            "seed=9",
            "--dry-run",
        ]
    )
    text = capsys.readouterr().out
    assert code == 0 and "seed: 9" in text and "num_samples: 30" in text
    assert "'Sneaker': 15, 'Bag': 15" in text
    assert not out.exists()


def test_yaml_config_is_overridden_by_flags_then_set(checkpoint, tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(f"checkpoint: {checkpoint}\nout: {tmp_path / 'o'}\nnum_samples: 11\nseed: 1\n")
    assert main(["sample", "--config", str(path), "--seed", "2", "--set", "num_actors=3", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "num_samples: 11" in text and "seed: 2" in text and "num_actors: 3" in text


def test_unknown_set_key_is_a_config_error(checkpoint, tmp_path, capsys):
    code = main(["sample", "--checkpoint", checkpoint, "--out", str(tmp_path / "o"), "--set", "bogus=1"])
    assert code == 2 and "unknown key(s) ['bogus']" in capsys.readouterr().err


def test_missing_checkpoint_is_reported_with_the_fix(tmp_path, capsys):
    code = main(["sample", "--checkpoint", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1 and "does not exist" in err and "checkpoint-NNNNNN" in err
    assert not os.path.exists(tmp_path / "o")


def test_verify_of_a_folder_without_manifest_fails_clearly(tmp_path, capsys):
    assert main(["verify", str(tmp_path)]) == 1
    assert "manifest.json not found" in capsys.readouterr().err


@pytest.mark.parametrize("below", [False, True])
def test_out_that_is_an_existing_file_is_refused_before_anything_is_written(checkpoint, tmp_path, capsys, below):
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me")
    out = existing / "sub" if below else existing
    code = main(["sample", "--checkpoint", checkpoint, "--out", str(out), "--num-samples", "4"])
    err = capsys.readouterr().err
    assert code == 2 and f"--out {out}" in err and "not a folder" in err and "pass a folder path" in err
    assert "Traceback" not in err and "pyarrow" not in err.lower()
    assert existing.read_text() == "keep me" and sorted(os.listdir(tmp_path)) == ["notes.txt"]


def test_checkpoint_that_does_not_fit_the_model_code_is_a_checkpoint_error(checkpoint, tmp_path, capsys):
    import shutil

    import torch

    bad = str(tmp_path / "bad")
    shutil.copytree(checkpoint, bad)
    payload = torch.load(os.path.join(bad, "model.pt"), weights_only=True)
    payload["config"]["model"]["arch"]["g_channels"] = 32  # weights no longer match the architecture
    torch.save(payload, os.path.join(bad, "model.pt"))
    code = main(["sample", "--checkpoint", bad, "--out", str(tmp_path / "o"), "--dry-run"])
    assert code == 1 and "does not fit the current model code" in capsys.readouterr().err
