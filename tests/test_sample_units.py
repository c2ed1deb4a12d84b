"""Sampling stage, pure parts (no Ray): latents, labels, plan, writer, config."""

from __future__ import annotations

import io
import json
import os
import shutil

import numpy as np
import pytest
import yaml
from PIL import Image

from synthgen.config import DataConfig, ExperimentConfig, load_config
from synthgen.data.idx import FASHION_MNIST_CLASSES
from synthgen.draws import labels_for, latents_for, permute
from synthgen.errors import ConfigError
from synthgen.pixels import to_uint8
from synthgen.sample.config import SampleConfig
from synthgen.sample.fleet import check_resources
from synthgen.sample.plan import allocate_counts, make_plan, resolve_class_weights, resolve_classes, split_batches
from synthgen.shards import Shard, encode_batch, encode_png, safe_label_dirs
from synthgen.storage import Location


def test_latent_of_an_id_does_not_depend_on_its_batch():
    together = latents_for(np.arange(10, 20), seed=3, z_dim=16)  # [10, 16]
    alone = np.stack([latents_for(np.array([i]), seed=3, z_dim=16)[0] for i in range(19, 9, -1)])[::-1]
    assert np.array_equal(together, alone)


def test_latents_differ_across_ids_and_seeds_and_look_standard_normal():
    z = latents_for(np.arange(2000), seed=0, z_dim=8)
    other = latents_for(np.arange(2000), seed=1, z_dim=8)
    assert not np.array_equal(z, other)
    assert len(np.unique(z[:, 0])) == 2000
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 1000, 4099])
def test_permute_is_a_bijection_of_the_range(n):
    out = permute(np.arange(n), n, seed=11)
    assert sorted(out.tolist()) == list(range(n))


def test_permute_depends_on_the_seed():
    assert not np.array_equal(permute(np.arange(100), 100, 0), permute(np.arange(100), 100, 1))


def test_labels_have_exact_counts_and_are_independent_of_how_ids_are_split():
    counts = [30, 0, 50, 20]
    everything = labels_for(np.arange(100), counts, seed=5)
    assert np.bincount(everything, minlength=4).tolist() == counts
    pieces = np.concatenate([labels_for(np.arange(s, min(s + 7, 100)), counts, 5) for s in range(0, 100, 7)])
    assert np.array_equal(everything, pieces)
    assert not np.array_equal(everything, np.sort(everything))  # shuffled, not class blocks


def test_allocate_counts_uses_largest_remainder():
    assert allocate_counts(10, [1, 1, 1]) == [4, 3, 3]
    assert allocate_counts(7, [0.5, 0.0, 0.25, 0.25]) == [3, 0, 2, 2]  # quotas 3.5, 0, 1.75, 1.75
    assert sum(allocate_counts(1_000_001, [0.1] * 10)) == 1_000_001


def test_allocate_counts_rejects_all_zero_weights():
    with pytest.raises(ConfigError, match="weight 0"):
        allocate_counts(5, [0, 0])


def test_resolve_classes_accepts_names_and_indices():
    assert resolve_classes("all", FASHION_MNIST_CLASSES) == list(range(10))
    assert resolve_classes("bag, 0,Sneaker", FASHION_MNIST_CLASSES) == [0, 7, 8]


def test_resolve_classes_names_the_valid_classes_on_a_typo():
    with pytest.raises(ConfigError, match="unknown class 'Bagg'.*Ankle boot"):
        resolve_classes("Bagg", FASHION_MNIST_CLASSES)


def test_class_weights_from_a_file(tmp_path):
    path = tmp_path / "weights.yaml"
    path.write_text(yaml.safe_dump({"Bag": 3, "T-shirt/top": 1}))
    weights = resolve_class_weights(str(path), FASHION_MNIST_CLASSES)
    assert weights[8] == 3 and weights[0] == 1 and sum(weights) == 4


def test_class_weights_file_with_unknown_class_is_refused(tmp_path):
    path = tmp_path / "weights.json"
    path.write_text(json.dumps({"Robot": 1}))
    with pytest.raises(ConfigError, match="unknown class 'Robot'"):
        resolve_class_weights(str(path), FASHION_MNIST_CLASSES)


