"""Ray job: train -> evaluate -> sample -> verify, in one job.

    ray job submit --working-dir . -- python jobs/pipeline.py --config jobs/configs/pipeline.yaml \
        --set run.storage_path=/shared/runs          # or s3://bucket/runs on a multi-node cluster
    python jobs/pipeline.py --config jobs/configs/pipeline.yaml --smoke-test   # a minute or two on a CPU
    python jobs/pipeline.py --config jobs/configs/pipeline.yaml --dry-run      # resolved config and paths

Options: --config (default jobs/configs/pipeline.yaml), --set section.key=value (repeatable),
--dry-run, --resume, --smoke-test (runs the config's X_smoke.yaml sibling). Joins the cluster in
RAY_ADDRESS (what `ray job submit` sets) or run.ray_address, else starts a local Ray instance.
See synthgen/pipeline.py for what goes where. Exit codes: 0 ok, 1 runtime failure, 2 config error.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # the job's working_dir: run from a checkout without installing

from synthgen.cli import run_job  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_job("pipeline", sys.argv[1:], default_config=os.path.join(ROOT, "jobs", "configs", "pipeline.yaml")))
