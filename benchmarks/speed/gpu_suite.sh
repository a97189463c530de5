#!/usr/bin/env bash
# GPU benchmark suite, one NVIDIA GPU, under 8 minutes (the steps' budgets are clipped to a
# 445 s suite budget). Measures, in bf16:
#   1. sampling throughput of the tiny and NCSN++-sized score networks at batch 1, 4 and 16,
#      eager and torch.compile (benchmarks/speed/sampling_speed.py, 12 network calls a run);
#   2. pipeline RTF of generate and each enhancer (udiffse+ diffpir dps udiffse, audio-visual) for
#      the shipped v2s model, and of generate / udiffse+ for the NCSN++-sized config with random
#      weights, eager and --compile (benchmarks/speed/pipeline_speed.py, 4 s inputs, 3 repeats);
#   3. training samples/s of avdiff/configs/synth-gpu.yaml (80 steps on a 200-utterance
#      `avdiff synth` corpus; median of the TensorBoard windows after step 20).
# Each step runs under `timeout` with its own budget; a failed step becomes a note of the table
# and the suite goes on. Prints one markdown table, also written to OUTPUT_DIR/table.md (logs
# of every step in OUTPUT_DIR/logs; each step's record.json in its folder, the table's in OUTPUT_DIR).
#
#   bash benchmarks/speed/gpu_suite.sh [OUTPUT_DIR]          # default benchmarks/results/gpu-suite
#   OMP_NUM_THREADS=1 nice -n 19 bash benchmarks/speed/gpu_suite.sh OUT --device cpu --quick   # CPU dry run, ~5 min
#
# Options: --device cuda|cpu (default cuda); --quick (tiny config only, batch 1, 2 repeats,
# 1 s inputs, 10 training steps of synth-cpu.yaml); --corpus DIR (train on this existing
# `avdiff synth` corpus instead of making one). PYTHON picks the interpreter (default
# .venv/bin/python when present, else python3); run from the repository root.
set -u

OUT=benchmarks/results/gpu-suite
DEVICE=cuda
QUICK=0
CORPUS=""

usage() {
    sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

parse_args() {
    while (($#)); do
        case $1 in
            --device) DEVICE=$2; shift 2 ;;
            --device=*) DEVICE=${1#*=}; shift ;;
            --quick) QUICK=1; shift ;;
            --corpus) CORPUS=$2; shift 2 ;;
            --corpus=*) CORPUS=${1#*=}; shift ;;
            -h|--help) usage; exit 0 ;;
            -*) echo "gpu_suite.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
            *) OUT=$1; shift ;;
        esac
    done
}

# Settings of a full run or of the quick dry run (names in capitals are read by the steps).
configure() {
    OUT=$(realpath -m "$OUT")
    [[ -n $CORPUS ]] && CORPUS=$(realpath -m "$CORPUS")
    cd "$(dirname "$0")/../.." || exit 1
    if [[ -z ${PYTHON:-} ]]; then
        if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
    fi
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
    DTYPE=bfloat16; PRECISION=bf16; TRAIN_FLAGS=(--set training.mixed_precision=bf16)
    if [[ $DEVICE == cpu ]]; then DTYPE=float32; PRECISION=fp32; TRAIN_FLAGS=(--cpu); fi
    WORKERS=$(nproc); ((WORKERS > 8)) && WORKERS=8
    if ((QUICK)); then
        SUITE_BUDGET=330; NETS=(tiny); BATCHES=(1); REPEATS=2; AUDIO_S=1; CONFIG_NET=tiny
        TRAIN_CONFIG=avdiff/configs/synth-cpu.yaml; TRAIN_STEPS=10; LOG_EVERY=1; TRAIN_WARMUP=4; UTTERANCES=40
    else
        SUITE_BUDGET=445; NETS=(tiny ncsnpp); BATCHES=(1 4 16); REPEATS=3; AUDIO_S=4; CONFIG_NET=ncsnpp
        TRAIN_CONFIG=avdiff/configs/synth-gpu.yaml; TRAIN_STEPS=80; LOG_EVERY=5; TRAIN_WARMUP=20; UTTERANCES=200
    fi
    MIN_STEP_S=15
    local batched=16
    ((QUICK)) && batched=2
    V2S_JOBS=(generate "generate:num_samples=$batched" udiffse+ diffpir dps udiffse)
    mkdir -p "$OUT/logs"
    : >"$OUT/steps.tsv"
    : >"$OUT/notes.txt"
}

