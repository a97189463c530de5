#!/usr/bin/env bash
# One clip's pipeline on one GPU in each way of running the score network, with a profile of
# where the time goes (BENCHMARKS.md, "GPU suite": one 4 s clip of audio-visual enhancement is
# bound by launching kernels). For MODEL (default v2s), 4 s inputs, median of 5 after a warm-up:
#   1. eager, bf16 autocast (the default), profiled;
#   2. torch.compile with CUDA graphs (reduce-overhead, `pipeline.compile`'s GPU default), profiled;
#   3. eager in float32 (no autocast casts between the kernels);
#   4. torch.compile in torch's default mode (no CUDA graphs).
# Each step runs under `timeout` (its budget in seconds); a failed step is logged and the rest go on.
# Writes OUTPUT_DIR/STEP/record.json, profile-JOB.txt, OUTPUT_DIR/STEP.log and OUTPUT_DIR/summary.txt.
#
#   bash benchmarks/speed/gpu_pipeline_modes.sh [OUTPUT_DIR] [MODEL]      # about 4-7 minutes
#   DEVICE=cpu SECONDS_IN=1 REPEATS=1 bash benchmarks/speed/gpu_pipeline_modes.sh /tmp/modes   # CPU dry run
# PYTHON picks the interpreter (default .venv/bin/python when present, else python3).
set -u
OUT=$(realpath -m "${1:-benchmarks/results/gpu-pipeline-modes}")
MODEL=${2:-v2s}
DEVICE=${DEVICE:-cuda}
SECONDS_IN=${SECONDS_IN:-4}
REPEATS=${REPEATS:-5}
cd "$(dirname "$0")/../.." || exit 1
if [[ -z ${PYTHON:-} ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export TORCHINDUCTOR_CACHE_DIR="$OUT/inductor-cache"
mkdir -p "$OUT"
JOBS=(udiffse+ udiffse+lips generate)

step() {  # step NAME BUDGET ARGS...
    local name=$1 budget=$2 start=$SECONDS
    shift 2
    timeout "$budget" "$PYTHON" -m benchmarks.speed.pipeline_speed --model "$MODEL" --device "$DEVICE" \
        --seconds "$SECONDS_IN" --repeats "$REPEATS" --memory-seconds --output "$OUT/$name" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    {
        echo "## $name (exit $rc, $((SECONDS - start)) s of $budget): $*"
        grep -E "RTF|profile:" "$OUT/$name.log" || tail -5 "$OUT/$name.log"
    } | tee -a "$OUT/summary.txt"
}

{
    if [[ $DEVICE == cuda ]]; then nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; fi
    "$PYTHON" -c "import torch, platform; print('torch', torch.__version__, 'python', platform.python_version())"
    echo "model $MODEL, $SECONDS_IN s inputs, median of $REPEATS"
} | tee "$OUT/summary.txt"
step eager 75 --jobs "${JOBS[@]}" --profile
step cuda-graphs 240 --compile --compile-mode reduce-overhead --jobs "${JOBS[@]}" --profile
step eager-float32 60 --dtype float32 --jobs "${JOBS[@]}"
step compiled-default 120 --compile --compile-mode default --jobs "${JOBS[@]}"
