"""Judge filtering (`synthgen sample --filter judge:T`): what passes, exact counts, determinism, resume, errors.

The data set is a small fake imagefolder (three classes of distinct patterns, train/ and test/) written
to tmp_path; the judge the filter uses trains on it in seconds, into a temporary SYNTHGEN_CACHE. The
untrained generator's images all look like class 1 to that judge, with probabilities that vary by latent,
so a threshold at their median makes every branch run: class-1 samples pass after one or more candidates,
class-0/2 samples exhaust their candidates and keep the best.
"""

from __future__ import annotations

import dataclasses
import io
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from synthgen.checkpoint import load_generator
from synthgen.cli import main as cli_main
from synthgen.config import ExperimentConfig, from_dict
from synthgen.draws import latents_for
from synthgen.errors import ConfigError
from synthgen.judge.cache import load_or_train_judge
from synthgen.judge.classifier import label_probability
from synthgen.judge.config import FilterSpec
from synthgen.sample.config import SampleConfig
from synthgen.sample.filter import generate_filtered
from synthgen.sample.plan import make_plan
from synthgen.sample.run import run_sample
from synthgen.sample.verify import verify_output
from synthgen.train.untrained import write_random_checkpoint

CLASSES = ("bars", "columns", "square")
N, PER_SHARD, MAX_CANDIDATES = 90, 40, 4


def _pattern(label: int, rng: np.random.Generator) -> np.ndarray:
    """A noisy 28x28 uint8 image of class ``label``: horizontal bars, vertical bars or a centred square."""
    img = rng.integers(0, 60, (28, 28))
    if label == 0:
        img[rng.integers(0, 3) :: 4, :] += 180
    elif label == 1:
        img[:, rng.integers(0, 3) :: 4] += 180
    else:
        s = rng.integers(6, 10)
        img[14 - s : 14 + s, 14 - s : 14 + s] += 180
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("patterns")
    rng = np.random.default_rng(0)
    for split, per_class in (("train", 400), ("test", 40)):
        for label, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(_pattern(label, rng)).save(folder / f"{i:03d}.png")
    return str(root)


@pytest.fixture(scope="module")
def judge_cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module", autouse=True)
def _cache_env(judge_cache):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SYNTHGEN_CACHE", judge_cache)  # the filter's judge is trained and cached here
        yield


@pytest.fixture(scope="module")
def experiment(data_root) -> ExperimentConfig:
    return from_dict(
        ExperimentConfig,
        {
            "data": {"source": "imagefolder", "root": data_root},
            "model": {"name": "cdcgan", "z_dim": 16, "arch": {"g_channels": 16, "d_channels": 16}},
        },
    )


@pytest.fixture(scope="module")
def checkpoint(experiment, tmp_path_factory) -> str:
    """A real (untrained) checkpoint whose training data is the fake pattern set.

    An untrained generator draws near-constant grey, which the judge scores the same for every latent;
    a 100x output layer gain gives varied, contrasty images, so candidates differ in the judge's eyes.
    """
    folder = write_random_checkpoint(str(tmp_path_factory.mktemp("run")), experiment, class_names=CLASSES)
    path = os.path.join(folder, "model.pt")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("generator", "generator_ema"):
        payload[key]["to_image.weight"] = payload[key]["to_image.weight"] * 100.0
    torch.save(payload, path)
    return folder


def _judge(experiment, judge_cache):
    return load_or_train_judge(experiment.data, os.path.join(judge_cache, "judges"), progress=False)


