#!/usr/bin/env bash
# The GPU benchmark (benchmarks/gpu.py) in one command, on a GPU machine, from anywhere in the checkout:
#
#   benchmarks/gpu_run.sh                                    # both engines at full size (8B-class)
#   benchmarks/gpu_run.sh --engine vllm --vllm-seqs 16,32    # options pass through to benchmarks/gpu.py
#   PYTHON=/opt/vllm/bin/python GPU_RUN_TIMEOUT=560 benchmarks/gpu_run.sh --engine vllm --whole-job
#
# Checks nvidia-smi, the Python (PYTHON, else .venv/bin/python, else python3: torch must see the GPU) and
# whether `import vllm` works in it. vLLM pins its own torch, so it often lives in an environment of its own;
# where it does not import, this says so and measures transformers only (no pip: the machine may have no
# internet). Then it runs benchmarks/gpu.py under a timeout (GPU_RUN_TIMEOUT seconds, default 560; on expiry
# the script ends its vLLM workers and writes what it measured). Results: $OUT/gpu-vllm.md, gpu-vllm.json
# (and the transformers part's gpu.md, gpu.json) when $OUT is set (the device runner), else
# benchmarks/results/gpu-vllm.md and .json; the log beside them, gpu-vllm.log.
set -u -o pipefail
cd "$(dirname "$0")/.." || exit 2

timeout_s=${GPU_RUN_TIMEOUT:-560}
if [ -n "${PYTHON:-}" ]; then
  py=$PYTHON
elif [ -x .venv/bin/python ]; then
  py=.venv/bin/python
else
  py=python3
fi
dest=${OUT:-benchmarks/results}
mkdir -p "$dest" || exit 2
log="$dest/gpu-vllm.log"
: > "$log"
say() { echo "gpu_run: $*" | tee -a "$log"; }

say "checkout $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u +%Y-%m-%dT%H:%M:%SZ), python $py"
if ! command -v nvidia-smi > /dev/null 2>&1; then
  say "nvidia-smi not found: no NVIDIA GPU or driver on this machine; nothing run"
  exit 2
fi
if ! nvidia-smi --query-gpu=index,name,memory.total,memory.used,driver_version --format=csv 2>&1 | tee -a "$log"; then
  say "nvidia-smi fails: no usable GPU; nothing run"
  exit 2
fi
if ! "$py" -c 'import sys, torch, transformers
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), transformers {transformers.__version__}")
sys.exit(0 if torch.cuda.is_available() else 3)' 2>&1 | tee -a "$log"; then
  say "$py cannot run the benchmark: torch or transformers missing, or torch sees no GPU; set PYTHON to an environment that has them"
  exit 2
fi

engine=()
if version=$(timeout 300 "$py" -c 'import vllm; print(vllm.__version__)' 2> "$dest/.vllm-import.err"); then
  say "vllm $version imports"
else
  say "vllm does not import with $py ($(tail -n 1 "$dest/.vllm-import.err" 2> /dev/null)): measuring transformers only; for vLLM, set PYTHON to an environment where \`import vllm\` works (with vidlake installed or this checkout)"
  engine=(--engine hf)
fi
rm -f "$dest/.vllm-import.err"

say "running benchmarks/gpu.py $* ${engine[*]} (timeout ${timeout_s}s)"
PYTHONUNBUFFERED=1 timeout --kill-after=60 "$timeout_s" "$py" benchmarks/gpu.py "$@" "${engine[@]}" \
  --results-dir "$dest" 2>&1 | tee -a "$log"
rc=${PIPESTATUS[0]}
if [ "$rc" = 124 ]; then
  say "timed out after ${timeout_s}s (GPU_RUN_TIMEOUT): the results hold what was measured before"
fi
say "exit status $rc; results in $dest: gpu-vllm.md, gpu-vllm.json, gpu-vllm.log"
exit "$rc"
