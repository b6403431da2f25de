#!/usr/bin/env bash
# Install qtts and everything its tests need into ./.venv, CPU only (no CUDA downloads).
#   ./install.sh                         # Python 3.10-3.13 (3.11 is the tested one)
#   PYTHON=python3.12 ./install.sh       # another interpreter, e.g. a conda environment's python
# Linux x86_64: torch comes from PyTorch's CPU wheel index when it answers, else from pip's
# configured index (a local CPU wheel here). Debian as root: redis-server, postgresql,
# chromium, PulseAudio (the --play test's null sink), g++ and the aarch64 cross-compiler + qemu-user (the kernel's NEON test) are
# installed with apt-get; elsewhere (macOS, no root) install.sh says what is missing and
# goes on: only the tests that need those programs will fail, saying what to install.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
TORCH_VERSION="2.13.0"
CPU_INDEX="https://download.pytorch.org/whl/cpu"

"$PYTHON" - <<'PY'
import sys
if not (3, 10) <= sys.version_info[:2] <= (3, 13):
    sys.exit(f"qtts needs Python 3.10-3.13 (found {sys.version.split()[0]}); set PYTHON=python3.11")
if sys.version_info[:2] != (3, 11):
    print(f"install.sh: Python {sys.version.split()[0]}: qtts is tested on 3.11", file=sys.stderr)
PY

system="$(uname -s)"
machine="$(uname -m)"
missing=()
command -v g++ >/dev/null || command -v c++ >/dev/null || missing+=(g++)
command -v rubberband >/dev/null || missing+=(rubberband-cli)  # --speed keeps the pitch (librosa without it)
# The test suite's servers and tools; QTTS_INSTALL_TEST_SERVERS=0 skips them (qtts itself needs none).
if [ "${QTTS_INSTALL_TEST_SERVERS:-1}" != 0 ]; then
command -v redis-server >/dev/null || missing+=(redis-server)
command -v chromium >/dev/null || missing+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v pulseaudio >/dev/null || missing+=(pulseaudio)  # 'speak --play' is tested into a null sink
command -v paplay >/dev/null || missing+=(pulseaudio-utils)
command -v clang++ >/dev/null || missing+=(clang)  # the kernels are also compiled with clang (macOS's family)
command -v espeak-ng >/dev/null || missing+=(espeak-ng)  # a real speech recording for the web page's microphone test
fi
if [ "$system" = Linux ] && [ "$machine" = x86_64 ] && [ "${QTTS_INSTALL_TEST_SERVERS:-1}" != 0 ]; then
  command -v aarch64-linux-gnu-g++ >/dev/null || missing+=(g++-aarch64-linux-gnu)
  command -v qemu-aarch64 >/dev/null || missing+=(qemu-user)
fi
use_apt=no
if [ "$system" = Linux ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then use_apt=yes; fi
try_cpu_index=no  # PyPI's torch is a CPU build on macOS; PyTorch's CPU index is for Linux
if [ "$system" = Linux ] && { [ "$machine" = x86_64 ] || [ "$machine" = aarch64 ]; }; then try_cpu_index=yes; fi
if [ "${QTTS_INSTALL_DRY_RUN:-0}" = 1 ]; then  # what this machine would get, and nothing done (tested)
  echo "system=$system machine=$machine python=$PYTHON venv=$VENV apt-get=$use_apt cpu-index=$try_cpu_index missing=${missing[*]:-}"
  exit 0
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$use_apt" = yes ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "install.sh: not installed: ${missing[*]} (Debian: apt-get install ${missing[*]}; macOS: brew install rubberband redis postgresql; brew install --cask chromium). The tests that need them will say so." >&2
  fi
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
"${PIP[@]}" --upgrade pip
# 1. The CPU build of torch first: anything that later asks for 'torch' is then satisfied
#    (a bare 'torch' requirement on an empty environment pulls a multi-GB CUDA build on
#    Linux x86_64; macOS and Linux aarch64 wheels on PyPI are CPU builds).
#    On Linux aarch64, PyPI's torch 2.13 is a CUDA build (~5.6 GB with its nvidia packages; it
#    runs on the CPU too): the CPU index is tried there as well.
if [ "$try_cpu_index" = yes ] && \
   "$VENV/bin/python" -c "import urllib.request; urllib.request.urlopen('$CPU_INDEX/torch/', timeout=5)" 2>/dev/null; then
  "${PIP[@]}" "torch==$TORCH_VERSION" --index-url "$CPU_INDEX"
else
  "${PIP[@]}" "torch==$TORCH_VERSION"
fi
# 2. qtts with its pinned dependencies (transformers 4.57.3, accelerate 1.12.0, ...).
"${PIP[@]}" -e ".[test]"
# 3. qwen-tts without its dependencies: 'gradio' is only for its demo (~240 MB) and the
#    only torchaudio on PyPI (a CUDA build) cannot load beside CPU torch 2.13 (see
#    src/qtts/engine/upstream/imports.py); the rest of its dependencies came with step 2.
"${PIP[@]}" --no-deps "qwen-tts==0.1.1"

"$VENV/bin/python" - "$machine" <<'PY'
import sys
import torch
if torch.version.cuda is not None:
    if sys.argv[1] == "x86_64":
        sys.exit("a CUDA build of torch got installed; expected the CPU build")
    print(f"install.sh: torch {torch.__version__} is a CUDA build (PyPI's for this machine; PyTorch's CPU index "
          "did not answer); qtts runs it on the CPU", file=sys.stderr)
PY
# 4. qtts's native kernels for this CPU, compiled once now rather than on the first synthesis
#    (~60 s); where it cannot be built, qtts uses torch's kernel.
"$VENV/bin/python" -m qtts.engine.kernels >&2 || true
echo "installed into $VENV: run '$VENV/bin/qtts doctor' to check this machine" >&2
