#!/usr/bin/env bash
# Install qtts and everything its tests need: Python packages into ./.venv (CPU only; no
# CUDA downloads), plus redis-server, postgresql, chromium and g++ from Debian when missing.
#   ./install.sh            # or: PYTHON=python3.11 ./install.sh
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"

"$PYTHON" - <<'PY'
import sys
if sys.version_info[:2] != (3, 11):
    sys.exit(f"qtts needs Python 3.11 (found {sys.version.split()[0]}); set PYTHON=python3.11")
PY

# Servers and the browser that the service tests drive (Debian packages): redis-server and
# postgresql for the distributed-queue tests, chromium for the web-page test; g++ builds
# qtts's int8 kernel (without it qtts falls back to torch's slower kernel).
missing=()
command -v g++ >/dev/null || command -v c++ >/dev/null || missing+=(g++)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v chromium >/dev/null || missing+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "install.sh: please install ${missing[*]} (Debian: apt-get install ${missing[*]}); the tests need them" >&2
  fi
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
"${PIP[@]}" --upgrade pip
# 1. The CPU build of torch first: anything that later asks for 'torch' is then satisfied
#    (a bare 'torch' requirement on an empty environment pulls a multi-GB CUDA build).
"${PIP[@]}" "torch==2.13.0"
# 2. qtts with its pinned dependencies (transformers 4.57.3, accelerate 1.12.0, ...).
"${PIP[@]}" -e ".[test]"
# 3. qwen-tts without its dependencies: 'gradio' is only for its demo (~240 MB) and the
#    only torchaudio on PyPI (a CUDA build) cannot load beside CPU torch 2.13 (see
#    src/qtts/engine/compat.py); the rest of its dependencies came with step 2.
"${PIP[@]}" --no-deps "qwen-tts==0.1.1"

"$VENV/bin/python" - <<'PY'
import torch
assert torch.version.cuda is None, "a CUDA build of torch got installed; expected the CPU build"
PY
# 4. qtts's int8 kernel, compiled once now rather than on the first synthesis (~35 s); where
#    it cannot be built, qtts uses torch's kernel.
"$VENV/bin/python" -m qtts.engine.kernels >&2 || true
echo "installed into $VENV: run '$VENV/bin/qtts doctor' to check this machine" >&2
