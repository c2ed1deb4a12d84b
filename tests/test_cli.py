"""The one CLI: exit codes, help, real runs of `synthgen evaluate` and of the jobs/*.py smoke tests,
the synthgen logger, and deploy/validate.py's exit codes.

Job scripts run as subprocesses, the way `ray job submit` runs them: a job that uses Ray joins the session's shared
cluster by its address, as a submitted job joins its cluster (`cluster_address`; a fresh local Ray costs ~8 s a
script here); the rest get RAY_ADDRESS=local, so they never join another `ray start` cluster on this machine.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthgen.cli import main, run_job
from synthgen.cli_args import EXIT_CODES_HELP, run_guarded, smoke_sibling
from synthgen.errors import CheckpointError, ConfigError
from synthgen.log import get_logger, setup_logging
from tests.job_module import run_scripts
from tests.judge_recipe import judge_args

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "jobs" / "configs"
SUBCOMMANDS = ("train", "sample", "verify", "evaluate", "pipeline")


def run_script(*args: str, timeout: int = 600, ray_address: str = "local") -> subprocess.CompletedProcess:
    """``python <args>`` from the repository root, joining ``ray_address`` (default: its own local Ray instance
    when it needs one)."""
    env = {**os.environ, "RAY_ADDRESS": ray_address, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


# --- exit codes: one mapping for every command ---------------------------------------------------------


def test_run_guarded_maps_each_error_kind_to_its_code(capsys):
    def raise_(exc: BaseException):
        def body():
            raise exc

        return body

    assert run_guarded("x", lambda: None) == 0
    assert run_guarded("x", lambda: 1) == 1  # a command's own "found problems" result is kept
    assert run_guarded("x", raise_(ConfigError("bad key"))) == 2
    assert run_guarded("x", raise_(CheckpointError("no checkpoint"))) == 1
    assert run_guarded("x", raise_(KeyboardInterrupt())) == 130
    err = capsys.readouterr().err
    assert "x: config error: bad key" in err and "x: error: no checkpoint" in err and "x: interrupted" in err
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback; it is not a typed error
        run_guarded("x", lambda: 1 // 0)


@pytest.mark.parametrize(
    "family, config_error, runtime_error",
    [
        ("train", ["--set", "train.steps=0"], ["--set", "data.root=/nonexistent-synthgen-data"]),
        (
            "sample",
            ["--checkpoint", "{tmp}/none", "--out", "{tmp}/o", "--set", "bogus=1"],
            ["--checkpoint", "{tmp}/none", "--out", "{tmp}/o"],
        ),
        (
            "evaluate",
            ["--checkpoint", "{tmp}/none", "--metrics", "fid"],
            ["--checkpoint", "{tmp}/none", "--out", "{tmp}/o"],
        ),
        (
            "pipeline",
            ["--config", str(CONFIGS / "pipeline_smoke.yaml"), "--set", "train.steps=0"],
            ["--config", str(CONFIGS / "pipeline_smoke.yaml"), "--set", "stages=[evaluate]"],
        ),
    ],
)
def test_config_errors_exit_2_and_runtime_errors_exit_1_in_every_family(
    family, config_error, runtime_error, tmp_path, capsys
):
    storage = ["--set", f"run.storage_path={tmp_path}"] if family in ("train", "pipeline") else []
    fill = lambda argv: [a.replace("{tmp}", str(tmp_path)) for a in argv]  # noqa: E731
    assert main([family, *fill(config_error), *storage]) == 2
    assert f"synthgen {family}: config error:" in capsys.readouterr().err
    assert main([family, *fill(runtime_error), *storage]) == 1
    err = capsys.readouterr().err
    assert f"synthgen {family}: error:" in err and "config error" not in err
    assert not (tmp_path / "o").exists()  # neither failure wrote an output


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sample", "--num-samples", "many"])
    assert exc.value.code == 2 and "invalid int value: 'many'" in capsys.readouterr().err


def test_top_level_help_documents_the_exit_codes():
    out = subprocess.run(
        [sys.executable, "-m", "synthgen.cli", "--help"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert EXIT_CODES_HELP.strip() in out
    for command in SUBCOMMANDS:
        assert f"\n    {command}" in out


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_help_documents_the_exit_codes(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    text = capsys.readouterr().out
    assert exc.value.code == 0 and EXIT_CODES_HELP.strip() in text
    if command != "verify":  # every config-driven command has the same config arguments
        for flag in ("--config YAML", "--set KEY=VALUE", "--dry-run", "--smoke-test"):
            assert flag in text


def test_smoke_sibling_is_found_or_named_in_the_error(tmp_path):
    assert smoke_sibling("jobs/configs/sample.yaml") == "jobs/configs/sample_smoke.yaml"
    assert smoke_sibling("jobs/configs/sample_smoke.yaml") == "jobs/configs/sample_smoke.yaml"
    with pytest.raises(ConfigError, match=r"no smoke-sized sibling .*x_smoke\.yaml"):
        smoke_sibling(str(tmp_path / "x.yaml"))


def test_smoke_test_without_a_config_is_a_config_error(capsys):
    assert main(["sample", "--smoke-test", "--dry-run"]) == 2
    assert "--smoke-test needs --config" in capsys.readouterr().err


def test_run_job_uses_the_default_config_unless_one_is_given(tmp_path, capsys):
    default = str(CONFIGS / "pipeline.yaml")
    assert run_job("pipeline", ["--dry-run", "--set", f"run.storage_path={tmp_path}"], default_config=default) == 0
    assert f"# run folder:       {tmp_path}/fashion_mnist\n" in capsys.readouterr().out  # pipeline.yaml's run.name
    assert (
        run_job(
            "pipeline", ["--smoke-test", "--dry-run", "--set", f"run.storage_path={tmp_path}"], default_config=default
        )
        == 0
    )
    assert f"# run folder:       {tmp_path}/pipeline_smoke" in capsys.readouterr().out  # default -> its _smoke sibling
    own = tmp_path / "own.yaml"
    own.write_text("run:\n  name: mine\n")
    assert (
        run_job(
            "pipeline",
            ["--config", str(own), "--dry-run", "--set", f"run.storage_path={tmp_path}"],
            default_config=default,
        )
        == 0
    )
    assert f"# run folder:       {tmp_path}/mine" in capsys.readouterr().out
    assert os.listdir(tmp_path) == ["own.yaml"]  # dry runs write nothing


# --- the synthgen logger ---------------------------------------------------------------------------------


def test_logger_writes_one_prefixed_line_per_record_to_stderr(capsys):
    setup_logging()
    setup_logging()  # idempotent: still one handler, so one line per record
    get_logger().info("step 3/12")
    logging.getLogger("synthgen.data.imagefolder").warning("skipped 2 files")
    logging.getLogger("synthgen").debug("not shown at INFO")
    captured = capsys.readouterr()
    assert captured.out == ""  # stdout stays for results (--dry-run YAML, tables)
    assert captured.err.splitlines() == ["[synthgen] step 3/12", "[synthgen] WARNING: skipped 2 files"]


# --- real runs -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def untrained_run(tmp_path_factory) -> str:
    """A run folder holding one untrained checkpoint of the smoke training config."""
    from synthgen.config import ExperimentConfig, load_config
    from synthgen.train.untrained import write_random_checkpoint

    run_dir = str(tmp_path_factory.mktemp("untrained"))
    write_random_checkpoint(run_dir, load_config(ExperimentConfig, CONFIGS / "fashion_mnist_smoke.yaml"))
    return run_dir


def test_evaluate_runs_for_real_and_writes_metrics_and_report(untrained_run, tmp_path, capsys):
    out = tmp_path / "eval"
    metrics = ["fd", "kid", "pr", "dc", "label_acc"]  # cas and uplift train classifiers/GANs: e2e tests cover them
    code = main(
        [
            "evaluate",
            "--config",
            str(CONFIGS / "evaluate.yaml"),
            "--smoke-test",
            "--checkpoint",
            untrained_run,
            "--out",
            str(out),
            "--metrics",
            ",".join(metrics),
            "--num-samples",
            "200",
            "--set",
            "kid_subset_size=100",
            *judge_args(),  # the session's one judge recipe (tests/judge_recipe.py): trained once
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["metric"] for r in rows] == metrics
    assert {r["source"]["step"] for r in rows} == {0}  # the untrained checkpoint, not some other run
    assert all(r["results"] for r in rows)  # every metric computed something
    report = (out / "report.html").read_text()
    table = [line for line in printed.splitlines() if line and not line.startswith(("metric ", "---"))]
    labels = ("FD", "KID", "precision", "recall", "density", "coverage", "label accuracy")  # pr and dc: 2 rows
    assert len(table) == len(labels)
    for label, line in zip(labels, table):
        assert line.startswith(label) and label in report  # the same rows in the printed table and the report


def test_sample_job_smoke_test_samples_an_untrained_checkpoint_and_verifies(tmp_path, cluster_address):
    out = tmp_path / "out"
    proc = run_script(
        "jobs/sample.py",
        "--smoke-test",
        "--set",
        f"checkpoint={tmp_path / 'no-run'}",
        "--set",
        f"out={out}",
        "--set",
        "num_samples=256",
        "--set",
        "images_per_shard=128",
        ray_address=cluster_address,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "has no checkpoint yet" in proc.stderr and "UNTRAINED" in proc.stderr
    assert "[synthgen] verify OK: 256 images in 2 shards" in proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["total"], manifest["num_shards"]) == (256, 2)


def test_classifier_job_smoke_test_runs_on_untrained_shards(tmp_path, cluster_address):
    result = tmp_path / "result.json"
    proc = run_script(
        "jobs/train_classifier.py",
        "--smoke-test",
        "--set",
        f"shards={tmp_path / 'none'}",
        "--set",
        f"out={result}",
        "--set",
        "steps=5",
        "--set",
        "data.max_images=200",
        ray_address=cluster_address,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "sampled from an UNTRAINED generator" in proc.stderr
    stored = json.loads(result.read_text())
    assert (stored["num_real"], stored["num_synthetic"], stored["steps"]) == (200, 500, 5)
    assert f"test accuracy: {stored['accuracy']:.4f}" in proc.stdout


DRY_RUNS = {  # job -> a value only its _smoke sibling config has
    "train": "steps: 40\n",
    "sample": "num_samples: 2000\n",
    "evaluate": "num_samples: 500\n",
    "pipeline": "# run folder:",
    "train_classifier": "max_synthetic: 500\n",
    "bench_train": "steps: 9\n",
}


@pytest.fixture(scope="module")
def dry_runs(untrained_run) -> dict[str, tuple[int, str, str]]:
    """(exit code, stdout, stderr) of each job's ``--smoke-test --dry-run``, and of a config error ("bad_key")."""
    runs = []
    for job in DRY_RUNS:
        # sample and evaluate check their checkpoint in a dry run: give them one (a fresh checkout has no smoke run)
        extra = ["--set", f"checkpoint={untrained_run}"] if job in ("sample", "evaluate") else []
        script = f"benchmarks/{job}.py" if job.startswith("bench_") else f"jobs/{job}.py"
        runs.append([job, script, "--smoke-test", "--dry-run", *extra])
    runs.append(["bad_key", "jobs/train.py", "--set", "train.stepz=3", "--dry-run"])
    return run_scripts(runs, {**os.environ, "RAY_ADDRESS": "local"})  # one interpreter for all (tests/job_module.py)


