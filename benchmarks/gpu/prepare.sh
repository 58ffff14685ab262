#!/usr/bin/env bash
# Run HERE (a machine with the internet), from anywhere in the checkout: puts into .gpu/ (ignored
# by git, carried to the GPU machine) the wheels the GPU machine lacks and the clip.
#   whl/   the reference sam2 1.1.0 (built from its sdist without its CUDA extension) and its
#          pure-Python needs: hydra-core, omegaconf, antlr4-python3-runtime, iopath, portalocker
#   clip/  48 frames of bikes.mp4 as JPEGs (bench_video.prepare_clip)
# torch, numpy, pillow, scipy, safetensors, pyyaml, tqdm are on the GPU machine's image already
# (see benchmarks/gpu/README.md); samstream itself travels as the working tree (src/).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
PY=${PYTHON:-.venv/bin/python}
DEPS=.gpu
FRAMES=${FRAMES:-48}
exclude=$(git rev-parse --git-path info/exclude)
grep -qxF '/.gpu/' "$exclude" 2>/dev/null || echo '/.gpu/' >>"$exclude"
rm -rf "$DEPS/whl" "$DEPS/clip"
mkdir -p "$DEPS/whl"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d "$DEPS/whl" hydra-core==1.3.2 omegaconf==2.3.0 portalocker==3.2.0
SAM2_BUILD_CUDA=0 "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$DEPS/whl" \
  antlr4-python3-runtime==4.9.3 iopath==0.1.10 sam2==1.1.0
PYTHONPATH=src:benchmarks "$PY" - "$DEPS" "$FRAMES" <<'PYEOF'
import shutil, sys
from pathlib import Path
import bench_video
deps, frames = Path(sys.argv[1]), int(sys.argv[2])
folder, source = bench_video.prepare_clip(bench_video.DEFAULT_CACHE, frames, 40, 3)
shutil.copytree(folder, deps / "clip")
print(f"clip: {frames} frames of {source} in {deps / 'clip'}")
PYEOF
ls -l "$DEPS/whl"
du -sh "$DEPS"
