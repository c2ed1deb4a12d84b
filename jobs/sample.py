"""Ray job: sample a trained generator into Parquet/PNG shards, then verify them.

    python jobs/sample.py --config jobs/configs/sample.yaml [--set num_actors=16 ...]
    python jobs/sample.py --smoke-test     # jobs/configs/sample_smoke.yaml, well under a minute on a CPU
    ray job submit --working-dir . -- python jobs/sample.py --config jobs/configs/sample.yaml

`synthgen sample --verify` with jobs/configs/sample.yaml as the default config: every option of
`synthgen sample` works (--no-verify skips the verify pass). Joins the cluster in RAY_ADDRESS (what
``ray job submit`` sets) or starts a local Ray instance. With ``--smoke-test``, when the smoke
training run does not exist yet, an untrained checkpoint of the smoke training config is written to
a temp folder and sampled instead (the machinery does not care what the weights learned; the log
says so). Exit codes: 0 ok, 1 runtime failure (including shards that do not verify), 2 config error.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # run from a checkout without installing

from synthgen.cli import run_job  # noqa: E402

if __name__ == "__main__":
    sys.exit(
        run_job(
            "sample",
            sys.argv[1:],
            default_config=os.path.join(ROOT, "jobs", "configs", "sample.yaml"),
            defaults=["--verify"],
        )
    )
