#!/usr/bin/env bash
# The GPU figures in one go: the training-step speed table (seed128 and dcgan64, auto vs
# float32 precision, JAX and PyTorch, beside plain PyTorch) and a short seed128 run that
# saves its sample grids.  Writes speed.md, train.log and the grids to OUT (default gpu-out/).
#
#   bash benchmarks/gpu_check.sh [OUT]
#
# Needs Keras plus JAX and/or torch; TensorFlow is optional (add it with BACKENDS=...).
set -u
OUT=${1:-${OUT:-gpu-out}}
BACKENDS=${BACKENDS:-jax,torch}
RUN_BACKEND=${RUN_BACKEND:-jax}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
# Every variant of the table is a process of its own and they live side by side: JAX must
# not grab 75 % of the GPU's memory in each of them.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true) | tee "$OUT/gpu.txt"

timeout "${SPEED_SECONDS:-330}" python3 benchmarks/train_speed.py --presets seed128,dcgan64 \
    --precisions auto,float32 --backends "$BACKENDS" --batch-size 64 \
    --rounds "${ROUNDS:-3}" --steps "${STEPS:-40}" 2>&1 | tee "$OUT/speed.md"

# A short seed128 run on the built-in faces (no download): grids for every epoch, timed.
timeout "${RUN_SECONDS:-200}" python3 -m dcgan train --backend "$RUN_BACKEND" --preset seed128 \
    --data demo --epochs "${EPOCHS:-4}" --steps-per-epoch "${EPOCH_STEPS:-250}" \
    --out "$OUT/seed128" --overwrite 2>&1 | tee "$OUT/train.log"
last=$(ls "$OUT"/seed128/samples/epoch_*.png 2>/dev/null | tail -n 1)
cp "$OUT/seed128/samples/epoch_001.png" ${last:+"$last"} "$OUT/" 2>/dev/null
cp "$OUT/seed128/log.csv" "$OUT/seed128_log.csv" 2>/dev/null
rm -rf "$OUT/seed128"  # only the grids and the log come back
ls -la "$OUT"
