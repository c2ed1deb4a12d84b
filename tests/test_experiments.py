"""experiments/tables.py: the committed tables equal what the result files give; the statistics; clear errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.job_module import load_job

tables = load_job("tables", "experiments")
store_result = load_job("store_result", "experiments")
ROOT = Path(__file__).resolve().parent.parent


def test_every_committed_block_equals_what_the_results_give():
    specs = tables.load_specs()
    stale = tables.update(tables.pages(), check=True, tables=specs)
    assert stale == [], f"run python experiments/tables.py: stale blocks {stale}"
    names = {m[1] for page in tables.pages() if page.is_file() for m in tables.BLOCK.findall(page.read_text())}
    assert {"headline", "1pct_mode_seeking", "10pct_mode_seeking", "stylegan_twins", "encoder_speed"} <= names


def test_an_edited_figure_makes_its_block_stale(tmp_path):
    page = ROOT / "experiments" / "uplift_1pct.md"
    edited = tmp_path / "uplift_1pct.md"
    edited.write_text(
        page.read_text().replace(
            "| 0 (choosing) | 0.8290 | 0.8374 | +0.84 |", "| 0 (choosing) | 0.8290 | 0.8374 | +0.85 |"
        )
    )
    assert edited.read_text() != page.read_text()
    assert tables.update([edited], check=True, tables=tables.load_specs()) == [f"{edited}: 1pct_mode_seeking"]


def test_every_result_file_names_its_origin_and_transcribed_ones_agree_with_their_accuracies():
    files = sorted((ROOT / "experiments" / "results").rglob("*.json"))
    assert len(files) > 50
    for path in files:
        result = json.loads(path.read_text())
        if not result.get("transcribed"):  # measured here: the command that produced it and the commit it ran at
            assert result["command"].split()[0] in ("synthgen", "python"), path
            assert len(result["commit"]) == 40, path
            continue
        assert result["transcribed_from"].endswith("README.md"), path
        if result.get("uplift_points") is not None and result.get("accuracy") is not None:
            base_path = path.parent.parent / ("real_t1" if "t1" in path.parent.name else "real") / path.name
            base = result.get("real_only_accuracy")
            if base is None and base_path.is_file():
                base = json.loads(base_path.read_text())["accuracy"]
            if base is not None:  # quoted uplift within the rounding of the quoted accuracies
                assert abs(100 * (result["accuracy"] - base) - result["uplift_points"]) < 0.011, path


def _result(folder: Path, seed: int, accuracy: float | None, **extra) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    config = {"seed": seed, "steps": 2400, "data": {"max_images": 600, "subset_seed": seed}}
    config["train_on"] = extra.pop("train_on", "real+synthetic")
    (folder / f"seed{seed:02d}.json").write_text(json.dumps({"accuracy": accuracy, "config": config, **extra}))


@pytest.fixture
def fake(tmp_path):
    """Uplifts +1, -0.5, +2, +0.5 points on seeds 0-3 (choosing 0-1)."""
    for seed, (real, arm) in enumerate([(0.80, 0.81), (0.82, 0.815), (0.81, 0.83), (0.80, 0.805)]):
        _result(tmp_path / "s" / "real", seed, real, train_on="real")
        _result(tmp_path / "s" / "arm", seed, arm)
    return tmp_path


def test_statistics_on_a_fake_results_folder(fake):
    spec = tables.Seeds("s/arm", "s/real", (0, 1))
    rows = tables.seed_rows(spec, fake)
    ups = [1.0, -0.5, 2.0, 0.5]
    assert [r["uplift_points"] for r in rows] == pytest.approx(ups)
    text = tables.render("t", {"t": spec}, fake)
    mean, pop_std = 0.75, math.sqrt(sum((u - 0.75) ** 2 for u in ups) / 4)
    se = math.sqrt(sum((u - 0.75) ** 2 for u in ups) / 3) / 2
    assert f"- All seeds 0-3: +{mean:.2f} ± {pop_std:.2f} (SE {se:.2f}), 3/4 positive" in text  # +0.75 ± 0.90 (SE 0.52)
    assert "- Confirmation seeds 2, 3: +1.25 ± 0.75 (SE 0.75), 2/2 positive" in text
    assert "| 1 (choosing) | 0.8200 | 0.8150 | -0.50 |" in text and "| 2 (confirmation) |" in text


def test_arms_rows_quoted_uplifts_and_differences(fake):
    _result(fake / "s" / "other", 0, None, uplift_points=0.1)  # transcribed: only the uplift was quoted
    _result(fake / "s" / "other", 1, None, uplift_points=-0.8)
    spec = tables.Arms(
        (tables.Arm("a", "s/arm", (0, 1), real="s/real"), tables.Arm("d", "s/arm", (), "s/other", "s/real"))
    )
    lines = tables.render("t", {"t": spec}, fake).splitlines()
    assert lines[2] == "| a | 0, 1 | +1.00, -0.50 | +0.25 ± 0.75 (SE 0.75), 1/2 positive |"
    assert lines[3] == "| d | 0, 1 | +0.90, +0.30 | +0.60 ± 0.30 (SE 0.30), 2/2 positive |"


def test_runs_rows_read_flat_and_dotted_nested_keys(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "a.json").write_text(json.dumps({"fd.ratio": 3.0, "speed": {"steady": 12.5}}))
    spec = tables.Runs(
        (("FD", 0, "fd.ratio", ".1f"), ("img/s", 0, "speed.steady", ".0f"), ("x", 0, "no.such", ".1f")),
        (("a", ("r/a",)),),
    )
    assert tables.render("t", {"t": spec}, tmp_path).splitlines()[-1] == "| a | 3.0 | 12 |  |"  # absent: blank


def test_runs_rows_summarise_a_key_over_their_seeds(tmp_path):
    (tmp_path / "r").mkdir()
    for name, gain in (("s0", 1.0), ("s1", 2.0), ("s2", -0.5)):
        (tmp_path / "r" / f"{name}.json").write_text(json.dumps({"gain": gain}))
    spec = tables.Runs(
        (("gain", "mean", "gain", "+.2f"), ("> 0", "positive", "gain", ""), ("seed 1", 1, "gain", "+.2f")),
        (("three seeds", ("r/s0", "r/s1", "r/s2")),),
    )
    # mean 0.833, population std 1.027, SE = sample std 1.258 / sqrt(3) = 0.726
    assert tables.render("t", {"t": spec}, tmp_path).splitlines()[-1] == (
        "| three seeds | +0.83 ± 1.03 (SE 0.73) | 2/3 > 0 | +2.00 |"
    )
    (tmp_path / "r" / "s2.json").write_text(json.dumps({"other": 1}))
    with pytest.raises(tables.TableError, match="no number under 'gain'"):
        tables.render("t", {"t": spec}, tmp_path)


def _transfer_seed(folder: Path, seed: int, accuracy: dict[str, float]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"seed{seed:02d}.json").write_text(json.dumps({"accuracy": accuracy, "config": {"seed": seed}}))


def test_a_transfer_table_adds_a_later_arm_and_refuses_one_that_disagrees(tmp_path):
    core = [arm for arm, _ in tables.TRANSFER_ARMS]
    for seed in (0, 1):
        _transfer_seed(tmp_path / "t" / "main", seed, {arm: 0.5 + 0.01 * k + 0.1 * seed for k, arm in enumerate(core)})
        generic = 0.5 + 0.01 * core.index("source_generic_aug") + 0.1 * seed
        _transfer_seed(
            tmp_path / "t" / "later", seed, {"source_generic_aug": generic, "translated_plus_generic": generic + 0.03}
        )
    plain = tables.render("x", {"x": tables.Transfer("t/main")}, tmp_path)
    assert "generic-augmented A |" in plain and "translated into B + generic" not in plain
    text = tables.render("x", {"x": tables.Transfer("t/main", (), ("t/later",))}, tmp_path)
    assert "| A translated into B + generic-augmented A | 0.5400 | 0.6400 |" in text
    assert "| (translated + generic A) - generic augmentation, points | +3.00 | +3.00 |" in text
    _transfer_seed(tmp_path / "t" / "later", 1, {"source_generic_aug": 0.1, "translated_plus_generic": 0.2})
    with pytest.raises(tables.TableError, match="source_generic_aug is 0.1 but the study's seed 1 has 0.61"):
        tables.render("x", {"x": tables.Transfer("t/main", (), ("t/later",))}, tmp_path)


def test_a_second_translator_takes_the_translator_free_arms_from_the_first_and_checks_they_agree(tmp_path):
    core = [arm for arm, _ in tables.TRANSFER_ARMS]
    for seed in (0, 1):
        _transfer_seed(tmp_path / "t" / "first", seed, {arm: 0.5 + 0.01 * k + 0.1 * seed for k, arm in enumerate(core)})
        generic = 0.5 + 0.01 * core.index("source_generic_aug") + 0.1 * seed
        own = {"source_generic_aug": generic, "translated": 0.9, "few_b_plus_translated": 0.95}
        _transfer_seed(tmp_path / "t" / "second", seed, own)
    spec = tables.Transfer("t/second", shared="t/first")
    text = tables.render("x", {"x": spec}, tmp_path)
    assert "| A translated into B | 0.9000 | 0.9000 |" in text  # its own arm, not the first translator's
    assert "| B's own labels (oracle) | 0.5300 | 0.6300 |" in text  # a translator-free arm, from the first
    with pytest.raises(tables.TableError, match="accuracy must hold every arm"):  # nothing shared: arms missing
        tables.render("x", {"x": tables.Transfer("t/second")}, tmp_path)
    _transfer_seed(tmp_path / "t" / "second", 1, {**own, "source_generic_aug": 0.1})
    with pytest.raises(tables.TableError, match="source_generic_aug is 0.61 but the study's seed 1 has 0.1"):
        tables.render("x", {"x": spec}, tmp_path)
    other_half = json.loads((tmp_path / "t" / "second" / "seed01.json").read_text()) | {"halves": {"source": "even"}}
    (tmp_path / "t" / "second" / "seed01.json").write_text(json.dumps(other_half))
    with pytest.raises(tables.TableError, match="not the halves or settings"):
        tables.render("x", {"x": spec}, tmp_path)
    (tmp_path / "t" / "first" / "seed01.json").unlink()
    with pytest.raises(tables.TableError, match="seed 1 has no result in the shared folder"):
        tables.render("x", {"x": spec}, tmp_path)


def test_a_block_is_rewritten_and_nothing_else(fake):
    page = fake / "page.md"
    page.write_text("intro\n<!-- begin: table t -->\nold\n<!-- end: table t -->\noutro\n")
    specs = {"t": tables.Seeds("s/arm", "s/real")}
    assert tables.update([page], check=True, tables=specs, root=fake) == [f"{page}: t"]
    assert "old" in page.read_text()  # --check writes nothing
    tables.update([page], check=False, tables=specs, root=fake)
    text = page.read_text()
    assert text.startswith("intro\n<!-- begin: table t -->\n| seed |") and text.endswith(
        "<!-- end: table t -->\noutro\n"
    )
    assert tables.update([page], check=True, tables=specs, root=fake) == []


def test_an_unknown_block_name_is_a_clear_error(fake):
    page = fake / "page.md"
    page.write_text("<!-- begin: table nope -->\n<!-- end: table nope -->\n")
    with pytest.raises(tables.TableError, match="page.md: unknown table 'nope'; tables: t"):
        tables.update([page], check=True, tables={"t": tables.Seeds("s/arm")}, root=fake)


def test_a_begin_without_its_end_is_a_clear_error(fake):
    page = fake / "page.md"
    page.write_text("<!-- begin: table t -->\n<!-- end: table other -->\n")
    with pytest.raises(tables.TableError, match="without its"):
        tables.update([page], check=True, tables={"t": tables.Seeds("s/arm")}, root=fake)


def test_malformed_json_is_a_clear_error(fake):
    (fake / "s" / "arm" / "seed01.json").write_text('{"accuracy": 0.8,')
    with pytest.raises(tables.TableError, match="seed01.json: not a readable JSON file"):
        tables.seed_rows(tables.Seeds("s/arm", "s/real"), fake)


def test_a_result_under_the_wrong_seed_name_is_refused(fake):
    (fake / "s" / "arm" / "seed01.json").write_text((fake / "s" / "arm" / "seed00.json").read_text())
    with pytest.raises(tables.TableError, match="config.seed must be an integer matching the file name, got 0"):
        tables.seed_rows(tables.Seeds("s/arm", "s/real"), fake)


def test_an_unmatched_pair_is_refused(fake):
    _result(fake / "s" / "arm6000", 0, 0.9, data={})
    result = json.loads((fake / "s" / "arm6000" / "seed00.json").read_text())
    result["config"]["data"]["max_images"] = 6000
    (fake / "s" / "arm6000" / "seed00.json").write_text(json.dumps(result))
    with pytest.raises(tables.TableError, match="data.max_images"):
        tables.seed_rows(tables.Seeds("s/arm6000", "s/real"), fake)


def test_malformed_specs_are_a_clear_error():
    with pytest.raises(tables.TableError, match="table 'x': write one of seeds, arms, runs, headline"):
        tables.parse_specs({"x": {"sead": {"arm": "a"}}})
    with pytest.raises(tables.TableError, match="table 'x': malformed seeds options"):
        tables.parse_specs({"x": {"seeds": {"real": "a"}}})


def test_check_exits_1_naming_the_stale_block(fake, monkeypatch, capsys):
    page = fake / "page.md"
    page.write_text("<!-- begin: table t -->\n<!-- end: table t -->\n")
    monkeypatch.setattr(tables, "pages", lambda: [page])
    monkeypatch.setattr(tables, "load_specs", lambda: {"t": tables.Seeds("s/arm", "s/real")})
    monkeypatch.setattr(tables, "RESULTS", fake)
    assert tables.main(["--check"]) == 1
    assert f"stale: {page}: t" in capsys.readouterr().err
    assert tables.main([]) == 0 and tables.main(["--check"]) == 0


def test_store_result_flattens_the_latest_metric_rows_and_never_rewrites_a_result(tmp_path, capsys):
    rows = [
        {"metric": "fd", "results": {"fd": 9.0, "fd_ratio": 3.0, "per_class": {"a": 1}}, "counts": {"generated": 5}},
        {"metric": "fd", "results": {"fd": 4.0, "fd_ratio": 2.0, "per_class": {"a": 1}}, "counts": {"generated": 9}},
        {"metric": "label_acc", "results": {"label_acc": 0.75, "per_class": {"a": 0.5}}, "counts": {"generated": 9}},
        {"metric": "upscale", "results": {"factor": 4, "upscaled": {"psnr": 25.0}, "bicubic": {"psnr": 23.5}}},
    ]
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    dest = tmp_path / "results" / "study" / "seed00.json"
    argv = [str(metrics), str(dest), "--metrics", "fd,label_acc", "--command", "synthgen evaluate --shards X"]
    assert store_result.main(argv) == 0
    stored = json.loads(dest.read_text())
    assert (stored["fd"], stored["fd_ratio"], stored["label_acc"]) == (4.0, 2.0, 0.75)  # the later fd row wins
    assert "per_class" not in stored and stored["counts_fd"] == {"generated": 9}
    nested = store_result.metric_results(metrics, ["upscale"])
    assert (nested["factor"], nested["upscaled.psnr"], nested["bicubic.psnr"]) == (4, 25.0, 23.5)
    assert stored["command"] == "synthgen evaluate --shards X"
    before = dest.read_text()
    assert store_result.main([str(metrics), str(dest), "--metrics", "fd", "--command", "again"]) == 2
    assert "exists" in capsys.readouterr().err and dest.read_text() == before
    assert store_result.main([str(metrics), str(tmp_path / "x.json"), "--metrics", "kid", "--command", "c"]) == 2
    assert "no 'kid' row" in capsys.readouterr().err and not (tmp_path / "x.json").exists()


def test_colour_spread_is_zero_for_one_look_and_the_std_of_mean_colours_otherwise():
    import numpy as np

    spread = load_job("colour_spread", "experiments").colour_spread
    one_look = np.full((5, 3, 4, 4), 120, dtype=np.uint8)
    assert spread(one_look) == 0.0
    looks = np.zeros((2, 3, 4, 4), dtype=np.uint8)
    looks[1, 0] = 100  # the red channel's image means are 0 and 100 (std 50), the others agree (std 0)
    looks[1, 1, :2] = 60  # green: half the pixels, means 0 and 30 (std 15)
    assert spread(looks) == pytest.approx((50 + 15 + 0) / 3)