note() {
    echo "$*" >>"$OUT/notes.txt"
}

# One line naming the machine: GPU (nvidia-smi) or CPU, torch, commit.
machine_line() {
    local gpu torch_version commit quick=""
    gpu=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n 1)
    [[ -z $gpu ]] && gpu="no GPU ($(grep -m 1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc --all) cores)"
    torch_version=$("$PYTHON" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo "not importable")
    commit=$(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD 2>/dev/null || echo "+changes")
    ((QUICK)) && quick="; QUICK DRY RUN"
    echo "$gpu; torch $torch_version; device $DEVICE; $(date -u +%Y-%m-%dT%H:%MZ); commit $commit$quick"
}

# Python modules the steps need that the interpreter lacks (a note, not a stop).
preflight() {
    local missing
    missing=$("$PYTHON" - <<'EOF' 2>&1
import importlib.util
names = ["torch", "numpy", "scipy", "yaml", "accelerate", "diffusers", "safetensors", "soundfile", "av",
         "einops", "tqdm", "tensorboard", "espeakng_loader"]
print(" ".join(name for name in names if importlib.util.find_spec(name) is None))
EOF
)
    [[ -n $missing ]] && note "preflight: $PYTHON lacks: $missing (steps needing them fail)"
    local check='import sys, torch; sys.exit(not torch.cuda.is_available())'
    if [[ $DEVICE == cuda ]] && ! "$PYTHON" -c "$check" 2>/dev/null; then
        note "preflight: torch sees no CUDA device; every --device cuda step will fail"
    fi
}

record_step() {  # record_step NAME KIND MODEL MODE STATUS RC SECONDS BUDGET
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$OUT/steps.tsv"
}

# run_step NAME KIND MODEL MODE BUDGET_S COMMAND...: COMMAND under `timeout`, its output in
# OUT/logs/NAME.log, its budget clipped to what is left of the suite's; returns its exit code.
run_step() {
    local name=$1 kind=$2 model=$3 mode=$4 budget=$5 left start rc status cache
    shift 5
    left=$((SUITE_BUDGET - SECONDS))
    ((budget > left)) && budget=$left
    if ((budget < MIN_STEP_S)); then
        record_step "$name" "$kind" "$model" "$mode" "skipped: suite time budget spent (${left} s left)" 0 0 0
        echo "-- $name: skipped (suite time budget spent)"
        return 1
    fi
    rm -rf "${OUT:?}/$name"
    echo "-- $name (budget ${budget} s): $*"
    start=$SECONDS
    # the step's own torch.compile cache: a compile killed by `timeout` can leave a truncated
    # artifact that breaks later compiles, so a step that did not end well loses its cache
    cache=$OUT/inductor-cache/$name
    TORCHINDUCTOR_CACHE_DIR=$cache timeout --kill-after=5 "$budget" "$@" >"$OUT/logs/$name.log" 2>&1
    rc=$?
    case $rc in 0) status=ok ;; 124|137) status=timeout ;; *) status=failed ;; esac
    [[ $status == ok ]] || rm -rf "$cache"
    record_step "$name" "$kind" "$model" "$mode" "$status" "$rc" "$((SECONDS - start))" "$budget"
    echo "   $status after $((SECONDS - start)) s"
    return "$rc"
}

synth_step() {
    if [[ -n $CORPUS ]]; then
        note "training corpus: $CORPUS (given with --corpus)"
        return 0
    fi
    CORPUS=$OUT/synth
    run_step synth synth - - "$(budget 60 60)" "$PYTHON" -m avdiff synth --output "$CORPUS" \
        --num-utterances "$UTTERANCES" --workers "$WORKERS" --overwrite --no-progress
}

