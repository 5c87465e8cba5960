#!/usr/bin/env bash
# GPU check for hybridsim on one CUDA machine (written for one H200 whose image has
# jax 0.11 with CUDA, flax, optax, numpy, scipy, absl-py, etils, fsspec, zipp and
# typing-extensions, but not mujoco, mujoco-mjx or warp-lang).
#
# What it does, in under 8 minutes (every step runs under `timeout`, capped by what is
# left of an overall budget, BUDGET_S, default 460 s):
#   1. installs the wheels carried in .whl/ into /tmp/site (no index, no deps);
#   2. prints nvidia-smi and the JAX devices;
#   3. benchmarks/throughput.py on backends warp and mjx, scenes arm2 and quadruped,
#      B in {4096, 16384}, 20 steps (warp is skipped when warp-lang is not installed);
#      each (scene, B) compiles two programs (hybridsim's and the raw one), so few sizes.
#      The JSON is rewritten after every row, so a run cut short keeps what it measured;
#   4. pytest -x -q tests/test_backends_golden.py (skipped when the file is missing);
#   5. copies the JSON results and logs to $OUT when it is set.
#
# Run from the repository root:  bash benchmarks/gpu_check.sh
#
# Fetching the wheels (on a machine with pip and network access; Python 3.12,
# manylinux x86_64), into .whl/ at the repository root (.whl/ is git-ignored):
#
#   P="--only-binary=:all: --no-deps --python-version 3.12 --implementation cp --abi cp312
#      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
#      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
#      --platform manylinux1_x86_64 --platform manylinux_2_5_x86_64"
#   # needed: MuJoCo's Python layer, its C core, MJX, and MJX's mesh loader.
#   python3 -m pip download $P -d .whl mujoco==4.0.0 mujoco-core==4.0.0 \
#       mujoco-mjx==3.17.0 trimesh==5.2.0
#   # the rest of mujoco's declared requirements (unused when rendering is off):
#   python3 -m pip download $P -d .whl mujoco-studio==4.0.0 websockets==17.4 \
#       glfw==2.11.0 pyopengl==3.1.10
#   # backend 'warp': 143 MiB, more than the 64 MiB a device call may carry (see README).
#   python3 -m pip download $P -d .whl warp-lang==1.19.0
#
# Their requirements, from `unzip -p WHEEL '*/METADATA' | grep ^Requires-Dist`
# (extras left out): mujoco -> glfw, mujoco-core==4.0.0, mujoco-studio==4.0.0, numpy,
# pyopengl; mujoco-core -> numpy; mujoco-studio -> mujoco-core, numpy, websockets>=13;
# mujoco-mjx -> absl-py, etils[epath] (fsspec, typing_extensions, zipp), jax, jaxlib,
# mujoco>=3.17.0.dev0, scipy, trimesh; trimesh -> numpy; warp-lang -> numpy;
# glfw, pyopengl, websockets -> nothing. absl-py, etils, fsspec, zipp,
# typing-extensions, scipy, numpy and jax are in the image. MJX's warp implementation
# uses the copy of MuJoCo Warp vendored inside mujoco-mjx (mujoco.mjx.third_party), so
# the separate mujoco-warp package is not needed.

set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
REPO=$PWD
START=$SECONDS
BUDGET_S=${BUDGET_S:-460}
RESULTS=${RESULTS:-/tmp/hybridsim_gpu_results}
mkdir -p "$RESULTS"
export PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=${XLA_PYTHON_CLIENT_PREALLOCATE:-false}
status=0

log() { printf '\n=== [%4ds] %s\n' "$((SECONDS - START))" "$*"; }

# limit CAP: seconds a step may take, at most CAP and at most what is left of BUDGET_S.
limit() {
  local left=$((BUDGET_S - (SECONDS - START)))
  ((left < 5)) && left=5
  echo $(($1 < left ? $1 : left))
}

save() {  # copy results to $OUT (at most 8 files come back from there)
  if [[ -n "${OUT:-}" ]]; then
    cp -f "$RESULTS"/*.json "$RESULTS"/*.log "$OUT"/ 2>/dev/null || true
  fi
}
trap save EXIT

log "install wheels from .whl/"
if compgen -G ".whl/*.whl" >/dev/null; then
  timeout "$(limit 120)" python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target /tmp/site .whl/*.whl || { echo "wheel install failed"; exit 1; }
  export PYTHONPATH=/tmp/site:$REPO
else
  echo "no wheels in .whl/; using whatever python3 already has"
  export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
fi

log "nvidia-smi"
timeout "$(limit 30)" nvidia-smi || echo "nvidia-smi failed"

log "versions and devices"
timeout "$(limit 90)" python3 - <<'EOF' || { echo "imports failed"; exit 1; }
import importlib.util
import jax, mujoco
from mujoco import mjx
print("jax", jax.__version__, jax.devices())
print("mujoco", mujoco.__version__)
print("warp-lang", "present" if importlib.util.find_spec("warp") else "MISSING")
EOF

BACKENDS="mjx"
if python3 -c "import warp" >/dev/null 2>&1; then
  BACKENDS="warp mjx"
else
  echo "SKIP backend warp: warp-lang is not installed (not among the carried wheels?)"
fi

# Few steps: the point is B up to 16384 on the GPU, within the time budget.
declare -A CAP=([warp]=170 [mjx]=150)
for backend in $BACKENDS; do
  log "throughput: $backend, arm2 + quadruped, B in {4096, 16384}"
  timeout "$(limit "${CAP[$backend]}")" python3 benchmarks/throughput.py --backends "$backend" \
    --scenes arm2 quadruped --batch-sizes 4096 16384 --steps 20 --repeats 3 \
    --out "$RESULTS/throughput_gpu_$backend.json" 2>&1 | tee "$RESULTS/throughput_gpu_$backend.log"
  rc=${PIPESTATUS[0]}
  [[ $rc -eq 0 ]] || { echo "throughput.py ($backend) failed: exit $rc"; status=1; }
done

if [[ -f tests/test_backends_golden.py ]]; then
  log "pytest tests/test_backends_golden.py"
  timeout "$(limit 120)" python3 -m pytest -x -q -p no:cacheprovider tests/test_backends_golden.py 2>&1 \
    | tee "$RESULTS/golden.log"
  rc=${PIPESTATUS[0]}
  [[ $rc -eq 0 ]] || { echo "golden tests failed: exit $rc"; status=1; }
else
  log "SKIP tests/test_backends_golden.py: file missing"
fi

log "done, exit $status"
exit $status
