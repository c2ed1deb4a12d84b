"""Sampling stage end to end on the real Ray cluster: round trip, determinism, resume, faults, readers."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from synthgen.checkpoint import load_generator
from synthgen.cli import main as cli_main
from synthgen.config import ExperimentConfig, from_dict
from synthgen.draws import labels_for, latents_for
from synthgen.errors import ShardError
from synthgen.pixels import to_uint8
from synthgen.sample.config import SampleConfig
from synthgen.sample.run import run_sample
from synthgen.sample.verify import verify_output
from synthgen.train.untrained import write_random_checkpoint

pytestmark = pytest.mark.ray

N, PER_SHARD = 150, 64  # three shards: 64, 64, 22 rows


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    """A real (untrained) checkpoint of a small conditional generator."""
    cfg = from_dict(
        ExperimentConfig, {"model": {"name": "cdcgan", "z_dim": 16, "arch": {"g_channels": 16, "d_channels": 16}}}
    )
    return write_random_checkpoint(str(tmp_path_factory.mktemp("run")), cfg)


def _cfg(checkpoint: str, out: str, **kw) -> SampleConfig:
    base = dict(
        checkpoint=checkpoint,
        out=out,
        num_samples=N,
        images_per_shard=PER_SHARD,
        format="both",
        num_actors=1,
        batch_size=64,
        progress=False,
    )
    return SampleConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def reference(ray_cluster, checkpoint, tmp_path_factory):
    """The reference dataset (2 actors, batch 64): (out folder, SampleResult)."""
    out = str(tmp_path_factory.mktemp("ref") / "out")
    return out, run_sample(_cfg(checkpoint, out, num_actors=2))


def _copy(reference, tmp_path) -> str:
    dst = str(tmp_path / "copy")
    shutil.copytree(reference[0], dst)
    return dst


def _snapshot(root: str) -> dict[str, tuple[int, int, int]]:
    """rel path -> (size, mtime_ns, inode) of every file: tells untouched files from rewritten ones."""
    snap = {}
    for folder, _, files in os.walk(root):
        for name in files:
            st = os.stat(os.path.join(folder, name))
            snap[os.path.relpath(os.path.join(folder, name), root)] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return snap


def _snapshot_bytes(root: str, folder: str) -> dict[str, bytes]:
    """rel path -> bytes of every file under root/folder."""
    base = os.path.join(root, folder)
    return {
        os.path.relpath(os.path.join(d, name), base): open(os.path.join(d, name), "rb").read()
        for d, _, files in os.walk(base)
        for name in files
    }


def _shard_shas(manifest) -> list[tuple[str, str]]:
    return [(s["file"], s["sha256"]) for s in manifest["shards"]]


def _pngs_by_id(out: str) -> dict[int, bytes]:
    table = pq.read_table(os.path.join(out, "parquet"))
    images = table.column("image").combine_chunks().field("bytes").to_pylist()
    return dict(zip(table.column("sample_id").to_pylist(), images))


def test_round_trip_rows_labels_and_pixels(reference, checkpoint):
    out, result = reference
    table = pq.read_table(os.path.join(out, "parquet"))
    ids, labels = table.column("sample_id").to_pylist(), np.array(table.column("label").to_pylist())
    assert ids == list(range(N))
    counts = result.manifest["class_counts"]
    assert counts == [15] * 10 and np.array_equal(labels, labels_for(np.arange(N), counts, seed=0))
    assert table.column("label_name").to_pylist() == [result.manifest["class_names"][c] for c in labels]
    # image i is the generator's output for (latent(seed, i), label(i)), computed here one id at a time
    generator, _ = load_generator(checkpoint)
    pngs = _pngs_by_id(out)
    for i in (0, 77, N - 1):
        z = torch.from_numpy(latents_for(np.array([i]), 0, generator.z_dim))  # [1, z]
        with torch.no_grad():
            expect = to_uint8(generator(z, torch.tensor([labels[i]]))).numpy()[0, 0]  # [H, W]
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(pngs[i]))), expect)


def test_round_trip_manifest_checksums_and_png_tree(reference):
    out, result = reference
    manifest = result.manifest
    assert manifest["total"] == N and [s["rows"] for s in manifest["shards"]] == [64, 64, 22]
    for shard in manifest["shards"]:
        data = open(os.path.join(out, shard["file"]), "rb").read()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (shard["bytes"], shard["sha256"])
    pngs = _pngs_by_id(out)
    label = pq.read_table(os.path.join(out, "parquet")).column("label")[5].as_py()
    folder = manifest["label_dirs"][manifest["class_names"][label]]
    assert open(os.path.join(out, "png", folder, "000000000005.png"), "rb").read() == pngs[5]
    assert verify_output(out).ok


def test_bytes_do_not_depend_on_actor_count_batch_size_or_where_batches_are_encoded(reference, checkpoint, tmp_path):
    out = str(tmp_path / "one_actor")
    # 1 actor, batch 128, PNGs encoded in the actor vs 2 actors, batch 64, encoded in Ray tasks (the default)
    result = run_sample(_cfg(checkpoint, out, batch_size=128, encode_in="actor"))
    assert _shard_shas(result.manifest) == _shard_shas(reference[1].manifest)
    assert _snapshot_bytes(out, "png") == _snapshot_bytes(reference[0], "png")


@pytest.mark.slow
def test_images_do_not_depend_on_shard_size(reference, checkpoint, tmp_path):
    out = str(tmp_path / "small_shards")
    result = run_sample(_cfg(checkpoint, out, images_per_shard=40, num_actors=3, batch_size=192, format="parquet"))
    assert result.manifest["num_shards"] == 4
    assert _pngs_by_id(out) == _pngs_by_id(reference[0])


def test_resume_rewrites_only_a_deleted_shard(reference, checkpoint, tmp_path):
    out = _copy(reference, tmp_path)
    os.remove(os.path.join(out, "parquet", "shard-000001.parquet"))
    before = _snapshot(out)
    result = run_sample(_cfg(checkpoint, out))
    assert (result.shards_written, result.shards_reused) == (1, 2)
    after = _snapshot(out)
    assert after["parquet/shard-000000.parquet"] == before["parquet/shard-000000.parquet"]
    assert after["parquet/shard-000002.parquet"] == before["parquet/shard-000002.parquet"]
    assert _shard_shas(result.manifest) == _shard_shas(reference[1].manifest)


def test_resume_after_a_crash_cleans_temp_files_and_completes(reference, checkpoint, tmp_path):
    out = _copy(reference, tmp_path)
    # the state a killed driver leaves: no manifest, a shard missing, half-written temp files
    for rel in ("manifest.json", "parquet/shard-000002.parquet", "png_index/shard-000002.json"):
        os.remove(os.path.join(out, rel))
    temps = ["parquet/.shard-000002.parquet.tmp-0123456789ab", "png/Bag/.000000000149.png.tmp-0123456789ab"]
    for rel in temps:
        with open(os.path.join(out, rel), "wb") as fh:
            fh.write(b"partial")
    result = run_sample(_cfg(checkpoint, out))
    assert sorted(result.stale_removed) == sorted(temps)
    assert result.shards_written == 1 and _shard_shas(result.manifest) == _shard_shas(reference[1].manifest)
    assert verify_output(out).ok


def test_rerun_of_a_complete_dataset_writes_nothing(reference, checkpoint, tmp_path):
    out = _copy(reference, tmp_path)
    before = _snapshot(out)
    result = run_sample(_cfg(checkpoint, out, num_actors=3, batch_size=256))  # how it is made may change
    assert (result.shards_written, result.shards_reused) == (0, 3) and _snapshot(out) == before


def test_a_relative_out_lands_where_the_driver_is_whatever_the_workers_cwd(
    reference, checkpoint, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # the shared cluster's workers keep their own working directory
    result = run_sample(_cfg(checkpoint, "relative_out"))
    assert result.out == str(tmp_path / "relative_out") and verify_output(result.out).ok
    assert _shard_shas(result.manifest) == _shard_shas(reference[1].manifest)


def test_killed_actor_is_restarted_and_output_is_exact(reference, checkpoint, tmp_path, inject_faults):
    out = str(tmp_path / "killed")
    inject_faults("sample.fail_after_batches=1")  # the actor kill -9s itself in batch 2 of 3
    result = run_sample(_cfg(checkpoint, out))
    assert result.stats.actor_restarts >= 1
    assert list(_pngs_by_id(out)) == list(range(N))  # exactly N rows, unique ids, in order
    assert _shard_shas(result.manifest) == _shard_shas(reference[1].manifest)


@pytest.mark.slow
def test_actor_out_of_restarts_is_replaced_by_the_driver(reference, checkpoint, tmp_path, inject_faults):
    out = str(tmp_path / "replaced")
    inject_faults("sample.fail_after_batches=1")
    result = run_sample(_cfg(checkpoint, out, max_actor_restarts=0))
    assert result.stats.actors_replaced == 1 and result.stats.shard_retries >= 1
    assert _shard_shas(result.manifest) == _shard_shas(reference[1].manifest)


def test_a_shard_that_keeps_failing_fails_the_job_loudly(ray_cluster, checkpoint, tmp_path, inject_faults):
    out = str(tmp_path / "fails")
    inject_faults("sample.fail_after_batches=1")
    with pytest.raises(ShardError, match="failed 1 times"):
        run_sample(_cfg(checkpoint, out, max_actor_restarts=0, max_shard_retries=0))
    assert not os.path.exists(os.path.join(out, "manifest.json"))


def test_conflicting_config_is_refused_and_nothing_changes(reference, checkpoint, tmp_path):
    out = _copy(reference, tmp_path)
    before = _snapshot(out)
    with pytest.raises(ShardError, match=r"different config \(seed: 0 -> 1.*--overwrite"):
        run_sample(_cfg(checkpoint, out, seed=1))
    assert _snapshot(out) == before


def test_foreign_files_in_out_are_refused(checkpoint, tmp_path):
    out = tmp_path / "foreign"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ShardError, match="not a synthgen dataset.*notes.txt"):
        run_sample(_cfg(checkpoint, str(out)))
    assert sorted(os.listdir(out)) == ["notes.txt"]


def test_overwrite_replaces_a_conflicting_dataset(reference, checkpoint, tmp_path):
    out = _copy(reference, tmp_path)
    result = run_sample(_cfg(checkpoint, out, seed=1, format="parquet", overwrite=True))
    assert result.manifest["seed"] == 1 and not os.path.exists(os.path.join(out, "png"))
    assert verify_output(out).ok


def test_verify_catches_a_corrupted_shard(reference, tmp_path, capsys):
    out = _copy(reference, tmp_path)
    path = os.path.join(out, "parquet", "shard-000001.parquet")
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(path, "wb").write(bytes(data))
    report = verify_output(out)
    assert not report.ok and "parquet/shard-000001.parquet: checksum mismatch" in report.problems[0]
    assert cli_main(["verify", out]) == 1
    assert "shard-000001.parquet" in capsys.readouterr().err


def test_rerun_rewrites_a_shard_that_no_longer_matches_the_manifest(reference, checkpoint, tmp_path):
    out = _copy(reference, tmp_path)
    path = os.path.join(out, "parquet", "shard-000000.parquet")
    data = bytearray(open(path, "rb").read())
    data[100] ^= 0xFF
    open(path, "wb").write(bytes(data))
    result = run_sample(_cfg(checkpoint, out))
    assert result.shards_written == 1 and _shard_shas(result.manifest) == _shard_shas(reference[1].manifest)


def test_verify_catches_a_broken_png_file(reference, tmp_path):
    out = _copy(reference, tmp_path)
    folder = os.path.join(out, "png", "Bag")
    victim = sorted(os.listdir(folder))[0]
    open(os.path.join(folder, victim), "wb").write(b"\x89PNG not really")
    report = verify_output(out)
    assert [p for p in report.problems if f"png/Bag/{victim}" in p]


def test_imagefolder_reads_the_png_tree(reference):
    from torchvision.datasets import ImageFolder

    out, result = reference
    folder = ImageFolder(os.path.join(out, "png"))
    assert len(folder) == N
    dirs = result.manifest["label_dirs"]  # synthgen class name -> folder
    to_synthgen = {folder.class_to_idx[d]: result.manifest["class_names"].index(n) for n, d in dirs.items()}
    labels = pq.read_table(os.path.join(out, "parquet")).column("label").to_pylist()
    got = {int(os.path.basename(p)[:-4]): to_synthgen[t] for p, t in folder.samples}
    assert got == dict(enumerate(labels))


def test_png_only_format_with_a_class_subset(ray_cluster, checkpoint, tmp_path):
    from torchvision.datasets import ImageFolder

    out = str(tmp_path / "png_only")
    result = run_sample(_cfg(checkpoint, out, num_samples=40, images_per_shard=16, format="png", classes="Bag,Coat"))
    assert not os.path.exists(os.path.join(out, "parquet"))
    assert sorted(os.listdir(os.path.join(out, "png"))) == ["Bag", "Coat"]
    assert len(ImageFolder(os.path.join(out, "png"))) == 40 and result.manifest["per_class"]["Bag"] == 20
    assert verify_output(out).ok


def test_png_only_format_streams_the_same_images_the_parquet_shards_hold(reference, checkpoint, tmp_path):
    # --format png hands its batches' files to the encode tasks and commits index-only shards: the files must be
    # the images a Parquet run of the same plan stores, each where its index says, and the dataset must verify
    out = str(tmp_path / "png_only_all")
    result = run_sample(_cfg(checkpoint, out, format="png", num_actors=2))
    want = _pngs_by_id(reference[0])
    got = {}
    for shard in result.manifest["shards"]:
        index = json.load(open(os.path.join(out, shard["file"])))
        assert [int(os.path.basename(f[0])[:-4]) for f in index["files"]] == list(
            range(shard["sample_id_start"], shard["sample_id_end"])
        )
        got.update(
            {int(os.path.basename(f[0])[:-4]): open(os.path.join(out, f[0]), "rb").read() for f in index["files"]}
        )
    assert got == want
    assert verify_output(out).ok


def test_huggingface_datasets_decodes_images_without_a_cast(reference, tmp_path):
    datasets = pytest.importorskip("datasets")
    out, result = reference
    ds = datasets.load_dataset(
        "parquet", data_dir=os.path.join(out, "parquet"), split="train", cache_dir=str(tmp_path / "hf")
    )
    assert ds.features["label"].names == result.manifest["class_names"]
    row = ds[7]
    assert row["sample_id"] == 7 and isinstance(row["image"], Image.Image) and row["image"].size == (28, 28)


def test_uri_output_and_checkpoint(reference, checkpoint, tmp_path):
    out = "file://" + str(tmp_path / "uri_out")
    result = run_sample(_cfg("file://" + checkpoint, out))
    assert _shard_shas(result.manifest) == _shard_shas(reference[1].manifest)
    assert verify_output(out).ok


def test_config_round_trip_in_manifest(reference):
    manifest = reference[1].manifest
    sample = from_dict(SampleConfig, manifest["config"]["sample"])
    assert dataclasses.asdict(sample)["num_samples"] == N
    assert from_dict(ExperimentConfig, manifest["config"]["train"]).model.arch["g_channels"] == 16