train_step() {
    if [[ ! -f $CORPUS/train.jsonl ]]; then
        record_step train train "$TRAIN_CONFIG" "$PRECISION" "skipped: no corpus ($CORPUS/train.jsonl missing)" 0 0 0
        return 1
    fi
    run_step train train "$TRAIN_CONFIG" "$PRECISION eager" "$(budget 100 120)" \
        "$PYTHON" -m avdiff train --config "$TRAIN_CONFIG" --output "$OUT/train" --max-steps "$TRAIN_STEPS" \
        "${TRAIN_FLAGS[@]}" \
        --set "data.train_manifest=$CORPUS/train.jsonl" --set "data.valid_manifest=$CORPUS/valid.jsonl" \
        --set training.validate_every=0 --set training.checkpoint_every=1000 --set "training.log_every=$LOG_EVERY" \
        --set training.sigma_data_batches=2
}

# pipeline_step NAME MODEL_LABEL MODE BUDGET ARGS...: pipeline_speed.py, eager or --compile.
pipeline_step() {
    local name=$1 label=$2 mode=$3 budget=$4 compile=()
    shift 4
    [[ $mode == compiled ]] && compile=(--compile)
    run_step "$name" pipeline "$label" "$mode" "$budget" "$PYTHON" -m benchmarks.speed.pipeline_speed "$@" \
        --device "$DEVICE" --seconds "$AUDIO_S" --repeats "$REPEATS" "${compile[@]}" \
        --memory-seconds --output "$OUT/$name"
}

# sampling_step NET MODE BUDGET: sampling_speed.py for avdiff/configs/NET.yaml.
sampling_step() {
    local net=$1 mode=$2 budget=$3
    run_step "sampling-$net-$mode" sampling "$net" "$mode" "$budget" "$PYTHON" -m benchmarks.speed.sampling_speed \
        --config "avdiff/configs/$net.yaml" --device "$DEVICE" --batch-sizes "${BATCHES[@]}" --modes "$mode" \
        --dtype "$DTYPE" --calls 12 --repeats "$REPEATS" --output "$OUT/sampling-$net-$mode"
}

# budget CUDA_S QUICK_S: a step's budget in a full run or in the quick dry run (CPU, under load).
budget() {
    if ((QUICK)); then echo "$2"; else echo "$1"; fi
}

# Steps in order of importance: the figures with targets first, torch.compile (slowest to start) last.
run_suite() {
    local net
    synth_step
    train_step
    pipeline_step pipeline-v2s-eager v2s eager "$(budget 75 150)" --model v2s --methods "${V2S_JOBS[@]}"
    pipeline_step "pipeline-$CONFIG_NET-eager" "$CONFIG_NET (random weights)" eager "$(budget 60 60)" \
        --config "avdiff/configs/$CONFIG_NET.yaml" --methods generate udiffse+
    for net in "${NETS[@]}"; do sampling_step "$net" eager "$(budget 40 45)"; done
    sampling_step tiny compiled "$(budget 75 120)"
    ((QUICK)) || sampling_step ncsnpp compiled 120
    pipeline_step pipeline-v2s-compiled v2s compiled "$(budget 75 60)" --model v2s --methods "${V2S_JOBS[@]}"
    pipeline_step "pipeline-$CONFIG_NET-compiled" "$CONFIG_NET (random weights)" compiled "$(budget 60 60)" \
        --config "avdiff/configs/$CONFIG_NET.yaml" --methods generate udiffse+
}

main() {
    local machine
    parse_args "$@"
    configure
    machine=$(machine_line)
    echo "gpu_suite: $machine -> $OUT (suite budget ${SUITE_BUDGET} s)"
    preflight
    run_suite
    if ! "$PYTHON" -m benchmarks.speed.gpu_suite_table "$OUT" --machine "$machine" --warmup-steps "$TRAIN_WARMUP"; then
        echo "gpu_suite: the table could not be built; the steps were:" >&2
        cat "$OUT/steps.tsv" "$OUT/notes.txt" >&2
    fi
}

main "$@"
