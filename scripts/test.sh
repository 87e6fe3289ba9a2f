#!/usr/bin/env bash
# Every test: the Zig engine's unit tests (Debug with safety checks, every SIMD level this CPU
# runs; the pool and thread pool again in ReleaseSafe), the TypeScript type check, the
# linux-arm64 (NEON) checks under qemu (scripts/test-arm64.sh), then `bun test` (with NVRTC from
# scripts/fetch-nvrtc.sh when it can be fetched, so the CUDA kernels compile here), then the Metal
# tests on the shim's CPU emulator (Linux). Ends with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp -d)
zig_pass=0; zig_fail=0; ts_pass=0; ts_fail=0; status=0

out="$log/zig.txt"
python3 -m ziglang build test --summary all >"$out" 2>&1 || status=1
while read -r a b; do zig_pass=$((zig_pass + a)); zig_fail=$((zig_fail + b)); done < <(
  grep -oE "run test [^ ]+ [0-9]+ pass(, [0-9]+ (fail|crash))?" "$out" |
    sed -E 's/.* ([0-9]+) pass(, ([0-9]+) (fail|crash))?/\1 \3/' | awk '{print $1, ($2 == "" ? 0 : $2)}')
if [ "$status" -ne 0 ]; then [ "$zig_fail" -eq 0 ] && zig_fail=1; tail -30 "$out"; fi
echo "zig: $zig_pass passed, $zig_fail failed"

if ! bunx tsc --noEmit -p . >"$log/tsc.txt" 2>&1; then
  status=1; ts_fail=$((ts_fail + 1)); echo "typecheck failed:"; head -40 "$log/tsc.txt"
else
  ts_pass=$((ts_pass + 1)); echo "typecheck: ok"
fi

# linux-arm64 / NEON under qemu (Zig tests and a bun test subset with Bun's aarch64 build). It
# runs before `bun test` so that the package test's linux-arm64 prebuilt reuses its kernel
# objects from the Zig cache (the same target and options) instead of compiling them again.
bash scripts/test-arm64.sh | tee "$log/arm64.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
while read -r a b; do ts_pass=$((ts_pass + a)); ts_fail=$((ts_fail + b)); done < <(
  grep -E "^arm64 (zig|bun): " "$log/arm64.txt" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\1 \2/')

# NVRTC (no GPU needed) lets test/cuda_ops.test.ts compile the CUDA kernel sources here too.
if [ -z "${BITNET_NVRTC:-}" ]; then
  nvrtc=$(bash scripts/fetch-nvrtc.sh)
  [ -n "$nvrtc" ] && export BITNET_NVRTC="$nvrtc"
fi
bun test "$@" 2>&1 | tee "$log/bun.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
bp=$(grep -oE "^ *[0-9]+ pass$" "$log/bun.txt" | tail -1 | grep -oE "[0-9]+" || echo 0)
bf=$(grep -oE "^ *[0-9]+ fail$" "$log/bun.txt" | tail -1 | grep -oE "[0-9]+" || echo 0)
ts_pass=$((ts_pass + bp)); ts_fail=$((ts_fail + bf))

# The Metal path on Linux: test/metal.test.ts again, with the shim's CPU emulator (metal/emu.cpp,
# the kernels of metal/kernels.metal compiled as C++) standing in for metal/shim.m, so the engine's
# whole Metal path and the conformance suite run here. On a Mac the real shim runs it instead.
if [ "$(uname -s)" = Linux ]; then
  if python3 -m ziglang build metal-emu >"$log/emu-build.txt" 2>&1; then
    BITNET_METAL_SHIM="$PWD/zig-out/lib/libbitnet_metal_emu.so" bun test test/metal.test.ts 2>&1 | tee "$log/metal-emu.txt"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
    mp=$(grep -oE "^ *[0-9]+ pass$" "$log/metal-emu.txt" | tail -1 | grep -oE "[0-9]+" || echo 0)
    mf=$(grep -oE "^ *[0-9]+ fail$" "$log/metal-emu.txt" | tail -1 | grep -oE "[0-9]+" || echo 0)
    ts_pass=$((ts_pass + mp)); ts_fail=$((ts_fail + mf))
  else
    status=1; ts_fail=$((ts_fail + 1)); echo "metal emulator build failed:"; tail -30 "$log/emu-build.txt"
  fi
fi
if [ "$status" -ne 0 ] && [ "$ts_fail" -eq 0 ] && [ "$zig_fail" -eq 0 ]; then ts_fail=1; fi

echo "$((zig_pass + ts_pass)) passed, $((zig_fail + ts_fail)) failed"
exit $status