def test_class_weights_data_follow_the_training_set(tmp_path):
    for name, count in (("cat", 3), ("dog", 1)):
        os.makedirs(tmp_path / name)
        for i in range(count):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(tmp_path / name / f"{i}.png")
    train = ExperimentConfig(data=DataConfig(source="imagefolder", root=str(tmp_path), resolution=8, channels=1))
    assert resolve_class_weights("data", ("cat", "dog"), train) == [3.0, 1.0]


def test_plan_restricts_classes_and_tiles_shards():
    cfg = SampleConfig(checkpoint="x", out="y", num_samples=103, images_per_shard=25, classes="Bag,Sneaker")
    plan = make_plan(cfg, "d" * 64, FASHION_MNIST_CLASSES, (1, 28, 28), 32)
    assert plan.class_counts[7] + plan.class_counts[8] == 103 and sum(plan.class_counts) == 103
    assert [(s.start, s.end) for s in plan.shards()] == [(0, 25), (25, 50), (50, 75), (75, 100), (100, 103)]
    assert plan.label_dirs[0] == "T-shirt_top"


def test_plan_digest_changes_with_dataset_keys_only():
    base = SampleConfig(checkpoint="x", out="y", num_samples=10)
    digest = make_plan(base, "d", FASHION_MNIST_CLASSES, (1, 28, 28), 32).digest()
    same = SampleConfig(checkpoint="x", out="y", num_samples=10, num_actors=5, batch_size=64)
    other = SampleConfig(checkpoint="x", out="y", num_samples=10, seed=1)
    assert make_plan(same, "d", FASHION_MNIST_CLASSES, (1, 28, 28), 32).digest() == digest
    assert make_plan(other, "d", FASHION_MNIST_CLASSES, (1, 28, 28), 32).digest() != digest


def test_split_batches_cuts_at_absolute_multiples():
    assert split_batches(Shard(1, 100, 300), 128) == [(100, 128), (128, 256), (256, 300)]


def test_safe_label_dirs_are_unique_and_filesystem_safe():
    assert safe_label_dirs(["T-shirt/top", "a:b", "a_b", ".."]) == ("T-shirt_top", "a_b", "a_b_002", "class_003")


def test_to_uint8_maps_the_range_and_clamps():
    x = np.array([-1.5, -1.0, 0.0, 0.999, 1.0, 2.0])
    assert to_uint8(x).tolist() == [0, 0, 128, 255, 255, 255]


@pytest.mark.parametrize("channels", [1, 3])
def test_png_round_trips_pixels_and_is_deterministic(channels):
    image = np.random.default_rng(0).integers(0, 256, (channels, 12, 10), dtype=np.uint8)  # [C, H, W]
    data = encode_png(image)
    assert data == encode_png(image.copy())
    decoded = np.asarray(Image.open(io.BytesIO(data)))
    assert np.array_equal(
        decoded if channels == 3 else decoded[None], image.transpose(1, 2, 0) if channels == 3 else image
    )


def _pil_save_png(image: np.ndarray, level: int) -> bytes:
    pixels = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)  # [H, W] or [H, W, 3]
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG", compress_level=level, optimize=False)
    return buf.getvalue()


@pytest.mark.parametrize(
    "shape, level",
    [((1, 28, 28), 6), ((3, 32, 32), 6), ((3, 32, 32), 1), ((1, 300, 17), 9), ((3, 256, 256), 0)],
)
def test_encode_batch_gives_the_bytes_of_pillows_png_save(shape, level):
    # ((3, 256, 256), 0): incompressible noise stored at level 0 spans four IDAT chunks, split where Pillow splits
    images = np.random.default_rng(1).integers(0, 256, (4, *shape), dtype=np.uint8)  # [N, C, H, W]
    pngs = encode_batch(images, level)
    assert pngs == [_pil_save_png(image, level) for image in images]


