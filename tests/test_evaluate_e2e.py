"""End-to-end evaluation of tiny runs on real Fashion-MNIST: metrics.jsonl rows, report, shards, CLI, uplift.

The tests evaluate a real (untrained) checkpoint written with the training code's own
``make_payload`` / ``write_checkpoint_dir``; the slow one has the honest uplift train its per-subset
generators with the real Ray Train driver.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
import torch
from judge_recipe import JUDGE_RECIPE
from PIL import Image
from shard_data import write_shards

from synthgen.config import DataConfig, ExperimentConfig, from_dict, load_config
from synthgen.errors import ConfigError
from synthgen.evaluate.config import EvalConfig
from synthgen.evaluate.run import evaluate
from synthgen.evaluate.sources import generate_images
from synthgen.judge.cache import default_cache_dir, load_or_train_judge
from synthgen.train.untrained import write_random_checkpoint

SMOKE_TRAIN = "jobs/configs/fashion_mnist_smoke.yaml"
# The tests' one judge recipe (tests/judge_recipe.py); CAS uses the same recipe on as many images, so the judge is
# also CAS's real anchor.
SMALL = {
    "judge": dict(JUDGE_RECIPE),
    "cas": {"num_train": 10000, "epochs": 1},
    "num_samples": 200,
    "kid_subsets": 5,
    "kid_subset_size": 100,
    "report": {"nearest_queries": 3, "nearest_k": 3, "samples_per_class": 4},
}
ROW_KEYS = {
    "metric",
    "results",
    "settings",
    "counts",
    "num_samples",
    "seed",
    "source",
    "judge",
    "data",
    "seconds",
    "created",
    "timestamp",
    "synthgen_version",
}


def make_run(run_dir: str, steps: tuple[int, ...] = (10, 20)) -> str:
    """A run folder: untrained checkpoint(s) of the smoke config, a training log and sample grids."""
    exp = load_config(ExperimentConfig, SMOKE_TRAIN)
    for step in steps:
        write_random_checkpoint(run_dir, exp, step=step, seed=step)
    with open(os.path.join(run_dir, "metrics.jsonl"), "w") as fh:
        for step in range(5, steps[-1] + 1, 5):
            fh.write(
                json.dumps({"step": step, "d_loss": 2.0 - step / 20, "g_loss": 0.5 + step / 40, "img_per_s": 100.0})
                + "\n"
            )
    os.makedirs(os.path.join(run_dir, "grids"), exist_ok=True)
    for step in steps:
        Image.fromarray(np.full((28 * 10, 28 * 8), step * 10 % 255, np.uint8)).save(
            os.path.join(run_dir, "grids", f"grid-{step:06d}.png")
        )
    return run_dir


def eval_config(judge_cache: str, **kw) -> EvalConfig:
    data = json.loads(json.dumps(SMALL))
    data["judge"]["cache_dir"] = judge_cache
    data.update(kw)
    cfg = from_dict(EvalConfig, data)
    cfg.validate()
    return cfg


def warm_judge_cache(cache: str) -> str:
    """Train the tests' small judge and cache its real-split features once per session (the slow part)."""
    cfg = eval_config(cache, checkpoint="unused")
    judge = load_or_train_judge(DataConfig(), judge_cfg=cfg.judge, progress=False)
    judge.split_features("train"), judge.split_features("test")
    return cache


@pytest.fixture(scope="module")
def judge_cache(fashion_mnist_root) -> str:
    return warm_judge_cache(default_cache_dir())  # the session's (tests/conftest.py sets SYNTHGEN_CACHE)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> str:
    return make_run(str(tmp_path_factory.mktemp("run") / "tiny"))


def test_evaluate_appends_one_row_per_metric_and_writes_a_report(run_dir, judge_cache):
    metrics = ["fd", "kid", "pr", "dc", "label_acc", "cas"]
    rows = evaluate(eval_config(judge_cache, checkpoint=run_dir, metrics=metrics), progress=False)
    out = os.path.join(run_dir, "eval")  # default: <run folder>/eval
    lines = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    assert [r["metric"] for r in lines] == metrics and lines == rows
    for row in rows:
        assert ROW_KEYS <= set(row)
        assert row["source"]["step"] == 20 and len(row["source"]["digest"]) == 64  # the latest checkpoint
        assert row["source"]["resolved_path"].endswith("checkpoint-000020")
        assert 0 < row["judge"]["test_accuracy"] <= 1 and row["synthgen_version"]
    fd = rows[0]
    assert fd["counts"] == {"generated": 200, "real_test": 10000, "real_train_anchor": 200}
    assert fd["results"]["fd"] > fd["results"]["fd_floor"] > 0 and len(fd["results"]["per_class"]) == 10
    assert rows[5]["counts"]["synthetic_train"] == 10000
    assert rows[5]["results"]["real_acc"] == rows[0]["judge"]["test_accuracy"]  # judge reused as CAS anchor
    page = open(os.path.join(out, "report.html"), encoding="utf-8").read()
    assert page.count("data:image/png;base64,") >= 10 + 3 * 4 + 2  # samples, nearest neighbours, grids
    assert "<polyline" in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert os.path.isfile(os.path.join(out, "eval_config.yaml"))


