#!/usr/bin/env bash
# Sets up a fresh clone: the pinned toolchain (Bun from npm, Zig from PyPI's ziglang), the dev
# dependencies, and the engine for this machine. Idempotent, and quick when everything is there.
# The versions live in one place each: package.json "packageManager" (Bun) and build.zig.zon
# "minimum_zig_version" (Zig).
set -euo pipefail
cd "$(dirname "$0")/.."

ZIG_VERSION=$(sed -n 's/.*minimum_zig_version = "\([^"]*\)".*/\1/p' build.zig.zon)
BUN_VERSION=$(sed -n 's/.*"packageManager": "bun@\([^"]*\)".*/\1/p' package.json)

if [ "$(bun --version 2>/dev/null || true)" != "$BUN_VERSION" ]; then
  echo "setup: installing bun $BUN_VERSION from npm"
  npm install -g --no-fund --no-audit "bun@$BUN_VERSION" >/dev/null
  hash -r
fi
if [ "$(python3 -m ziglang version 2>/dev/null || true)" != "$ZIG_VERSION" ]; then
  echo "setup: installing zig $ZIG_VERSION from PyPI (ziglang)"
  python3 -m pip install --quiet --disable-pip-version-check "ziglang==$ZIG_VERSION" \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "ziglang==$ZIG_VERSION"
fi

bun install --frozen-lockfile >/dev/null
bun scripts/gen-abi.ts --check
# On glibc Linux, build for the same target as the shipped linux prebuilt (glibc 2.28): the kernel
# objects are then the very ones `zig build prebuilt` (run by the package test) needs, and come
# from the build cache there instead of being compiled twice.
target=()
if [ "$(uname -s)" = Linux ] && getconf GNU_LIBC_VERSION >/dev/null 2>&1; then
  case "$(uname -m)" in
    x86_64) target=(-Dtarget=x86_64-linux-gnu.2.28) ;;
    aarch64) target=(-Dtarget=aarch64-linux-gnu.2.28) ;;
  esac
fi
python3 -m ziglang build "${target[@]}"
echo "setup: bun $(bun --version), zig $(python3 -m ziglang version), engine at zig-out/lib"
