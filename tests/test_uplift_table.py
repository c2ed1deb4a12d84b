"""experiments/uplift_table.py: uplift over seeds from matched train_classifier results; unmatched pairs refused."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from synthgen.config import to_dict
from synthgen.errors import ConfigError
from tests.job_module import load_job

table_job = load_job("uplift_table", "experiments")
classifier_job = load_job("train_classifier")


def _write(path, seed: int, accuracy: float, rare: float | None = None, **settings) -> None:
    """A result JSON laid out as train_classifier.run writes it (its own config dataclass, to_dict)."""
    cfg = classifier_job.ClassifierJobConfig(seed=seed, steps=2400, num_threads=1, **settings)
    result = {"accuracy": accuracy, "rare_accuracy": rare, "train_on": cfg.train_on, "config": to_dict(cfg)}
    path.write_text(json.dumps(result))


def _pairs(tmp_path, real: dict[int, float], arm: dict[int, float], **arm_settings) -> tuple[str, str]:
    for seed, acc in real.items():
        _write(tmp_path / f"real{seed:02d}.json", seed, acc, train_on="real")
    for seed, acc in arm.items():
        _write(tmp_path / f"arm{seed:02d}.json", seed, acc, shards="s", synthetic_fraction=0.25, **arm_settings)
    return str(tmp_path / "real{seed:02d}.json"), str(tmp_path / "arm{seed:02d}.json")


def test_uplift_per_seed_and_over_seeds(tmp_path):
    real, arm = _pairs(tmp_path, {0: 0.80, 1: 0.82, 2: 0.81}, {0: 0.81, 1: 0.815, 2: 0.83})
    table = table_job.summarise(table_job.seed_rows(real, arm, [0, 1, 2]), choosing=[])
    ups = [r["uplift_points"] for r in table["rows"]]
    assert ups == pytest.approx([1.0, -0.5, 2.0])
    s = table["all"]["uplift_points"]
    assert s["mean"] == pytest.approx(2.5 / 3)
    assert s["positive"] == 2
    sample_std = math.sqrt(sum((u - 2.5 / 3) ** 2 for u in ups) / 2)
    assert s["se"] == pytest.approx(sample_std / math.sqrt(3))


def test_confirmation_leaves_out_the_choosing_seeds(tmp_path):
    real, arm = _pairs(tmp_path, {s: 0.80 for s in range(4)}, {0: 0.85, 1: 0.85, 2: 0.79, 3: 0.81})
    table = table_job.summarise(table_job.seed_rows(real, arm, [0, 1, 2, 3]), choosing=[0, 1])
    assert table["confirmation"]["seeds"] == [2, 3]
    assert table["confirmation"]["uplift_points"]["mean"] == pytest.approx(0.0)
    assert table["all"]["uplift_points"]["mean"] == pytest.approx(2.5)


def test_a_different_thread_count_is_not_a_matched_pair(tmp_path):
    _write(tmp_path / "real00.json", 0, 0.80, train_on="real")
    cfg = classifier_job.ClassifierJobConfig(seed=0, steps=2400, num_threads=2, shards="s")
    (tmp_path / "arm00.json").write_text(json.dumps({"accuracy": 0.81, "config": to_dict(cfg)}))
    with pytest.raises(ConfigError, match="num_threads: 1 vs 2"):
        table_job.seed_rows(str(tmp_path / "real{seed:02d}.json"), str(tmp_path / "arm{seed:02d}.json"), [0])


def test_a_different_real_subset_is_not_a_matched_pair(tmp_path):
    data = dataclasses.replace(classifier_job.ClassifierJobConfig().data, max_images=6000)
    real, arm = _pairs(tmp_path, {0: 0.80}, {0: 0.81}, data=data)
    with pytest.raises(ConfigError, match="data.max_images"):
        table_job.seed_rows(real, arm, [0])


def test_keys_missing_from_an_older_result_read_as_their_defaults(tmp_path):
    real, arm = _pairs(tmp_path, {0: 0.80}, {0: 0.81})
    old = json.loads((tmp_path / "real00.json").read_text())
    del old["config"]["class_balanced"], old["config"]["data"]["class_counts"]  # written before they existed
    (tmp_path / "real00.json").write_text(json.dumps(old))
    assert table_job.seed_rows(real, arm, [0])[0]["uplift_points"] == pytest.approx(1.0)


def test_the_baseline_must_be_real_only(tmp_path):
    _, arm = _pairs(tmp_path, {}, {0: 0.81})
    with pytest.raises(ConfigError, match="train_on=real"):
        table_job.seed_rows(arm, arm, [0])


def test_rare_class_uplift_when_both_runs_record_it(tmp_path):
    _write(tmp_path / "real00.json", 0, 0.80, rare=0.90, train_on="real")
    _write(tmp_path / "arm00.json", 0, 0.80, rare=0.93, shards="s")
    rows = table_job.seed_rows(str(tmp_path / "real{seed:02d}.json"), str(tmp_path / "arm{seed:02d}.json"), [0])
    assert rows[0]["rare_uplift_points"] == pytest.approx(3.0)


def test_without_real_the_arms_own_real_only_accuracy_is_the_baseline(tmp_path):
    _, arm = _pairs(tmp_path, {}, {0: 0.81})
    result = json.loads((tmp_path / "arm00.json").read_text())
    (tmp_path / "arm00.json").write_text(json.dumps({**result, "real_only_accuracy": 0.805}))
    assert table_job.seed_rows(None, arm, [0])[0]["uplift_points"] == pytest.approx(0.5)
    _pairs(tmp_path, {}, {1: 0.81})  # a plain real+synthetic run records no baseline of its own
    with pytest.raises(ConfigError, match="--real"):
        table_job.seed_rows(None, arm, [1])


def test_a_missing_seed_is_an_error_and_writes_nothing(tmp_path, capsys):
    real, arm = _pairs(tmp_path, {0: 0.80}, {0: 0.81})
    out = tmp_path / "table.json"
    code = table_job.main(["--real", real, "--arm", arm, "--seeds", "0-1", "--out", str(out)])
    assert code == 2
    assert "arm01.json does not exist" in capsys.readouterr().err
    assert not out.exists()


def test_out_round_trips_the_table(tmp_path, capsys):
    real, arm = _pairs(tmp_path, {0: 0.80, 1: 0.80}, {0: 0.81, 1: 0.79})
    out = tmp_path / "sub" / "table.json"
    assert table_job.main(["--real", real, "--arm", arm, "--seeds", "0,1", "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert [r["seed"] for r in written["rows"]] == [0, 1]
    assert written["all"]["uplift_points"]["values"] == pytest.approx([1.0, -1.0])
    assert "| 1 | 0.8000 | 0.7900 | -1.00 |" in capsys.readouterr().out


@pytest.mark.parametrize("spec", ["", "a-b", "0,0", "-1", "2-", "3-1", "0-2,1"])
def test_bad_seed_lists_are_refused(spec):
    with pytest.raises(ConfigError, match="seeds"):
        table_job.parse_seeds(spec)


def test_a_pattern_without_a_seed_field_is_refused(tmp_path):
    real, _ = _pairs(tmp_path, {0: 0.80}, {0: 0.81})
    with pytest.raises(ConfigError, match="no \\{seed\\} field"):
        table_job.seed_rows(real, str(tmp_path / "arm00.json"), [0])
