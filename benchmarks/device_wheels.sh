#!/usr/bin/env bash
# Prepares, on a machine with the package index (this one), the wheels benchmarks/device_check.sh
# installs on the GPU machine, which reaches no index: every package the benchmark and the serving
# tests need, at the versions this project's pins resolve to for CPython 3.12 on manylinux x86_64
# (the GPU machine's python3), minus what that machine's image already holds
# (benchmarks/device_preinstalled.txt) and minus torch and its CUDA libraries (its own torch is used:
# the CUDA wheel of the pinned torch alone is larger than what a device run may carry).
#   bash benchmarks/device_wheels.sh            # writes .whl/ (git-ignored via .git/info/exclude)
#   WHEELS_DIR=/tmp/wheels bash benchmarks/device_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
out=${WHEELS_DIR:-.whl}
report=$(mktemp)
trap 'rm -f "$report" "$report.needed"' EXIT
if [[ $out == .whl ]] && ! git check-ignore -q .whl; then
    echo '/.whl/' >>"$(git rev-parse --git-common-dir)/info/exclude"  # wheels are carried, never committed
fi
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
# Resolve without downloading (wheel metadata only): the project's serving and tracking extras plus the
# test runner, for the GPU machine's interpreter.
"$python" -m pip install --quiet --dry-run --ignore-installed --target /tmp/device-wheels-resolve \
    --python-version 3.12 --implementation cp --only-binary=:all: "${platforms[@]}" \
    --report "$report" ".[tracking,serving]" "pytest>=8,<10"
"$python" - "$report" benchmarks/device_preinstalled.txt >"$report.needed" <<'PY'
import json, re, sys
def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
preinstalled = {canonical(line.strip()) for line in open(sys.argv[2]) if line.strip() and not line.startswith("#")}
# Its own torch and CUDA libraries; and what neither the benchmark nor the serving tests import there
# (uv: `bentoml build`; boto3: S3 stores; psycopg: PostgreSQL tracking): 38 MiB the carry cannot spare.
skipped = re.compile(r"^(torch|triton|nvidia-.*|cuda-.*|mlops-platform|uv|boto3|botocore|s3transfer|psycopg.*)$")
for item in json.load(open(sys.argv[1]))["install"]:
    name = canonical(item["metadata"]["name"])
    if name not in preinstalled and not skipped.match(name):
        print(f"{name}=={item['metadata']['version']}")
PY
rm -rf "$out" && mkdir -p "$out"
"$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d "$out" -r "$report.needed"
rm -f "$report.needed"
echo "$(ls "$out" | wc -l) wheels, $(du -sm "$out" | cut -f1) MiB in $out (a device run carries at most 64 MiB in all)"
