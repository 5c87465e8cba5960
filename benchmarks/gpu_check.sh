#!/usr/bin/env bash
# GPU check for hybridsim on one CUDA machine that cannot download anything (written for
# one H200 whose Python 3.12 has jax 0.11 with JAX's CUDA 13 plugin, flax, optax,
# orbax-checkpoint, numpy, scipy, matplotlib, absl-py, etils, flatbuffers, but not mujoco,
# mujoco-mjx, warp-lang, trimesh or tomli-w). It takes the path of `make demo` on a GPU
# machine: hybridsim installed from this tree with its dependencies (here: the image's JAX
# with its CUDA plugin plus the wheels carried in .whl/), then `hybridsim demo`.
#
# What it does, in under 10 minutes (every step runs under `timeout`, capped by what is
# left of an overall budget, BUDGET_S, default 540 s):
#   1. installs the carried wheels from .whl/ and hybridsim itself, built from this tree
#      (pip, no index, no deps; setuptools and wheel for the build come from .whl/ too),
#      into /tmp/site;
#   2. prints nvidia-smi, the versions and JAX's devices;
#   3. `hybridsim demo` (the demo of `make demo`, default sizes), backend auto, which is
#      `warp` on a GPU. warp-lang's wheel (149 MB for 1.19.0, the only version pyproject.toml
#      allows; 1.18.0 and 1.12.0 are as large) is more than the 64 MiB a device call may
#      carry, so where warp-lang is missing the script says so and runs the demo with
#      `--backend mjx --no-render` (the picture needs MuJoCo Warp's renderer);
#   4. benchmarks/throughput.py on backends warp and mjx, scenes arm2 and quadruped,
#      B in {4096, 16384}, 20 steps (warp is skipped when warp-lang is not installed);
#      each (scene, B) compiles two programs (hybridsim's and the raw one), so few sizes.
#      The JSON is rewritten after every row, so a run cut short keeps what it measured;
#   5. pytest -x -q tests/test_backends_golden.py (skipped when the file is missing);
#   6. copies the logs and JSON results to $OUT when it is set (at most 8 files).
#
# Run from the repository root:  bash benchmarks/gpu_check.sh
# Settings (environment): PYTHON (default python3: the image's JAX Python), WHL (default
# .whl), BUDGET_S, HYBRIDSIM_DEMO_ARGS (more `hybridsim demo` arguments, e.g.
# "--batch 4096 --steps 200"), RESULTS and SITE (folders under /tmp).
#
# Preparing .whl/ (git-ignored; ~34 MiB), on a machine with pip and network access, from
# the repository root, for Python 3.12 on manylinux x86_64:
#
#   P="--only-binary=:all: --no-deps --python-version 3.12 --implementation cp --abi cp312
#      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
#      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
#      --platform manylinux1_x86_64 --platform manylinux_2_5_x86_64"
#   # MuJoCo's Python layer, its C core, MJX, MJX's mesh loader, hybridsim's TOML writer:
#   python3 -m pip download $P -d .whl mujoco==4.0.0 mujoco-core==4.0.0 \
#       mujoco-mjx==3.17.0 trimesh==5.2.0 tomli-w==1.2.0
#   # the rest of mujoco's declared requirements (unused when rendering is off):
#   python3 -m pip download $P -d .whl mujoco-studio==4.0.0 websockets==17.4 \
#       glfw==2.11.0 pyopengl==3.1.10
#   # the build backend of pyproject.toml, to build hybridsim there without an index
#   # (these versions need nothing else; newer setuptools and wheel need more packages):
#   python3 -m pip download $P -d .whl setuptools==80.9.0 wheel==0.45.1
#   # pytest for the golden tests (the image may lack it):
#   python3 -m pip download $P -d .whl pytest==9.2.0 pluggy==1.7.0 iniconfig==2.3.1 \
#       packaging==26.4 pygments==2.21.0
#   # NOT carried: warp-lang==1.19.0 (149 MB; more than the 64 MiB a device call carries).
#
# Their requirements, from `unzip -p WHEEL '*/METADATA' | grep ^Requires-Dist`
# (extras left out): mujoco -> glfw, mujoco-core==4.0.0, mujoco-studio==4.0.0, numpy,
# pyopengl; mujoco-core -> numpy; mujoco-studio -> mujoco-core, numpy, websockets>=13;
# mujoco-mjx -> absl-py, etils[epath] (fsspec, typing_extensions, zipp), jax, jaxlib,
# mujoco>=3.17.0.dev0, scipy, trimesh; trimesh -> numpy; warp-lang -> numpy;
# glfw, pyopengl, websockets, tomli-w, setuptools 80.9.0, wheel 0.45.1 -> nothing;
# pytest -> iniconfig, packaging, pluggy, pygments.
# hybridsim's other requirements (jax, flax, optax, orbax-checkpoint, numpy, matplotlib)
# are in the image. MJX's warp implementation uses the copy of MuJoCo Warp vendored
# inside mujoco-mjx (mujoco.mjx.third_party), so the mujoco-warp package is not needed.