def test_a_second_evaluation_appends_and_the_report_lists_both(tmp_path, judge_cache):
    run = make_run(str(tmp_path / "run"), steps=(10,))
    out = str(tmp_path / "eval-out")
    for _ in range(2):
        evaluate(eval_config(judge_cache, checkpoint=run, metrics=["fd", "label_acc"], out=out), progress=False)
    lines = open(os.path.join(out, "metrics.jsonl")).read().splitlines()
    assert [json.loads(line)["metric"] for line in lines] == ["fd", "label_acc", "fd", "label_acc"]
    page = open(os.path.join(out, "report.html"), encoding="utf-8").read()
    assert page.count("<td>fd</td>") == 2 and not os.path.exists(os.path.join(run, "eval"))


def test_generate_images_is_deterministic_balanced_and_prefix_stable(run_dir):
    a = generate_images(run_dir, 50, seed=3, batch_size=7)
    b = generate_images(run_dir, 30, seed=3, batch_size=16)
    c = generate_images(run_dir, 30, seed=4)
    assert a.images.dtype == np.uint8 and a.images.shape == (50, 1, 28, 28)
    np.testing.assert_array_equal(a.images[:30], b.images)  # batch size and count do not change an image
    np.testing.assert_array_equal(a.labels, np.arange(50) % 10)
    assert not np.array_equal(b.images, c.images)


@pytest.fixture(scope="module")
def uplift_rows(run_dir, judge_cache, tmp_path_factory) -> dict[str, dict]:
    """Uplift rows of the evaluated (untrained) generator, one per setting the tests below compare: the default
    inversion pool over 2 seeds, and the prior pool over seed 0 without and with the judge filter."""
    out = tmp_path_factory.mktemp("uplift")
    base = {"generator": "evaluated", "steps": 5, "num_synthetic": 100, "inversion_steps": 5}
    settings = {
        "inversion": {"seeds": 2},
        "prior": {"seeds": 1, "pool": "prior"},
        "filtered": {"seeds": 1, "pool": "prior", "filter": "judge:0.5", "filter_max_candidates": 4},
    }
    return {
        name: evaluate(
            eval_config(
                judge_cache, checkpoint=run_dir, metrics=["uplift"], out=str(out / name), uplift={**base, **extra}
            ),
            progress=False,
        )[0]
        for name, extra in settings.items()
    }


def test_uplift_with_the_evaluated_generator_is_flagged_not_honest(uplift_rows, run_dir):
    res = uplift_rows["inversion"]["results"]
    assert res["honest"] is False
    one = res["by_fraction"]["1%"]
    assert one["num_real"] == 600 and len(one["uplift_points"]["values"]) == 2
    assert one["generators"] == [run_dir, run_dir]  # both seeds drew from the evaluated generator itself


def test_uplift_pool_changes_only_the_synthetic_arm(uplift_rows):
    prior, around = (uplift_rows[p]["results"]["by_fraction"]["1%"] for p in ("prior", "inversion"))
    assert uplift_rows["inversion"]["settings"]["pool"] == "inversion"
    assert uplift_rows["prior"]["settings"]["pool"] == "prior"
    # seed 0 of each: the same subset, init and batches; only the synthetic images differ
    assert around["real_only"]["values"][0] == prior["real_only"]["values"][0]
    assert around["real_plus_synthetic"]["values"][0] != prior["real_plus_synthetic"]["values"][0]
    assert "inversion_mse" not in prior and "inversion_start_mse" not in prior
    assert around["inversion_mse"]["mean"] < around["inversion_start_mse"]["mean"]  # the inversion optimised


