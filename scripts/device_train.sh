#!/usr/bin/env bash
# One reader run on a lent GPU machine, from the repository's root, with the bundle of
# scripts/device_bundle.py carried as .device: installs Keras there if it is missing, trains on
# JAX with a worker process per core drawing batches (the GPU outruns one), and leaves the run's
# checkpoints and logs in $OUT (the device tool brings that folder back) for export here.
#
#   TRAIN_MINUTES=8 bash scripts/device_train.sh --epochs 60 --lr 2e-3 ...     (any model.train flags)
set -euo pipefail
PYTHON=${PYTHON:-python3}
OUT=${OUT:-runs/device}
mkdir -p "$OUT"
if ! "$PYTHON" -c "import keras" 2>/dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .device/whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1
# The shares of the recipe's later stages (model/recipe.json); flags given after override them.
mix=(--synth-fraction 0.2 --font-fraction 0.1 --pseudo-fraction 0.3 --handwriting-fraction 0.1 --blank-fraction 0.05)
if [ -f .device/pseudo.json ]; then mix+=(--pseudo .device/pseudo.json); fi
# A device command is killed at its time limit, and $OUT comes back all the same: stop training
# first (TRAIN_MINUTES), keeping the best epoch so far (ModelCheckpoint writes it as it comes).
# Without --average-from, since a mean of epochs is written only when all have run.
status=0
timeout "${TRAIN_MINUTES:-8}m" "$PYTHON" -m model.train --data .device/svhn --mnist .device/mnist "${mix[@]}" \
    --workers "$(nproc)" --out /tmp/device-run --quiet "$@" 2>&1 | tee "$OUT/train.log" || status=$?
for file in best.keras last.keras log.csv train.json; do
    if [ -f "/tmp/device-run/$file" ]; then cp "/tmp/device-run/$file" "$OUT/"; fi
done
if [ "$status" = 124 ]; then echo "stopped after ${TRAIN_MINUTES:-8} minutes: $OUT holds the best epoch so far"; fi
exit "$status"
