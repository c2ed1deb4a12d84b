"""Ray job: evaluate a trained generator (or shard dataset) and write metrics.jsonl + report.html.

    python jobs/evaluate.py --config jobs/configs/evaluate.yaml [--set uplift.seeds=5 ...]
    python jobs/evaluate.py --smoke-test     # jobs/configs/evaluate_smoke.yaml, a few minutes on a CPU
    ray job submit --working-dir . -- python jobs/evaluate.py --config jobs/configs/evaluate.yaml

`synthgen evaluate` with jobs/configs/evaluate.yaml as the default config: every option of
`synthgen evaluate` works. The metrics run in this driver process (torch uses its threads); only the
honest uplift generators are trained on the Ray cluster (RAY_ADDRESS, which `ray job submit` sets,
or a local instance). With ``--smoke-test``, when the smoke training run does not exist yet, an
untrained checkpoint of the smoke training config is written to a temp folder and evaluated instead
(the log says so). Exit codes: 0 ok, 1 runtime failure, 2 config error.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # run from a checkout without installing

from synthgen.cli import run_job  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_job("evaluate", sys.argv[1:], default_config=os.path.join(ROOT, "jobs", "configs", "evaluate.yaml")))
