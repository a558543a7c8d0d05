#!/usr/bin/env bash
# One-shot setup: system packages, .venv/ with the hashed lock, pirl in editable mode, Jupyter kernel.
# Usage: bash scripts/setup.sh            (idempotent; rerun after requirements.lock changes)
# Env:   PIRL_WHEELS     folder holding the torch wheel the lock pins (default /opt/wheels)
#        PIRL_SKIP_APT=1 skip the apt step (no root, or the packages are already there)
set -euo pipefail
cd "$(dirname "$0")/.."
wheels="${PIRL_WHEELS:-/opt/wheels}"
py="${PYTHON:-python3.11}"
log=.venv-setup.log
: >"$log"

quiet() {  # run a step with its output in $log; show the log's tail if it fails
  if ! "$@" >>"$log" 2>&1; then
    echo "setup step failed: $*" >&2; tail -n 40 "$log" >&2; exit 1
  fi
}

if [ "${PIRL_SKIP_APT:-0}" != 1 ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  quiet bash scripts/setup_system.sh
fi

[ -x .venv/bin/python ] || quiet "$py" -m venv .venv
quiet .venv/bin/python -m pip install --upgrade "pip>=24"
find_links=()
[ -d "$wheels" ] && find_links=(--find-links "$wheels")
quiet .venv/bin/python -m pip install --require-hashes "${find_links[@]}" -r requirements.lock
quiet .venv/bin/python -m pip install --no-deps --require-hashes -r requirements-nodeps.txt
quiet .venv/bin/python -m pip install --no-deps --no-build-isolation -e .
quiet .venv/bin/python -m ipykernel install --sys-prefix --name pirl --display-name "pirl (.venv)"
echo "setup done: $(.venv/bin/python -c 'import torch, pirl_core; print("torch", torch.__version__, "pirl_core", pirl_core.__version__)')"
