#!/usr/bin/env bash
# Fetches NVIDIA's NVRTC (the CUDA runtime compiler, a plain shared library; no GPU or driver
# needed) from PyPI into ~/.cache/bitnet-bun, so that the tests compile the CUDA kernel sources
# (test/cuda_ops.test.ts) on machines without a GPU too. Best effort: prints the library's path on
# success, nothing (and exits 0) when it cannot be fetched — the test then says it was skipped.
# Linux x86-64 and arm64 only (the wheels NVIDIA publishes).
set -uo pipefail
VERSION=12.9.86
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64 | Linux-aarch64) ;;
  *) exit 0 ;;
esac
dir="${XDG_CACHE_HOME:-$HOME/.cache}/bitnet-bun/nvrtc-$VERSION"
lib="$dir/nvidia/cuda_nvrtc/lib/libnvrtc.so.12"
if [ ! -f "$lib" ]; then
  tmp=$(mktemp -d)
  if python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
      "nvidia-cuda-nvrtc-cu12==$VERSION" -d "$tmp" >/dev/null 2>&1; then
    mkdir -p "$dir"
    python3 -m zipfile -e "$tmp"/*.whl "$dir" >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
fi
[ -f "$lib" ] && echo "$lib"
exit 0
