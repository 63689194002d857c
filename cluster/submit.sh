#!/usr/bin/env bash
# Submit one rl_hyper study to a running Ray cluster as a Ray job.
#
#   cluster/submit.sh STUDY_YAML ADDRESS [STORAGE_URI]
#   cluster/submit.sh tune_configs/quickstart.yaml http://localhost:8265 s3://YOUR_BUCKET/rl_hyper
#
# Run it from the project root: that directory is uploaded as the job's working directory
# (.venv, results, .git and caches excluded). The study is validated locally first. Token
# authentication: the token is read from RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or
# ~/.ray/auth_token (`ray get-auth-token` prints it); RAY_AUTH_MODE=token is set here unless
# the caller set a mode. The job id and the commands to follow and stop the job are printed.
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
    sed -n '2,11p' "$0" >&2
    exit 2
fi

export RAY_AUTH_MODE="${RAY_AUTH_MODE:-token}"
export OMP_NUM_THREADS=1

args=("$1" --address "$2")
if [[ $# -eq 3 ]]; then
    args+=(--storage "$3")
fi
exec rl-hyper submit "${args[@]}"