def test_uplift_filter_changes_only_the_synthetic_arm(uplift_rows):
    plain, filtered = (uplift_rows[name]["results"]["by_fraction"]["1%"] for name in ("prior", "filtered"))
    assert uplift_rows["filtered"]["settings"]["filter"] == "judge:0.5"
    assert uplift_rows["prior"]["settings"]["filter"] is None
    assert filtered["real_only"] == plain["real_only"]  # same subset, init and batches
    assert filtered["real_plus_synthetic"]["values"] != plain["real_plus_synthetic"]["values"]


def test_honest_generator_run_name_follows_the_recipe_not_the_storage_spelling(tmp_path):
    from synthgen.evaluate.config import UpliftConfig
    from synthgen.evaluate.uplift import honest_config

    base = load_config(ExperimentConfig, SMOKE_TRAIN)
    u = UpliftConfig()
    rel = honest_config(base, 0.01, 600, 0, u, "runs/x/uplift")
    absolute = honest_config(base, 0.01, 600, 0, u, os.path.abspath("runs/x/uplift"))
    longer = honest_config(base, 0.01, 600, 0, UpliftConfig(generator_steps=1600), "runs/x/uplift")
    other_seed = honest_config(base, 0.01, 600, 1, u, "runs/x/uplift")
    assert rel.run.name == absolute.run.name  # reused whichever way the folder is spelled
    assert rel.run.name.startswith("uplift-1pct-seed00-")
    assert longer.run.name != rel.run.name and other_seed.run.name.startswith("uplift-1pct-seed01-")
    assert (other_seed.data.max_images, other_seed.data.subset_seed) == (600, 1)  # each seed its own subset
    assert (rel.data.max_images, rel.data.subset_seed, rel.train.steps) == (600, 0, u.generator_steps)
    assert (rel.model.diffaugment, rel.model.lecam_weight) == ("translation,cutout", 0.3)  # small-data recipe


def test_evaluate_a_shard_folder(tmp_path, judge_cache):
    shards = write_shards(tmp_path / "shards", n=120, rows_per_shard=50)
    (row,) = evaluate(eval_config(judge_cache, shards=str(tmp_path / "shards"), metrics=["label_acc"]), progress=False)
    assert row["counts"] == {"generated": 120}  # fewer rows than num_samples: all of them
    assert row["source"]["kind"] == "shards" and row["source"]["total"] == 120
    assert os.path.isfile(tmp_path / "shards" / "eval" / "metrics.jsonl")
    assert shards.root == str(tmp_path / "shards")


def test_honest_uplift_on_shards_is_refused_before_anything_is_written(tmp_path, judge_cache):
    write_shards(tmp_path / "shards", n=20)
    with pytest.raises(ConfigError, match="uplift.generator=evaluated"):
        evaluate(eval_config(judge_cache, shards=str(tmp_path / "shards"), metrics=["fd", "uplift"]), progress=False)
    assert not os.path.exists(tmp_path / "shards" / "eval")


def test_inversion_uplift_on_shards_is_refused_before_anything_is_written(tmp_path, judge_cache):
    write_shards(tmp_path / "shards", n=20)
    with pytest.raises(ConfigError, match="uplift.pool=prior"):
        evaluate(
            eval_config(
                judge_cache,
                shards=str(tmp_path / "shards"),
                metrics=["fd", "uplift"],
                uplift={"generator": "evaluated"},
            ),
            progress=False,
        )
    assert not os.path.exists(tmp_path / "shards" / "eval")


def cli(*argv: str) -> int:
    from synthgen.cli import main  # typed errors become exit codes in one place (synthgen.cli_args.run_guarded)

    return main(["evaluate", *argv])


def test_cli_dry_run_prints_config_and_plan_and_writes_nothing(run_dir, tmp_path, capsys):
    out = tmp_path / "never"
    assert (
        cli(
            "--checkpoint",
            run_dir,
            "--metrics",
            "fd,cas,uplift",
            "--num-samples",
            "123",
            "--out",
            str(out),
            "--set",
            "uplift.seeds=2",
            "--dry-run",
        )
        == 0
    )
    text = capsys.readouterr().out
    cfg = from_dict(EvalConfig, __import__("yaml").safe_load(text))
    assert cfg.metrics == ("fd", "cas", "uplift") and cfg.num_samples == 123 and cfg.uplift.seeds == 2
    assert "# plan" in text and "2 honest generators" in text and "around the inverted real images" in text
    assert not out.exists()


