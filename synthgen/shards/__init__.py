"""The shard format: names, schema, manifest, one handler per output format; read and write.

``synthgen.sample`` writes datasets through it and ``synthgen.data`` / ``synthgen.evaluate`` read
them through it, so the on-disk contract has one home::

    OUT/plan.json                        written first (synthgen.sample.out_files)
    OUT/parquet/shard-NNNNNN.parquet     sample_id, label, label_name, image{bytes (PNG), path}
    OUT/png/<label dir>/<id:012d>.png    an ImageFolder tree, listed per shard by
    OUT/png_index/shard-NNNNNN.json      the shard's PNG index (written after its files)
    OUT/manifest.json                    written last: total, class_names, image_shape, shards[...]

Modules: ``layout`` (file names), ``codec`` (PNG bytes <-> uint8), ``types``, ``parquet`` and ``png``
(the format handlers), ``formats`` (the handler table, FORMATS, write_rows / write_shard / read_shard),
``manifest`` (read_manifest / write_manifest), ``integrity`` (checks against the manifest).
Only storage and errors are imported from synthgen: every stage may import this package.
"""

from synthgen.shards.codec import decode_png, encode_batch, encode_png, pil_to_chw
from synthgen.shards.formats import (
    FORMATS,
    HANDLERS,
    FormatHandler,
    handlers_for,
    read_shard,
    write_rows,
    write_shard,
)
from synthgen.shards.layout import MANIFEST_FILE, PLAN_FILE, Shard, png_name, safe_label_dirs
from synthgen.shards.manifest import read_manifest, write_manifest
from synthgen.shards.types import DatasetSpec, FileRef, ShardInfo, ShardManifest, ShardRows

__all__ = [
    "FORMATS",
    "HANDLERS",
    "MANIFEST_FILE",
    "PLAN_FILE",
    "DatasetSpec",
    "FileRef",
    "FormatHandler",
    "Shard",
    "ShardInfo",
    "ShardManifest",
    "ShardRows",
    "decode_png",
    "encode_batch",
    "encode_png",
    "handlers_for",
    "pil_to_chw",
    "png_name",
    "read_manifest",
    "read_shard",
    "safe_label_dirs",
    "write_manifest",
    "write_rows",
    "write_shard",
]
