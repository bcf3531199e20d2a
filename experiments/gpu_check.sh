#!/usr/bin/env bash
# GPU check: every area's benchmark at GPU sizes, each under its own time limit
# (about 7.5 minutes in all), one table of what ran: gpu_check.md in OUT_DIR.
#
#   experiments/gpu_check.sh [OUT_DIR]     # default: $OUT, else experiments/results/gpu_check
#
# Meant for a lent accelerator (the `device` tool runs it in a copy of the tree):
# benchmarks that have no --results-dir write into experiments/results/<name>/,
# so the committed CPU tables are saved first and put back at the end; the GPU
# tables are copied under OUT_DIR. Needs a JAX with a GPU backend (jax[cuda12]).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=$(mkdir -p "${1:-${OUT:-experiments/results/gpu_check}}" && cd "${1:-${OUT:-experiments/results/gpu_check}}" && pwd)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
unset JAX_PLATFORMS XLA_FLAGS

if ! python -c "import jax, sys; sys.exit(0 if jax.default_backend() == 'gpu' else 1)"; then
    echo "gpu_check: JAX sees no GPU ($(python -c 'import jax; print(jax.devices())' 2>&1 | tail -1))" >&2
    exit 2
fi

SAVED=$(mktemp -d)
cp -a experiments/results "$SAVED/"
restore() { rm -rf experiments/results && cp -a "$SAVED/results" experiments/results && rm -rf "$SAVED"; }
trap restore EXIT

{
    echo "# GPU check ($(date -u +%Y-%m-%dT%H:%MZ))"
    echo
    echo "Device: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)"
    echo "JAX: $(python -c 'import jax; print(jax.__version__, jax.devices())' 2>&1 | tail -1)"
    echo
    echo "| benchmark | command | exit | seconds | table |"
    echo "|---|---|---|---|---|"
} > "$OUT_DIR/gpu_check.md"
TABLES=()

# run NAME LIMIT_S EXPERIMENT ARGS... : one benchmark, its tables copied to OUT_DIR/NAME
run() {
    local name=$1 limit=$2; shift 2
    local t0=$SECONDS rc
    echo "== $name (limit ${limit}s): python -m experiments $*"
    timeout --signal=KILL "$limit" python -m experiments "$@" > "$OUT_DIR/$name.log" 2>&1
    rc=$?
    mkdir -p "$OUT_DIR/$name"
    if [[ "$*" != *--results-dir* && -d "experiments/results/$1" ]]; then
        cp -a "experiments/results/$1/." "$OUT_DIR/$name/" 2>/dev/null
    fi
    local table
    table=$(ls -t "$OUT_DIR/$name"/*.md 2>/dev/null | head -1)
    [ "$rc" = 137 ] && rc="137 (time limit)"
    echo "| $name | \`python -m experiments $*\` | $rc | $((SECONDS - t0)) | ${table#"$OUT_DIR"/} |" >> "$OUT_DIR/gpu_check.md"
    [ -n "$table" ] && TABLES+=("$table")
    echo "   exit $rc after $((SECONDS - t0)) s"
}

run bench_training 80 bench_training --gpu --devices 1 --model EGNN --batch 400 --steps 50 --results-dir "$OUT_DIR/bench_training"
run nbody 70 nbody --epochs 5 --train 3000 --val 500 --test 500 --batch 100 --no-progress --results-dir "$OUT_DIR/nbody"
run bench_tensor_products 110 bench_tensor_products --lmax 16 --repeats 3
run bench_frames 90 bench_frames --batch 1024 --no-retaining
run bench_reductions 70 bench_reductions --repeats 3
run tour 60 tour --workers 1

{
    echo
    for t in "${TABLES[@]}"; do
        echo "## ${t#"$OUT_DIR"/}"
        echo
        cat "$t"
        echo
    done
} >> "$OUT_DIR/gpu_check.md"
echo "table: $OUT_DIR/gpu_check.md"
