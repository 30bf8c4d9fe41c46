#!/usr/bin/env bash
# The GPU checks, for a machine whose Python already holds CUDA builds of jax
# and torch (and keras, pytest, hypothesis, h5py, tokenizers) but may have no
# network, so tox cannot install anything there: every test tier on each
# backend, then the parity report over every golden, TF32 off.
#   OUT=reports/gpu BACKENDS="jax torch" bash tools/run_gpu_checks.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-reports/gpu}
PYTHON=${PYTHON:-python3}
BACKENDS=${BACKENDS:-jax torch}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export XLA_PYTHON_CLIENT_PREALLOCATE=false TF_CPP_MIN_LOG_LEVEL=2 HYPOTHESIS_PROFILE=ci PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$OUT/gpu.txt" 2>&1
KERAS_BACKEND=jax "$PYTHON" -c "import keras, jax, numpy; print('keras', keras.__version__, 'jax', jax.__version__, 'numpy', numpy.__version__)" >> "$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt"
status=0
for backend in $BACKENDS; do
  start=$(date +%s)
  KERAS_BACKEND=$backend timeout "${PER_BACKEND_TIMEOUT:-200}" "$PYTHON" -m pytest -p no:cacheprovider -q \
    -n "${WORKERS:-8}" -m "not crosscheck" ${TESTS:-} > "$OUT/pytest-$backend.txt" 2>&1 || status=1
  echo "== $backend: $(tail -1 "$OUT/pytest-$backend.txt") ($(( $(date +%s) - start ))s)"
  grep -E "^(FAILED|ERROR)" "$OUT/pytest-$backend.txt" | head -20
done
if [ "${REPORT:-1}" = 1 ]; then
  "$PYTHON" -m harness report --backend "$(echo $BACKENDS | tr ' ' ',')" --tier extra_large --out "$OUT" \
    > "$OUT/parity.txt" 2>&1 || status=1
  grep -vE "^  " "$OUT/parity.txt" | tail -40
fi
if [ -n "${TF32_REPORT:-}" ]; then  # what TF32 matmuls cost, for the gpu-tf32 profile
  DISTILBERT_HUB_ALLOW_TF32=1 "$PYTHON" -m harness report --backend "$(echo $BACKENDS | tr ' ' ',')" \
    --tier extra_large --out /tmp/tf32-report > "$OUT/parity-tf32.txt" 2>&1
  grep -E "^(backbone|preset)|parity" "$OUT/parity-tf32.txt"
fi
exit $status
