#!/usr/bin/env bash
# The one prepared run for a machine with a GPU (the workplace's device tool), well under 10 minutes:
# the GPU's facts, then benchmarks/gpu_serving.py on cuda (serving (a)/(b)/(c) for the ResNet-18- and
# ResNet-50-sized networks at concurrency 32 and 64, training GPU vs CPU, float16 / channels-last
# accuracy), which ends by running the serving tests with MLOPS_DEVICE=cuda. Everything goes to $OUT.
#
# That machine reaches no package index: prepare the wheels here first (bash benchmarks/device_wheels.sh,
# from this project's pins) and carry .whl; its own python3 and torch (with CUDA) are used.
#   device run:  command "bash benchmarks/device_check.sh", carry [".whl"], timeout_s 600
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/device-check}
mkdir -p "$OUT"
python=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 BENTOML_DO_NOT_TRACK=True
# The benchmark is sized for under 8 minutes with its tests; 9 minutes at most, the rest for the install.
budget=${BENCHMARK_SECONDS:-540}

if [[ -d .whl ]]; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "installing the carried wheels failed" | tee "$OUT/failed.txt"; exit 2; }
    export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH
else
    export PYTHONPATH=$PWD
fi
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    "$python" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "CUDA", torch.version.cuda, "GPU visible:", torch.cuda.is_available())'
    "$python" -m pip list 2>/dev/null | grep -iE '^(torch|bentoml|mlflow|numpy|pandas|pydantic|pydantic-settings|flask|gunicorn|nvidia-ml-py) '
} 2>&1 | tee "$OUT/environment.txt"

timeout "$budget" "$python" benchmarks/gpu_serving.py --device cuda --json "$OUT/gpu_serving.json" 2>&1 \
    | grep -vE '^(DEBUG|Downloading artifacts)' | tee "$OUT/gpu_serving.txt"
status=${PIPESTATUS[0]}
echo "benchmark exit status $status (124: cut at ${budget} s)" | tee -a "$OUT/gpu_serving.txt"
exit "$status"
