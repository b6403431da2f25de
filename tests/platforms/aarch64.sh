#!/usr/bin/env bash
# aarch64 Linux, end to end, on an x86_64 Debian machine: an arm64 Debian root made with
# debootstrap, run through qemu-user (binfmt_misc), where the README's ./install.sh runs,
# then 'qtts doctor --run-smoke', a 'qtts speak' on the tiny checkpoint and the kernel tests.
#   sudo tests/platforms/aarch64.sh            # ROOT=/var/tmp/qtts-arm64 by default; kept for reruns
# Needs root and Debian's debootstrap, qemu-user-static and binfmt-support (installed here if
# missing).  Slow: everything arm64 runs emulated (see docs/platforms.md for recorded runs).
set -euo pipefail
ROOT="${ROOT:-/var/tmp/qtts-arm64}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
started=$(date +%s)
say() { echo "[aarch64 $(( $(date +%s) - started ))s] $*" >&2; }

if ! command -v debootstrap >/dev/null || ! command -v qemu-aarch64-static >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap qemu-user-static \
    binfmt-support >/dev/null
fi
[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64

if [ ! -x "$ROOT/usr/bin/python3" ]; then
  say "debootstrap arm64 bookworm into $ROOT"
  debootstrap --arch=arm64 --variant=minbase \
    --include=python3,python3-venv,python3-dev,g++,ca-certificates,procps \
    bookworm "$ROOT" "$MIRROR" >/dev/null
fi
say "the arm64 root runs: $(chroot "$ROOT" uname -m), $(chroot "$ROOT" python3 --version)"

for fs in proc dev; do
  mountpoint -q "$ROOT/$fs" || mount --bind "/$fs" "$ROOT/$fs"
done
# Not the host's /sys: oneDNN (inside torch) reads the Arm CPU's id register from sysfs and
# crashes under qemu-user without it.  A small sysfs of two Neoverse-N1-like cores instead.
mountpoint -q "$ROOT/sys" && umount -l "$ROOT/sys"
for cpu in 0 1; do
  mkdir -p "$ROOT/sys/devices/system/cpu/cpu$cpu/regs/identification"
  echo 0x00000000410fd0c1 > "$ROOT/sys/devices/system/cpu/cpu$cpu/regs/identification/midr_el1"
done
for list in online possible present; do echo 0-1 > "$ROOT/sys/devices/system/cpu/$list"; done
cleanup() { for fs in dev proc; do umount -l "$ROOT/$fs" 2>/dev/null || true; done; }
trap cleanup EXIT
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# The host's trust store: where HTTPS goes through a proxy with its own CA, pip needs it too.
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"

say "copying the checkout (without .venv) to $ROOT/qtts"
mkdir -p "$ROOT/qtts"
find "$ROOT/qtts" -mindepth 1 -maxdepth 1 ! -name .venv -exec rm -rf {} +  # a rerun keeps its .venv
tar -C "$repo" --exclude=.venv --exclude=.git --exclude='__pycache__' -cf - . | tar -C "$ROOT/qtts" -xf -

run() { chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  LANG=C.UTF-8 QTTS_INSTALL_TEST_SERVERS=0 PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
  SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PIP_DEFAULT_TIMEOUT=180 bash -c "cd /qtts && $1"; }

say "./install.sh (the README's first command; the test suite's servers skipped)"
run "./install.sh"
say "the tiny random-weight checkpoint"
run "rm -rf /tmp/tiny && .venv/bin/qtts models build-random --preset tiny --out /tmp/tiny >/dev/null"
say "qtts doctor --run-smoke"
run "QTTS_MODEL_ID=/tmp/tiny HF_HUB_OFFLINE=1 .venv/bin/qtts doctor --run-smoke"
say "qtts speak on the tiny checkpoint (through the resident engine, and in-process)"
run ".venv/bin/python -c 'from qtts.doctor import smoke_reference; import soundfile as sf; sf.write(\"/tmp/ref.wav\", smoke_reference(3.0).samples, 24000)' && \
  QTTS_MODEL_ID=/tmp/tiny HF_HUB_OFFLINE=1 .venv/bin/qtts speak --ref-audio /tmp/ref.wav \
    --ref-text 'Hello there, this is me.' --text 'Hello from an arm64 machine.' --max-frames 24 --out /tmp/arm1.wav && \
  QTTS_MODEL_ID=/tmp/tiny HF_HUB_OFFLINE=1 .venv/bin/qtts engine stop && \
  QTTS_MODEL_ID=/tmp/tiny HF_HUB_OFFLINE=1 .venv/bin/qtts speak --no-engine --ref-audio /tmp/ref.wav \
    --ref-text 'Hello there, this is me.' --text 'Hello from an arm64 machine.' --max-frames 24 --out /tmp/arm.wav --json"
say "the kernel tests"
run ".venv/bin/python -m pytest -q tests/unit/test_int8_kernel.py tests/integration/test_native_stack.py \
  tests/integration/test_predictor_frame.py"
say "done in $(( $(date +%s) - started )) s"
