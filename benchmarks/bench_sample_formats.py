"""Where the sampling fleet's time goes: the same fleet writing Parquet only, the PNG tree only and both, with PNGs
encoded in Ray tasks and in the actors, between two runs of the bare loop (numbers, not asserts).

    python benchmarks/bench_sample_formats.py                       # 50,000 images per fleet run, about 5 minutes
    python benchmarks/bench_sample_formats.py --smoke-test          # 1,000 images per run, about a minute

Each fleet run starts a fresh local Ray (``bench_sample.fleet_run``) on an untrained default cdcgan, 2 actors x
0.75 CPU, the sampler's batch and shard size. The bare loop is ``bench_sample.bare_loop`` (batch 256, 2 threads):
latents + forward + PNG encode in this process, no Ray, no files.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_sample  # noqa: E402

from synthgen.config import ExperimentConfig, from_dict  # noqa: E402
from synthgen.sample.config import ENCODE_PLACES, SampleConfig  # noqa: E402
from synthgen.train.untrained import write_random_checkpoint  # noqa: E402

FORMATS = ("parquet", "png", "both")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-samples", type=int, default=50_000, help="images per fleet run (default 50000)")
    parser.add_argument("--bare-images", type=int, default=20_000, help="images of each bare-loop run (default 20000)")
    parser.add_argument("--smoke-test", action="store_true", help="1,000 images per fleet run, 2,000 in the bare loop")
    args = parser.parse_args(argv)
    if args.smoke_test:
        args.num_samples, args.bare_images = 1000, 2000
    checkpoint = write_random_checkpoint(tempfile.mkdtemp(prefix="bench-ckpt-"), from_dict(ExperimentConfig, {}))
    print(f"bare loop (batch 256, 2 threads): {bench_sample.bare_loop(checkpoint, args.bare_images, 256, 2):.0f} img/s")
    with tempfile.TemporaryDirectory(prefix="bench-out-") as tmp:
        for fmt in FORMATS:
            for place in ENCODE_PLACES:
                out = os.path.join(tmp, f"{fmt}-{place}")
                cfg = SampleConfig(
                    checkpoint=checkpoint,
                    out=out,
                    num_samples=args.num_samples,
                    format=fmt,
                    num_actors=2,
                    cpus_per_actor=0.75,
                    encode_in=place,
                    progress=False,
                )
                e2e, steady, _ = bench_sample.fleet_run(cfg)
                print(f"fleet {fmt:<8} PNGs encoded in the {place:<6}: end-to-end {e2e:.0f} img/s, steady {steady:.0f}")
                shutil.rmtree(out)  # the next run starts from the same disk
    print(f"bare loop (batch 256, 2 threads): {bench_sample.bare_loop(checkpoint, args.bare_images, 256, 2):.0f} img/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
