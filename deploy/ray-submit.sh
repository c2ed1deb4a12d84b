#!/usr/bin/env bash
# Submit a synthgen job to the long-running KubeRay cluster of deploy/kuberay/raycluster.yaml:
#   deploy/ray-submit.sh python jobs/pipeline.py --config jobs/configs/pipeline.yaml \
#       --set run.storage_path=s3://YOUR-BUCKET/synthgen
# It port-forwards the head's dashboard, logs the Ray CLI in with the cluster's token (Ray 2.60 token
# auth: RAY_AUTH_MODE=token and RAY_AUTH_TOKEN, read from the Secret named in authOptions.secretName),
# and uploads this checkout as the job's working_dir, so `jobs/...` paths resolve on the cluster.
# Settings (environment): RAY_CLUSTER (synthgen), TOKEN_SECRET (synthgen-ray-token), NAMESPACE
# (kubectl's current one), LOCAL_PORT (8265).
set -euo pipefail

if [[ $# -eq 0 ]]; then
  echo "usage: $0 python jobs/<name>.py --config jobs/configs/<file>.yaml [--set section.key=value ...]" >&2
  exit 2
fi
cluster="${RAY_CLUSTER:-synthgen}"
secret="${TOKEN_SECRET:-synthgen-ray-token}"
port="${LOCAL_PORT:-8265}"
cd "$(dirname "$0")/.."  # the repository root: the job's working_dir

export RAY_AUTH_MODE=token
RAY_AUTH_TOKEN="$(kubectl ${NAMESPACE:+--namespace "$NAMESPACE"} get secret "$secret" \
  -o jsonpath='{.data.auth_token}' | base64 --decode)"
export RAY_AUTH_TOKEN

kubectl ${NAMESPACE:+--namespace "$NAMESPACE"} port-forward "service/${cluster}-head-svc" "${port}:8265" >/dev/null &
forward_pid=$!
trap 'kill "$forward_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 30); do  # wait until the tunnel accepts connections
  if (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null; then break; fi
  sleep 1
done

ray job submit --address "http://127.0.0.1:${port}" --working-dir . -- "$@"
