#!/usr/bin/env bash
# Submit a synthgen job to a running Ray cluster (`ray start --head` on this machine, or a tunnel to a
# remote head's dashboard). This checkout is uploaded as the job's working_dir, minus what .gitignore
# and .rayignore list (runs/, out/, .git/ ...), so `jobs/...` paths resolve on the cluster.
#   jobs/submit.sh jobs/pipeline.py --config jobs/configs/pipeline_smoke.yaml --set run.storage_path=$PWD/runs
# Settings (environment):
#   RAY_API_SERVER_ADDRESS  the head's dashboard (default http://127.0.0.1:8265; `ray start --head` prints it)
#   SUBMISSION_ID           the job's id (default: Ray picks raysubmit_...); `ray job status ID` etc. use it
#   NO_WAIT=1               return once submitted instead of streaming the job's logs until it ends
# Token auth (Ray 2.60): a cluster started while ~/.ray/auth_token exists (the first `ray start` or
# `ray.init()` on a machine writes it) accepts only clients that send that token, and the Ray CLI
# sends it only with RAY_AUTH_MODE=token; without it the dashboard answers 401 "Missing
# authentication token". This script turns it on when a token is at hand (RAY_AUTH_TOKEN,
# RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token) and RAY_AUTH_MODE is not set already.
set -euo pipefail

if [[ $# -eq 0 || "$1" != jobs/*.py ]]; then
  echo "usage: $0 jobs/<name>.py --config jobs/configs/<file>.yaml [--set key=value ...]" >&2
  echo "  (RAY_API_SERVER_ADDRESS=http://HEAD:8265 to target another cluster; see the comments in $0)" >&2
  exit 2
fi
cd "$(dirname "$0")/.."  # the repository root: the job's working_dir

if [[ -z "${RAY_AUTH_MODE:-}" ]] && { [[ -n "${RAY_AUTH_TOKEN:-}" ]] || [[ -f "${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}" ]]; }; then
  export RAY_AUTH_MODE=token
fi
args=(--address "${RAY_API_SERVER_ADDRESS:-http://127.0.0.1:8265}" --working-dir .)
if [[ -n "${SUBMISSION_ID:-}" ]]; then args+=(--submission-id "$SUBMISSION_ID"); fi
if [[ -n "${NO_WAIT:-}" ]]; then args+=(--no-wait); fi
exec ray job submit "${args[@]}" -- python "$@"
