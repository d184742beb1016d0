#!/usr/bin/env bash
# The real-face table (benchmarks/quality.py --data) on a GPU with JAX: each recipe for the
# same images seen, at 64x64 and 32x32.  Needs Keras, JAX, pillow, numpy; the faces come from
# DATA (a folder: `python -c "import sys; sys.path.insert(0, 'benchmarks'); import quality;
# quality.lfw_folder('runs/lfw')"` writes scikit-image's 100 faces there).
#
#   bash benchmarks/gpu_quality.sh [OUT]
set -u
OUT=${1:-${OUT:-gpu-out}}
DATA=${DATA:-runs/lfw}
IMAGES=${IMAGES:-15000}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true) | tee "$OUT/gpu.txt"
python3 benchmarks/quality.py --data "$DATA" --sizes 64 --images "$IMAGES" --out "$OUT" \
    --recipes "${RECIPES64:-dcgan,dcgan+diffaugment,dcgan+ada,dcgan+r1,dcgan+sn+hinge,dcgan+ada+r1,dcgan+diffaugment-ct}" \
    2>&1 | grep -v "^W0000\|^I0000\|absl" | tee "$OUT/quality64.md"
[ "${RECIPES32-x}" = "" ] || python3 benchmarks/quality.py --data "$DATA" --sizes 32 --images "$IMAGES" --out "$OUT" \
    --recipes "${RECIPES32:-demo,seed,dcgan,dcgan+ada,dcgan+ada+r1}" \
    2>&1 | grep -v "^W0000\|^I0000\|absl" | tee "$OUT/quality32.md"