@pytest.fixture(scope="module")
def threshold(checkpoint, experiment, judge_cache) -> float:
    """The median judge probability of class 1 over the generator's unfiltered (candidate-0) images."""
    generator, _ = load_generator(checkpoint)
    ids = np.arange(300)
    z = torch.from_numpy(latents_for(ids, 0, generator.z_dim))
    labels = torch.ones(300, dtype=torch.int64)
    judge = _judge(experiment, judge_cache).model  # trained (outside no_grad) and cached on first use
    with torch.no_grad():
        images = ((generator(z, labels) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
        prob = label_probability(judge, images, labels).numpy()
    t = round(float(np.median(prob)), 4)
    assert 0 < t < 1 and 0.2 < float((prob >= t).mean()) < 0.8  # the latent decides, not the label alone
    return t


def _cfg(checkpoint: str, out: str, threshold: float, **kw) -> SampleConfig:
    base = dict(
        checkpoint=checkpoint,
        out=out,
        num_samples=N,
        images_per_shard=PER_SHARD,
        format="both",
        num_actors=1,
        batch_size=64,
        progress=False,
        filter=FilterSpec.from_text(f"judge:{threshold}"),
        filter_max_candidates=MAX_CANDIDATES,
    )
    return SampleConfig(**{**base, **kw})


def _stored(out: str) -> tuple[np.ndarray, np.ndarray, list[bytes]]:
    table = pq.read_table(os.path.join(out, "parquet"))
    pngs = table.column("image").combine_chunks().field("bytes").to_pylist()
    images = np.stack([np.asarray(Image.open(io.BytesIO(b)))[None] for b in pngs])  # [N, 1, 28, 28]
    return images, np.array(table.column("label").to_pylist()), pngs


@pytest.fixture(scope="module")
def filtered(ray_cluster, checkpoint, tmp_path_factory, threshold):
    """The reference filtered dataset (2 actors): (out folder, SampleResult)."""
    out = str(tmp_path_factory.mktemp("filtered") / "out")
    return out, run_sample(_cfg(checkpoint, out, threshold, num_actors=2))


@pytest.mark.parametrize("spec", ["judge", "judge:", "judge:1", "judge:0", "judge:-0.5", "judge:high", "clip:0.9"])
def test_bad_filter_specs_are_refused_with_the_accepted_form(spec):
    with pytest.raises(ConfigError, match="judge:0.9"):
        FilterSpec.from_text(spec)


def test_filter_spec_parses_and_off_values():
    assert FilterSpec.from_text("Judge:0.90").to_text() == "judge:0.9"
    assert FilterSpec.from_text("") is None and FilterSpec.from_text("none") is None


def test_candidate_zero_is_the_unfiltered_latent_and_candidates_differ():
    ids = np.arange(5, 12)
    assert np.array_equal(latents_for(ids, 3, 16, candidate=0), latents_for(ids, 3, 16))
    c1, c2 = latents_for(ids, 3, 16, candidate=1), latents_for(ids, 3, 16, candidate=2)
    assert not np.allclose(c1, latents_for(ids, 3, 16)) and not np.allclose(c1, c2)
    assert np.array_equal(c1[2:], latents_for(ids[2:], 3, 16, candidate=1))  # still per id


def test_unfiltered_plans_keep_their_digest_keys(checkpoint):
    cfg = SampleConfig(checkpoint=checkpoint, out="unused", num_samples=10)
    plan = make_plan(cfg, "d" * 64, CLASSES, (1, 28, 28), 16)
    assert not {"filter", "filter_judge", "filter_max_candidates"} & set(plan.to_dict())
    filtered_plan = make_plan(
        dataclasses.replace(cfg, filter=FilterSpec.from_text("judge:0.9")),
        "d" * 64,
        CLASSES,
        (1, 28, 28),
        16,
        judge_key="k",
    )
    assert filtered_plan.to_dict()["filter"] == "judge:0.9" and filtered_plan.digest() != plan.digest()
    with pytest.raises(ConfigError, match="judge"):
        make_plan(
            dataclasses.replace(cfg, filter=FilterSpec.from_text("judge:0.9")), "d" * 64, CLASSES, (1, 28, 28), 16
        )


def test_generate_filtered_keeps_the_first_accepted_candidate(checkpoint, experiment, judge_cache, threshold):
    generator, _ = load_generator(checkpoint)
    judge = _judge(experiment, judge_cache).model
    ids, labels = np.arange(40), np.arange(40) % 3
    images, drawn, prob = generate_filtered(
        generator, judge, ids, labels, seed=0, threshold=threshold, max_candidates=MAX_CANDIDATES
    )
    assert images.shape == (40, 1, 28, 28) and images.dtype == torch.uint8
    assert ((drawn >= 1) & (drawn <= MAX_CANDIDATES)).all()
    # passed rows stopped at their first passing candidate; rows that never passed used every candidate
    assert (prob[drawn < MAX_CANDIDATES] >= threshold).all()
    passed = prob >= threshold
    assert passed[labels == 1].any() and (drawn[labels == 1] > 1).any() and not passed[labels != 1].any()
    # a row that never passed keeps its best candidate: none of its latents scores higher
    row = int(np.flatnonzero(labels == 0)[0])
    scores = []
    for c in range(MAX_CANDIDATES):
        z = torch.from_numpy(latents_for(ids[row : row + 1], 0, 16, candidate=c))
        with torch.no_grad():
            img = ((generator(z, torch.tensor([0])) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
            scores.append(float(label_probability(judge, img, torch.tensor([0]))[0]))
    assert prob[row] == pytest.approx(max(scores), abs=1e-5)
    with torch.no_grad():
        rescored = label_probability(judge, images, torch.from_numpy(labels)).numpy()
    assert np.allclose(rescored, prob, atol=1e-5)
    for i in range(len(ids)):  # every row keeps the image of the candidate the rule picks
        tried = []  # (judge probability, image) of each candidate row i drew, in order
        for c in range(int(drawn[i])):
            z = torch.from_numpy(latents_for(ids[i : i + 1], 0, 16, candidate=c))
            with torch.no_grad():
                img = ((generator(z, torch.tensor([labels[i]])) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
                tried.append((float(label_probability(judge, img, torch.tensor([labels[i]]))[0]), img))
        # passed: its last (first accepted) candidate; never passed: its best (the earliest of equal ones)
        keep = len(tried) - 1 if prob[i] >= threshold else max(range(len(tried)), key=lambda c: (tried[c][0], -c))
        assert (tried[keep][1].int() - images[i : i + 1].int()).abs().max() <= 1, i


def test_filtered_dataset_holds_what_the_judge_accepts(filtered, experiment, judge_cache, threshold):
    out, result = filtered
    m = result.manifest
    f = m["filter"]
    assert f["spec"] == f"judge:{threshold:g}" and f["max_candidates"] == MAX_CANDIDATES
    assert f["judge"]["key"] == _judge(experiment, judge_cache).key and "test_accuracy" in f["judge"]
    assert N <= f["candidates"] <= N * MAX_CANDIDATES and f["acceptance_rate"] == pytest.approx(N / f["candidates"])
    assert sum(s["filter"]["candidates"] for s in m["shards"]) == f["candidates"]
    images, labels, _ = _stored(out)
    assert m["class_counts"] == [30, 30, 30] and np.bincount(labels).tolist() == [30, 30, 30]
    with torch.no_grad():
        prob = label_probability(
            _judge(experiment, judge_cache).model, torch.from_numpy(images), torch.from_numpy(labels)
        ).numpy()
    assert int((prob < threshold).sum()) == f["below_threshold"] < N
    assert verify_output(out).ok


def test_filtering_changes_the_dataset_it_is_asked_to(
    filtered, checkpoint, tmp_path, experiment, judge_cache, threshold
):
    out = str(tmp_path / "unfiltered")
    plain = run_sample(_cfg(checkpoint, out, threshold, filter=None))
    assert "filter" not in plain.manifest
    judge = _judge(experiment, judge_cache).model
    with torch.no_grad():
        p_plain = label_probability(judge, torch.from_numpy(_stored(out)[0]), torch.from_numpy(_stored(out)[1]))
        p_filt = label_probability(
            judge, torch.from_numpy(_stored(filtered[0])[0]), torch.from_numpy(_stored(filtered[0])[1])
        )
    assert float((p_filt >= threshold).float().mean()) > float((p_plain >= threshold).float().mean())


def test_filtered_bytes_do_not_depend_on_actors_or_batch_size(filtered, checkpoint, tmp_path, threshold):
    result = run_sample(_cfg(checkpoint, str(tmp_path / "again"), threshold, num_actors=1, batch_size=128))
    assert [s["sha256"] for s in result.manifest["shards"]] == [s["sha256"] for s in filtered[1].manifest["shards"]]
    assert result.manifest["filter"]["candidates"] == filtered[1].manifest["filter"]["candidates"]


def test_resume_keeps_the_filter_statistics_of_kept_shards(filtered, checkpoint, tmp_path, threshold):
    import shutil

    out = str(tmp_path / "resumed")
    shutil.copytree(filtered[0], out)
    os.remove(os.path.join(out, "manifest.json"))
    os.remove(os.path.join(out, "parquet", "shard-000001.parquet"))  # one shard lost in a crash
    result = run_sample(_cfg(checkpoint, out, threshold))
    assert result.shards_written == 1 and result.shards_reused == 2
    assert result.manifest["filter"] == filtered[1].manifest["filter"]
    assert verify_output(out).ok


def test_a_different_threshold_into_the_same_out_is_refused(filtered, checkpoint, tmp_path, capsys):
    import shutil

    out = str(tmp_path / "conflict")
    shutil.copytree(filtered[0], out)
    before = sorted(os.listdir(os.path.join(out, "parquet")))
    code = cli_main(
        [
            "sample",
            "--checkpoint",
            checkpoint,
            "--out",
            out,
            "--num-samples",
            str(N),
            "--format",
            "both",
            "--images-per-shard",
            str(PER_SHARD),
            "--filter",
            "judge:0.5",
            "--no-progress",
        ]
    )
    assert code == 1 and sorted(os.listdir(os.path.join(out, "parquet"))) == before
    err = capsys.readouterr().err
    assert "already holds a dataset made with a different config" in err and "judge:0.5" in err
    assert "--overwrite" in err  # and it says how to proceed


def test_cli_rejects_a_bad_filter_before_writing(checkpoint, tmp_path, capsys):
    out = tmp_path / "never"
    code = cli_main(["sample", "--checkpoint", checkpoint, "--out", str(out), "--filter", "judge:1.5"])
    assert code == 2 and "judge:0.9" in capsys.readouterr().err and not out.exists()


def test_evaluate_measures_the_filtered_generator(checkpoint, threshold, tmp_path):
    from synthgen.evaluate.config import EvalConfig
    from synthgen.evaluate.run import evaluate

    def label_acc(out: str, **kw) -> dict:
        cfg = EvalConfig(
            checkpoint=checkpoint,
            out=str(tmp_path / out),
            metrics=("label_acc",),
            num_samples=60,
            report=dataclasses.replace(EvalConfig().report, enabled=False),
            **kw,
        )
        return evaluate(cfg, progress=False)[0]

    plain = label_acc("plain")
    judged = label_acc(
        "judged", filter=FilterSpec.from_text(f"judge:{threshold}"), filter_max_candidates=MAX_CANDIDATES
    )
    assert "filter" not in plain["source"]
    assert judged["source"]["filter"] == {
        "spec": f"judge:{threshold:g}",
        "max_candidates": MAX_CANDIDATES,
        "judge": judged["judge"]["key"],
    }
    assert judged["counts"] == plain["counts"] == {"generated": 60}


def test_evaluate_generates_the_images_sampling_would_write(checkpoint, experiment, judge_cache, threshold):
    from synthgen.evaluate.sources import JudgeFilter, generate_with

    generator, _ = load_generator(checkpoint)
    judge = _judge(experiment, judge_cache).model
    images, labels = generate_with(generator, 3, 60, seed=0, judge_filter=JudgeFilter(judge, threshold, 4))
    plain, _ = generate_with(generator, 3, 60, seed=0)
    ids = np.arange(60)
    expect, _, _ = generate_filtered(generator, judge, ids, ids % 3, seed=0, threshold=threshold, max_candidates=4)
    assert np.array_equal(images, expect.numpy()) and np.array_equal(labels, ids % 3)
    with torch.no_grad():
        p_judged = label_probability(judge, torch.from_numpy(images), torch.from_numpy(labels)).numpy()
        p_plain = label_probability(judge, torch.from_numpy(plain), torch.from_numpy(labels)).numpy()
    assert (p_judged >= threshold).sum() > (p_plain >= threshold).sum()


def test_evaluate_refuses_a_filter_on_shards():
    from synthgen.evaluate.config import EvalConfig

    with pytest.raises(ConfigError, match="synthgen sample --filter"):
        EvalConfig(shards="some/out", filter=FilterSpec.from_text("judge:0.9")).validate()
