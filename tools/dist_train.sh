#!/usr/bin/env bash
# Multi-process train with torchrun: tools/dist_train.sh CONFIG NPROC [args for tools/train.py]
# On machines without CUDA the processes use the gloo backend on the CPU.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$( [ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python)}
CONFIG=$1

NPROC=$2
shift 2
PYTHONPATH="$ROOT:${PYTHONPATH:-}" OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} \
"$PYTHON" -m torch.distributed.run --nnodes=${NNODES:-1} --node_rank=${NODE_RANK:-0} \
  --master_addr=${MASTER_ADDR:-127.0.0.1} --master_port=${PORT:-29500} --nproc_per_node="$NPROC" \
  "$ROOT/tools/train.py" "$CONFIG" --launcher pytorch "$@"