@pytest.mark.parametrize("job", DRY_RUNS)
def test_every_config_job_dry_runs_its_smoke_config(job, dry_runs):
    code, out, err = dry_runs[job]
    assert code == 0, err[-2000:]
    assert DRY_RUNS[job] in out


def test_a_job_exits_2_on_a_config_error(dry_runs):
    code, _, err = dry_runs["bad_key"]
    assert code == 2 and "synthgen train: config error:" in err and "stepz" in err


@pytest.mark.slow
@pytest.mark.parametrize(
    "job, args",
    [
        # `train` and `pipeline` are not here: the README quickstart trains the same smoke config through the same
        # code (run_job is the CLI's), and test_jobs_submit runs the pipeline smoke job through `ray job submit`
        (
            "evaluate",
            # two metrics: the job's wiring is under test here; every metric's row is test_evaluate_e2e's contract.
            # The session's shared judge recipe (test_evaluate_e2e's and test_evaluate_sanity's): trained once
            [
                "--set",
                "checkpoint={tmp}/no-run",
                "--set",
                "out={tmp}/eval",
                "--set",
                "metrics=[fd,label_acc]",
                *judge_args(),
            ],
        ),
        # one worker, so one core: the baseline at one thread only (a layout of two doubles the benchmark's runs)
        ("bench_train", ["--set", "train.num_workers=1"]),
        # one batch size: four bare loops instead of eight, two of them fresh processes
        ("bench_sample", ["--batch-size", "128"]),
        ("bench_file_writes", []),
    ],
)
def test_job_smoke_tests_that_train_or_benchmark(job, args, tmp_path, request):
    script = f"benchmarks/{job}.py" if job.startswith("bench_") else f"jobs/{job}.py"
    # bench_train's Ray Train run joins the shared cluster; bench_sample measures the memory of a Ray of its own
    address = request.getfixturevalue("cluster_address") if job == "bench_train" else "local"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = run_script(script, "--smoke-test", *argv, timeout=900, ray_address=address)
    assert proc.returncode == 0, proc.stderr[-4000:]
    if job == "evaluate":
        rows = [json.loads(line) for line in (tmp_path / "eval" / "metrics.jsonl").read_text().splitlines()]
        assert [r["metric"] for r in rows] == ["fd", "label_acc"] and (tmp_path / "eval" / "report.html").is_file()
    if job == "bench_sample":  # both fleet sizes measured against the bare loop
        assert (
            "ratio fleet/best bare loop (1000 images)" in proc.stdout and "peak memory 10x run / 1x run" in proc.stdout
        )
    if job == "bench_train":
        assert "ratio Ray / best plain" in proc.stdout and "launch -> first Ray Train step" in proc.stdout
    if job == "bench_file_writes":  # every method measured, against the plain write
        assert "wall / plain: writer" in proc.stdout and all(f": {m} " in proc.stdout for m in ("writer", "rename"))


