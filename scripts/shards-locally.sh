#!/usr/bin/env bash
# Runs N shards of one sync side by side on this machine, each process given its index the way
# a scheduler gives it, so that `tdp-download --shard auto` is tried as it runs there:
#   k8s    a Kubernetes Indexed Job: JOB_COMPLETION_INDEX=0..N-1 (and JOB_COMPLETIONS=N, which
#          the Job's manifest sets: Kubernetes itself passes only the index)
#   slurm  a Slurm job array --array=10-(10+N-1): SLURM_ARRAY_TASK_ID, _MIN, _MAX, _COUNT
# Usage: scripts/shards-locally.sh N k8s|slurm tdp-download [ARGS... --shard auto]
# Exits 0 when every shard did, else with a failing shard's exit code; each shard's output
# goes to stderr, its lines prefixed with its index.
set -u -o pipefail
n=$1; style=$2; shift 2
case "$style" in k8s|slurm) ;; *) echo "unknown style $style (k8s or slurm)" >&2; exit 2 ;; esac
pids=()
for ((i = 0; i < n; i++)); do
  (
    if [ "$style" = k8s ]; then
      export JOB_COMPLETION_INDEX="$i" JOB_COMPLETIONS="$n"
    else
      export SLURM_ARRAY_TASK_ID=$((10 + i)) SLURM_ARRAY_TASK_MIN=10 \
        SLURM_ARRAY_TASK_MAX=$((10 + n - 1)) SLURM_ARRAY_TASK_COUNT="$n"
    fi
    "$@" 2>&1 | sed "s/^/[shard $i] /" >&2
  ) &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do
  wait "$p"
  code=$?
  if [ "$code" -ne 0 ] && [ "$rc" -eq 0 ]; then rc=$code; fi
done
exit "$rc"
