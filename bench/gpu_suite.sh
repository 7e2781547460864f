#!/usr/bin/env bash
# The GPU half of docs/BENCHMARKS.md, in one run: build an 8B-shaped random bf16 model on the GPU, measure
# copy bandwidth (for the HBM roofline), run bench.stage and bench.batching on it, and the GPU
# fingerprint calibration (bench.gpu_fingerprints). Needs torch with CUDA and transformers; nothing else.
#
#   bench/gpu_suite.sh OUTDIR        # writes OUTDIR/*.json and prints a short table
#
# Parts have their own time limits so that one slow part cannot eat the others' time.
set -uo pipefail
OUT=${1:-gpu-out}
PY=${PYTHON:-python}
MODEL=${MODEL_DIR:-/tmp/layermarket-llama-8b-shape}
TINY=${TINY_DIR:-.cache/models/llama-tiny-seed0}
mkdir -p "$OUT"
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$(pwd)
export TOKENIZERS_PARALLELISM=false

part() {  # part NAME SECONDS CMD...: run CMD with a limit; keep its last line (the JSON) and its log
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  tail -n 1 "$OUT/$name.log" >"$OUT/$name.json"
  echo "[$name] rc=$rc in $((SECONDS - t0)) s" | tee -a "$OUT/parts.txt"
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc;
  $PY -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'; } \
  >"$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

[ -f "$MODEL/config.json" ] || part build 180 $PY -m bench.gpu_model build --out "$MODEL"
part bandwidth 60 $PY -m bench.gpu_model bandwidth --json
part stage 200 $PY -m bench.stage --model "$MODEL" --stages 2 --tokens 128 --rounds 2 --device cuda --dtype bfloat16 --json
part batching 150 $PY -m bench.batching --model "$MODEL" --sessions 1,8,32,64 --tokens 32 --device cuda --dtype bfloat16 --json
part fingerprints 200 $PY -m bench.gpu_fingerprints --tiny "$TINY" --big "$MODEL" --out "$OUT/fingerprints" --json

$PY - "$OUT" <<'PYEOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
def load(name):
    try:
        return json.loads((out / f"{name}.json").read_text())
    except Exception as exc:
        return {"error": repr(exc)}
build, bw, stage, batching = load("build"), load("bandwidth"), load("stage"), load("batching")
weight_bytes = build.get("weight_bytes") or 8030261248 * 2
copy = bw.get("copy_bytes_per_s")
print(f"weights {weight_bytes / 1e9:.2f} GB; copy bandwidth {copy / 1e9 if copy else float('nan'):.0f} GB/s")
if copy:
    print(f"HBM roofline at batch 1: {copy / weight_bytes:.1f} tok/s")
for k in ("tokens_match", "split_tokens_per_s", "full_tokens_per_s", "split_overhead", "half_slice_rss_ratio"):
    print(f"stage    {k:22s} {stage.get(k)}")
print(f"batching tokens_per_s {batching.get('tokens_per_s')}  mean_batch {batching.get('mean_batch')}")
summary = {"build": build, "bandwidth": bw, "stage": stage, "batching": batching, "fingerprints": load("fingerprints")}
(out / "summary.json").write_text(json.dumps(summary))
print(json.dumps(summary))
PYEOF