set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
REPO=$PWD
START=$SECONDS
BUDGET_S=${BUDGET_S:-540}
PY=${PYTHON:-python3}
RESULTS=${RESULTS:-/tmp/hybridsim_gpu_results}
SITE=${SITE:-/tmp/site}
WHL=${WHL:-$REPO/.whl}
read -r -a EXTRA_DEMO_ARGS <<<"${HYBRIDSIM_DEMO_ARGS:-}"
mkdir -p "$RESULTS"
export PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=${XLA_PYTHON_CLIENT_PREALLOCATE:-false}
# Never import hybridsim from the source tree (it lacks hybridsim.assets there): no current
# or script folder on sys.path, only the installed copy in $SITE.
export PYTHONSAFEPATH=1
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

log "install the wheels in $WHL and hybridsim from this tree into $SITE"
PIP=("$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade
  --find-links "$WHL" --target "$SITE")
if compgen -G "$WHL/*.whl" >/dev/null; then
  ls -l "$WHL"
  timeout "$(limit 120)" "${PIP[@]}" "$WHL"/*.whl || { echo "wheel install failed"; exit 1; }
else
  echo "no wheels in $WHL (see this script's header); relying on what $PY already has"
fi
timeout "$(limit 120)" "${PIP[@]}" "$REPO" 2>&1 | tee "$RESULTS/install.log"
[[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "hybridsim install failed"; exit 1; }
export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}

log "nvidia-smi"
timeout "$(limit 30)" nvidia-smi || echo "nvidia-smi failed"

log "versions and devices"
timeout "$(limit 90)" "$PY" - <<'EOF' || { echo "imports failed"; exit 1; }
import importlib.util
import jax, mujoco
from mujoco import mjx
import hybridsim
print("hybridsim", hybridsim.__file__)
print("jax", jax.__version__, jax.devices())
print("mujoco", mujoco.__version__)
print("warp-lang", "present" if importlib.util.find_spec("warp") else "MISSING")
EOF

if "$PY" -c "import warp" >/dev/null 2>&1; then
  HAVE_WARP=1
  BACKENDS="warp mjx"
  DEMO_ARGS=()
else
  HAVE_WARP=0
  BACKENDS="mjx"
  DEMO_ARGS=(--backend mjx --no-render)
  echo "SKIP backend warp: warp-lang is not installed; its wheel (149 MB) is larger than" \
    "the 64 MiB a device call can carry. The demo runs on backend mjx, without its picture."
fi

DEMO_ARGS+=("${EXTRA_DEMO_ARGS[@]}")
log "hybridsim demo ${DEMO_ARGS[*]:-(backend auto)}"
timeout "$(limit 240)" "$PY" -m hybridsim demo "${DEMO_ARGS[@]}" --out "$RESULTS/demo" 2>&1 \
  | tee "$RESULTS/demo.log"
rc=${PIPESTATUS[0]}
if [[ $rc -ne 0 ]]; then
  echo "hybridsim demo failed: exit $rc"; status=1
elif ((HAVE_WARP)) && ! grep -q "^backend warp:" "$RESULTS/demo.log"; then
  echo "hybridsim demo did not pick backend warp on this GPU machine"; status=1
fi

# Few steps: the point is B up to 16384 on the GPU, within the time budget.
declare -A CAP=([warp]=170 [mjx]=150)
for backend in $BACKENDS; do
  log "throughput: $backend, arm2 + quadruped, B in {4096, 16384}"
  timeout "$(limit "${CAP[$backend]}")" "$PY" benchmarks/throughput.py --backends "$backend" \
    --scenes arm2 quadruped --batch-sizes 4096 16384 --steps 20 --repeats 3 \
    --out "$RESULTS/throughput_gpu_$backend.json" 2>&1 | tee "$RESULTS/throughput_gpu_$backend.log"
  rc=${PIPESTATUS[0]}
  [[ $rc -eq 0 ]] || { echo "throughput.py ($backend) failed: exit $rc"; status=1; }
done

if [[ -f tests/test_backends_golden.py ]]; then
  log "pytest tests/test_backends_golden.py"
  timeout "$(limit 120)" "$PY" -m pytest -x -q -p no:cacheprovider tests/test_backends_golden.py \
    2>&1 | tee "$RESULTS/golden.log"
  rc=${PIPESTATUS[0]}
  [[ $rc -eq 0 ]] || { echo "golden tests failed: exit $rc"; status=1; }
else
  log "SKIP tests/test_backends_golden.py: file missing"
fi

log "done, exit $status"
exit $status
