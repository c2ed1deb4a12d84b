"""The shard format on its own: every handler round-trips, the manifest round-trips, bad manifests are typed errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
from shard_data import write_shards

from synthgen.errors import ConfigError, ShardError
from synthgen.shards import (
    FORMATS,
    HANDLERS,
    MANIFEST_FILE,
    DatasetSpec,
    Shard,
    ShardRows,
    decode_png,
    encode_batch,
    handlers_for,
    pil_to_chw,
    read_manifest,
    read_shard,
    safe_label_dirs,
    write_manifest,
    write_rows,
    write_shard,
)
from synthgen.shards.formats import FORMAT_PARTS
from synthgen.storage import Location

CLASSES = ("T-shirt/top", "Trouser", "Bag")


def _rows(index: int, start: int, n: int, shape=(1, 6, 5), seed: int = 0) -> tuple[ShardRows, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)  # [n, C, H, W]
    labels = rng.integers(0, len(CLASSES), size=n).astype(np.int64)  # [n]
    return ShardRows(index, np.arange(start, start + n, dtype=np.int64), labels, encode_batch(images)), images


def _write_manifest_for(out: Location, fmt: str, records: list[dict], shape, labels: np.ndarray) -> None:
    counts = np.bincount(labels, minlength=len(CLASSES))
    write_manifest(
        out,
        {
            "total": int(sum(r["rows"] for r in records)),
            "class_names": list(CLASSES),
            "image_shape": list(shape),
            "per_class": {c: int(k) for c, k in zip(CLASSES, counts)},
            "format": fmt,
            "shards": records,
            "label_dirs": dict(zip(CLASSES, safe_label_dirs(CLASSES))),
        },
    )


def test_formats_are_derived_from_the_handler_table():
    assert FORMATS == ("parquet", "png", "both") == tuple(FORMAT_PARTS)
    assert all(name in HANDLERS for parts in FORMAT_PARTS.values() for name in parts)
    assert [h.name for h in handlers_for("both")] == ["png", "parquet"]  # the primary (Parquet) commits last
    with pytest.raises(ConfigError, match="format='tar' is not one of"):
        handlers_for("tar")


@pytest.mark.parametrize("name", sorted(HANDLERS))
@pytest.mark.parametrize("shape", [(1, 6, 5), (3, 4, 7)])
def test_each_handler_writes_n_and_reads_the_same_n_back(tmp_path, name, shape):
    out = Location(str(tmp_path / "o"))
    spec = DatasetSpec(CLASSES, safe_label_dirs(CLASSES), shape, row_group_size=3)
    handler = HANDLERS[name]
    written = []  # (rows, images, manifest record) per shard
    for index, (start, n) in enumerate([(0, 7), (7, 4)]):
        rows, images = _rows(index, start, n, shape, seed=index)
        ref = handler.write(out, rows, spec, {"plan_digest": "d" * 64, "shard": index})
        assert ref.file == handler.shard_file(index) and out.size(ref.file) == ref.bytes
        record = {"index": index, "rows": n, "sample_id_start": start, "sample_id_end": start + n, **ref.to_record()}
        if handler.record_key:
            record[handler.record_key] = ref.to_record()
        written.append((rows, images, record))
    _write_manifest_for(out, name, [w[2] for w in written], shape, np.concatenate([w[0].labels for w in written]))
    manifest = read_manifest(out)
    for (rows, images, _), shard in zip(written, manifest.shards):
        back = handler.read(out, manifest, shard)
        np.testing.assert_array_equal(back.sample_ids, rows.sample_ids)
        np.testing.assert_array_equal(back.labels, rows.labels)
        pixels = np.stack([pil_to_chw(decode_png(p, shape)) for p in back.pngs])  # [n, C, H, W]
        np.testing.assert_array_equal(pixels, images)


@pytest.mark.parametrize("fmt", FORMATS)
def test_write_shard_records_every_part_and_read_shard_returns_the_rows(tmp_path, fmt):
    out = Location(str(tmp_path / "o"))
    spec = DatasetSpec(CLASSES, safe_label_dirs(CLASSES), (1, 6, 5), row_group_size=4)
    rows, images = _rows(0, 0, 9)
    record = write_shard(out, fmt, rows, spec, {"plan_digest": "p" * 64, "shard": 0, "filter": {"candidates": 12}})
    primary = handlers_for(fmt)[-1]
    assert record["file"] == primary.shard_file(0) and record["filter"] == {"candidates": 12}
    assert ("png_index" in record) == (fmt in ("png", "both"))
    _write_manifest_for(out, fmt, [record], (1, 6, 5), rows.labels)
    manifest = read_manifest(out)
    assert set(manifest.shards[0].parts) == set(FORMAT_PARTS[fmt]) and manifest.shards[0].filter == {"candidates": 12}
    back = read_shard(out, manifest, manifest.shards[0])
    np.testing.assert_array_equal(back.labels, rows.labels)
    np.testing.assert_array_equal(np.stack([pil_to_chw(decode_png(p, (1, 6, 5))) for p in back.pngs]), images)


@pytest.mark.parametrize("fmt", FORMATS)
def test_rows_streamed_batch_by_batch_then_committed_give_the_same_files_as_one_write(tmp_path, fmt):
    spec = DatasetSpec(CLASSES, safe_label_dirs(CLASSES), (1, 6, 5), row_group_size=4)
    rows, _ = _rows(0, 0, 9)
    meta = {"plan_digest": "p" * 64, "shard": 0}
    whole = write_shard(Location(str(tmp_path / "whole")), fmt, rows, spec, meta)
    out = Location(str(tmp_path / "streamed"))
    streamed: dict[str, list] = {}
    for lo, hi in [(0, 4), (4, 9)]:  # two batches, then the commit
        batch = ShardRows(0, rows.sample_ids[lo:hi], rows.labels[lo:hi], rows.pngs[lo:hi])
        for name, entries in write_rows(out, fmt, batch, spec).items():
            streamed.setdefault(name, []).extend(entries)
    assert sorted(streamed) == sorted(h.name for h in handlers_for(fmt) if h.streams)
    if "png" in streamed:  # the files exist before the commit; the shard's index does not yet
        assert len(out.list_files("png")) == 9 and not out.list_files("png_index")
    bytes_needed = not all(h.streams for h in handlers_for(fmt))
    committed = ShardRows(0, rows.sample_ids, rows.labels, rows.pngs if bytes_needed else [])
    record = write_shard(out, fmt, committed, spec, meta, streamed=streamed)
    assert record == whole  # the same files, sizes and digests, index included
    for folder in {f for h in handlers_for(fmt) for f in h.folders}:
        assert out.list_files(folder) == Location(str(tmp_path / "whole")).list_files(folder)


def test_parquet_columns_names_and_metadata_are_the_documented_ones(tmp_path):
    w = write_shards(tmp_path / "o", n=12, rows_per_shard=5, fmt="parquet")
    table = pq.read_table(os.path.join(w.root, "parquet", "shard-000001.parquet"))
    assert table.column_names == ["sample_id", "label", "label_name", "image"]
    assert table.column("sample_id").to_pylist() == [5, 6, 7, 8, 9]
    assert table.column("image").combine_chunks().field("path").to_pylist()[0] == "000000000005.png"
    meta = table.schema.metadata
    assert json.loads(meta[b"huggingface"])["info"]["features"]["label"]["names"] == list(w.class_names)
    assert json.loads(meta[b"synthgen"])["shard"] == 1
    assert Shard(1, 5, 10).name == "shard-000001"


def test_manifest_round_trip_through_the_real_writer(tmp_path):
    w = write_shards(tmp_path / "o", n=23, rows_per_shard=10, fmt="both")
    raw = json.loads((tmp_path / "o" / MANIFEST_FILE).read_text())
    m = read_manifest(w.root)
    assert m.raw == raw and m.total == 23 and m.format == "both" and m.parts == ("png", "parquet")
    assert m.class_names == w.class_names and m.image_shape == (1, 28, 28)
    assert [(s.index, s.rows, s.sample_id_start, s.sample_id_end) for s in m.shards] == [
        (0, 10, 0, 10),
        (1, 10, 10, 20),
        (2, 3, 20, 23),
    ]
    assert [s.file for s in m.shards] == list(w.shard_files)
    assert m.shards[2].part("png").file == "png_index/shard-000002.json"
    assert m.per_class == {c: int((w.labels == k).sum()) for k, c in enumerate(w.class_names)}
    assert m.label_dirs["T-shirt/top"] == "T-shirt_top"
    # Written back and read again: the same manifest.
    out = Location(str(tmp_path / "copy"))
    write_manifest(out, raw)
    assert read_manifest(out).shards == m.shards


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda m: m.update(total=24), "rows sum to 23 but total=24"),
        (lambda m: m.update(format="tar"), r"format='tar' is not one of \['parquet', 'png', 'both'\]"),
        (lambda m: m.update(image_shape=[2, 28, 28]), r"image_shape=\[2, 28, 28\] is not \[C, H, W\]"),
        (lambda m: m["shards"][0].update(file="../escape.parquet"), "'../escape.parquet' is not relative to the root"),
        (lambda m: m["shards"][1].pop("png_index"), r"is malformed \(KeyError: 'png_index'\)"),
        (lambda m: m.pop("class_names"), r"is malformed \(KeyError: 'class_names'\)"),
    ],
)
def test_a_bad_manifest_is_a_shard_error_that_names_the_fix(tmp_path, edit, match):
    w = write_shards(tmp_path / "o", n=23, rows_per_shard=10, fmt="both")
    path = tmp_path / "o" / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    with pytest.raises(ShardError, match=match) as err:
        read_manifest(w.root)
    assert "re-run `synthgen sample`" in str(err.value)


def test_a_manifest_that_is_not_json_or_missing_is_a_shard_error(tmp_path):
    w = write_shards(tmp_path / "o", n=5, fmt="parquet", write_manifest_file=False)
    with pytest.raises(ShardError, match="manifest.json not found.*interrupted"):
        read_manifest(w.root)
    (tmp_path / "o" / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ShardError, match="manifest.json is not valid JSON"):
        read_manifest(w.root)
    with pytest.raises(ShardError, match="cannot open shard location 'nosuchscheme://x'"):
        read_manifest("nosuchscheme://x")
