#!/usr/bin/env bash
# Run ON THE GPU MACHINE from the checkout's root, with .gpu/ carried (benchmarks/gpu/README.md):
# installs the carried wheels into /tmp/site, then runs bench_gpu.py; the table ends the output,
# the JSON and the log go to $OUT. Extra arguments go to bench_gpu.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
DEPS=${SAMSTREAM_GPU_DEPS:-.gpu}
OUT=${OUT:-/tmp/samstream-gpu-out}
SITE=${SAMSTREAM_GPU_SITE:-/tmp/site}
mkdir -p "$OUT"
if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "run.sh: $PY has no torch: carry torch's wheels in $DEPS/whl as well (README.md)" >&2
fi
if compgen -G "$DEPS/whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$DEPS"/whl/*.whl
  export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=src:benchmarks${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 TQDM_DISABLE=1
clip=()
if [ -f "$DEPS/clip/00000.jpg" ]; then clip=(--clip "$DEPS/clip"); fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1 | tee "$OUT/gpu.txt" || true
"$PY" benchmarks/gpu/bench_gpu.py "${clip[@]}" --json "$OUT/bench_gpu.json" "$@" 2>&1 | tee "$OUT/log.txt"