def test_cli_bad_input_exits_with_a_clear_error_and_writes_nothing(run_dir, tmp_path, capsys):
    out = tmp_path / "never"
    assert cli("--checkpoint", run_dir, "--metrics", "fd,fid", "--out", str(out)) == 2
    assert "unknown ['fid']" in capsys.readouterr().err
    assert cli("--checkpoint", run_dir, "--set", "uplift.fractions=[0]", "--out", str(out)) == 2
    assert "uplift.fractions" in capsys.readouterr().err
    assert cli("--checkpoint", run_dir, "--set", "uplift.pool=nearby", "--out", str(out)) == 2
    assert "['inversion', 'prior']" in capsys.readouterr().err
    assert cli("--checkpoint", run_dir, "--set", "uplift.filter=judge:0.5", "--out", str(out)) == 2
    assert "uplift.pool=prior" in capsys.readouterr().err
    assert cli("--checkpoint", str(tmp_path / "missing"), "--out", str(out)) == 1
    assert "does not exist" in capsys.readouterr().err
    assert cli("--out", str(out)) == 2
    assert "--checkpoint" in capsys.readouterr().err
    assert not out.exists()


def test_cli_no_progress_reaches_the_evaluation(run_dir, tmp_path, monkeypatch):
    import synthgen.evaluate.run as run

    seen = []
    monkeypatch.setattr(run, "evaluate", lambda cfg, progress=True: seen.append(progress) or [])
    assert cli("--checkpoint", run_dir, "--metrics", "fd", "--out", str(tmp_path / "e")) == 0
    assert cli("--checkpoint", run_dir, "--metrics", "fd", "--out", str(tmp_path / "e"), "--no-progress") == 0
    assert seen == [True, False]


def test_cli_help_documents_every_metric(capsys):
    with pytest.raises(SystemExit):
        cli("--help")
    text = capsys.readouterr().out
    from synthgen.evaluate.metrics import get_metric, metric_names

    for name in metric_names():  # each metric on its own line, with its registry description
        description = get_metric(name).description.split("\n")[0][:40]
        assert re.search(rf"^  {re.escape(name)} +{re.escape(description)}", text, re.M), name
    for phrase in ("--dry-run", "--set KEY=VALUE", "OUT/metrics.jsonl", "OUT/report.html"):
        assert phrase in text


@pytest.mark.slow
@pytest.mark.ray
def test_honest_uplift_trains_the_subsets_generator_with_the_real_driver(ray_cluster, tmp_path, judge_cache):
    from synthgen import checkpoint as ckpt

    # the evaluated run itself need not be trained: what runs for real here is the honest generator. One seed: each
    # seed's recipe (its own subset) is test_honest_generator_run_name_follows_the_recipe_not_the_storage_spelling's
    run_dir = make_run(str(tmp_path / "tiny"))
    cfg = eval_config(
        judge_cache,
        checkpoint=run_dir,
        metrics=["uplift"],
        uplift={
            "seeds": 1,
            "steps": 5,
            "num_synthetic": 100,
            "generator_steps": 3,
            "inversion_steps": 5,
            "generator_overrides": ["train.batch_size=8", "train.num_workers=1", "model.lecam_weight=0.3"],
        },
    )
    (row,) = evaluate(cfg, progress=False)
    up = row["results"]
    assert up["honest"] is True
    gens = up["by_fraction"]["1%"]["generators"]
    assert len(gens) == 1 and len(up["by_fraction"]["1%"]["inversion_mse"]["values"]) == 1
    for seed, path in enumerate(gens):  # the generator saw exactly its classifier's 600-image subset
        _, info = ckpt.load_generator(path)
        assert info.step == 3 and info.config.data.max_images == 600 and info.config.data.subset_seed == seed
        assert info.config.model.diffaugment == "translation,cutout" and info.config.model.lecam_weight == 0.3
        lecam = torch.load(os.path.join(path, "model.pt"), weights_only=True)["lecam"]
        assert lecam["ema_real"].item() != 0.0  # the regulariser ran in the real Ray Train loop
        assert path.startswith(os.path.join(run_dir, "eval", "uplift"))
    mtimes = [os.path.getmtime(os.path.join(p, "model.pt")) for p in gens]
    # the same storage folder spelled relative to the working directory finds the same runs (the driver's own
    # train-or-reuse step, with the evaluated run's config as the driver had it)
    from synthgen.evaluate.uplift import honest_config, train_honest_generator

    relative = os.path.relpath(os.path.join(run_dir, "eval", "uplift"))
    evaluated = ckpt.load_generator(run_dir)[1].config
    again = [train_honest_generator(honest_config(evaluated, 0.01, 600, 0, cfg.uplift, relative))]
    assert again == gens
    assert [os.path.getmtime(os.path.join(p, "model.pt")) for p in gens] == mtimes  # reused, not retrained