def test_bench_png_encode_smoke_test_finds_our_bytes_identical_to_pillows():
    proc = run_script("benchmarks/bench_png_encode.py", "--smoke-test", "--sizes", "28,32", timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("bytes identical: yes") == 2 and "28 px gray" in proc.stdout and "32 px RGB" in proc.stdout


# --- deploy/validate.py ----------------------------------------------------------------------------------


def test_validate_accepts_the_repository_manifests():
    proc = run_script("deploy/validate.py", timeout=120)
    manifests = len(list((REPO / "deploy" / "kuberay").glob("*.yaml")))
    assert proc.returncode == 0, proc.stderr
    assert f"{manifests} file(s) valid" in proc.stdout


def test_validate_rejects_a_broken_copy_naming_the_field(tmp_path):
    broken = tmp_path / "rayjob-train.yaml"
    text = (REPO / "deploy" / "kuberay" / "rayjob-train.yaml").read_text()
    assert "\n  entrypoint:" in text
    broken.write_text(text.replace("\n  entrypoint:", "\n  entrypointt:", 1))
    proc = run_script("deploy/validate.py", str(broken), timeout=120)
    assert proc.returncode == 1
    assert "entrypointt" in proc.stderr and "error(s) in 1 file(s)" in proc.stderr


def test_validate_usage_errors_exit_2(tmp_path):
    missing = run_script("deploy/validate.py", str(tmp_path / "none.yaml"), timeout=120)
    assert missing.returncode == 2 and "none.yaml" in missing.stderr and "Traceback" not in missing.stderr
    no_crds = run_script("deploy/validate.py", "--crds", str(tmp_path / "no-crds"), timeout=120)
    assert no_crds.returncode == 2 and "--crds" in no_crds.stderr