def test_encode_batch_refuses_what_is_not_uint8_gray_or_rgb():
    with pytest.raises(ValueError, match=r"uint8 \[N, C, H, W\]"):
        encode_batch(np.zeros((2, 4, 8, 8), np.uint8))  # RGBA
    with pytest.raises(ValueError, match=r"uint8 \[N, C, H, W\]"):
        encode_batch(np.zeros((2, 3, 8, 8), np.float32))


def test_output_dir_writes_atomically_and_cleans_only_temp_files(tmp_path):
    out = Location(str(tmp_path / "o"))
    out.write_bytes("parquet/a.parquet", b"abc")
    assert out.list_files() == ["parquet/a.parquet"] and out.read_bytes("parquet/a.parquet") == b"abc"
    (tmp_path / "o" / "parquet" / ".b.parquet.tmp-0123456789ab").write_bytes(b"partial")
    (tmp_path / "o" / "parquet" / "notes.tmp").write_bytes(b"keep")
    assert out.clean_stale_temps() == ["parquet/.b.parquet.tmp-0123456789ab"]
    assert out.list_files() == ["parquet/a.parquet", "parquet/notes.tmp"]


@pytest.mark.parametrize("scheme", ["", "file://"])
def test_local_writes_survive_a_removed_folder_and_leave_nothing_when_they_fail(tmp_path, scheme):
    # local folders take the os fast path, which remembers the folders it made: an --overwrite that deletes one
    # must not break the next write, and a failed write leaves neither the file nor its temp
    out = Location(f"{scheme}{tmp_path / 'o'}")
    assert out.local
    out.write_bytes("png/0-a/000000000000.png", b"one")
    shutil.rmtree(tmp_path / "o" / "png")
    out.write_bytes("png/0-a/000000000001.png", b"two")
    assert out.list_files() == ["png/0-a/000000000001.png"] and out.read_bytes("png/0-a/000000000001.png") == b"two"
    with pytest.raises(TypeError):
        out.write_bytes("png/0-a/000000000002.png", "not bytes")  # type: ignore[arg-type]
    assert out.list_files() == ["png/0-a/000000000001.png"]
    assert oct(os.stat(tmp_path / "o" / "png" / "0-a" / "000000000001.png").st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_sample_config_loads_yaml_with_overrides(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("checkpoint: runs/x\nout: o\nnum_samples: 50\n")
    cfg = load_config(SampleConfig, str(path), ["seed=4", "format=both"])
    assert (cfg.num_samples, cfg.seed, cfg.format) == (50, 4, "both")


def test_sample_config_rejects_a_batch_size_off_the_chunk_grid():
    with pytest.raises(ConfigError, match="batch_size=100.*multiple of chunk_size=64"):
        SampleConfig(checkpoint="x", out="y", batch_size=100).validate()


def test_a_typo_in_the_encode_place_is_refused_naming_the_choices():
    with pytest.raises(ConfigError, match="encode_in='actors'.*one of \\['task', 'actor'\\]"):
        SampleConfig(checkpoint="x", out="y", encode_in="actors").validate()


def test_shipped_sample_configs_load():
    for name in ("sample.yaml", "sample_smoke.yaml"):
        load_config(SampleConfig, os.path.join("jobs", "configs", name))


def test_default_resources_fit_two_cpus_and_greedy_ones_are_refused():
    check_resources(SampleConfig(checkpoint="x", out="y"), {"CPU": 2.0})
    with pytest.raises(ConfigError, match="would hang"):
        check_resources(SampleConfig(checkpoint="x", out="y", cpus_per_actor=1.0), {"CPU": 2.0})


def test_driver_path_resolves_local_paths_and_leaves_uris(tmp_path, monkeypatch):
    from synthgen.storage import driver_path

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert driver_path("out/x") == str(tmp_path / "out" / "x")
    assert driver_path("~/data") == str(tmp_path / "home" / "data")
    assert driver_path("/abs/y") == "/abs/y"
    assert driver_path("s3://bucket/out") == "s3://bucket/out" and driver_path("") == ""
