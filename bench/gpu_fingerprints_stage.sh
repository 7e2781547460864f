#!/usr/bin/env bash
# Per-stage fingerprint calibration of 16-bit nodes on a GPU (bench.fingerprints_stage), in one run:
# the 8B-shaped random bf16 model (bench.gpu_model, built here) in bfloat16 on both stages and in float16
# on both (256 positions), then the tiny llama; every honest variant also on this host's CPU
# (--other-device cpu).
#
#   bench/gpu_fingerprints_stage.sh OUTDIR     # OUTDIR/*.fps.json (every fingerprint), *.log, a table last
#   PARTS="big_fp16" bench/gpu_fingerprints_stage.sh OUTDIR     # only some parts (the model is built first)
#
# Parts have their own time limits, ordered by importance, so the whole stays inside one 10-minute call.
set -uo pipefail
OUT=${1:-gpu-out}
PY=${PYTHON:-python3}
MODEL=${MODEL_DIR:-/tmp/layermarket-llama-8b-shape}
TINY=${TINY_DIR:-.cache/models/llama-tiny-seed0}
mkdir -p "$OUT"
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$(pwd) PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false

PARTS=${PARTS:-big_bf16 tiny big_fp16}
part() {  # part NAME SECONDS CMD...: run CMD with a limit, its output in NAME.log
  local name=$1 limit=$2; shift 2
  [[ $name == build || " $PARTS " == *" $name "* ]] || return 0
  local t0=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  echo "[$name] rc=$? in $((SECONDS - t0)) s" | tee -a "$OUT/parts.txt"
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc;
  lscpu | grep -m1 'Model name'; $PY -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'; } \
  >"$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

[ -f "$MODEL/config.json" ] || part build 170 $PY -m bench.gpu_model build --out "$MODEL"
part big_bf16 230 $PY -m bench.fingerprints_stage --model "$MODEL" --split 0:16,16:32 --device cuda \
  --dtypes bfloat16 --other-device cpu --other-tokens 64 --save "$OUT/big_bf16.fps.json"
part tiny 80 $PY -m bench.fingerprints_stage --model "$TINY" --device cuda --dtypes bfloat16,float16 \
  --other-device cpu --save "$OUT/tiny.fps.json"
part big_fp16 200 $PY -m bench.fingerprints_stage --model "$MODEL" --split 0:16,16:32 --tokens 256 \
  --device cuda --dtypes float16 --other-device cpu --other-tokens 64 --save "$OUT/big_fp16.fps.json"
for name in $PARTS; do echo "== $name"; grep -A 30 '^variant' "$OUT/$name.log"; done
