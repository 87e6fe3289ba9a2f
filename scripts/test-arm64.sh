#!/usr/bin/env bash
# linux-arm64 (NEON) end to end on an x86-64 machine, under qemu-user:
#   1. the Zig engine and kernel tests (scalar and neon levels) for aarch64, statically linked;
#   2. Bun's own aarch64 build (npm: @oven/bun-linux-aarch64, the pinned version) running a
#      chosen subset of `bun test` against the cross-compiled linux-arm64 library.
# Prints "arm64 zig: N passed, N failed" and "arm64 bun: N passed, N failed"; on a host that is
# already aarch64, or where qemu cannot be installed, it says so and skips.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "$(uname -m)" = "aarch64" ]; then echo "arm64: native host, covered by the main suite (skipped here)"; exit 0; fi
if ! command -v qemu-aarch64-static >/dev/null || [ ! -d /usr/aarch64-linux-gnu ]; then
  echo "arm64: installing qemu-user-static and libc6-arm64-cross (Debian packages)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static libc6-arm64-cross; } >/dev/null 2>&1
fi
if ! command -v qemu-aarch64-static >/dev/null || [ ! -d /usr/aarch64-linux-gnu ]; then
  echo "arm64: SKIPPED: qemu-user-static or the aarch64 C library is not available on this machine"
  exit 0
fi

cache=.cache/arm64
mkdir -p "$cache/bin"
ln -sf "$(command -v qemu-aarch64-static)" "$cache/bin/qemu-aarch64" # the name zig's -fqemu looks for
status=0

# 1. Zig tests under qemu (musl: static binaries need no sysroot).
out=$(PATH="$PWD/$cache/bin:$PATH" python3 -m ziglang build test -Dtarget=aarch64-linux-musl -fqemu --summary all 2>&1) || status=1
zp=$(grep -oE "run test [^ ]+ [0-9]+ pass" <<<"$out" | awk '{s += $4} END {print s + 0}')
zf=$(grep -oE "[0-9]+ (fail|crash)" <<<"$out" | awk '{s += $1} END {print s + 0}')
[ "$status" -ne 0 ] && [ "$zf" -eq 0 ] && { zf=1; tail -20 <<<"$out"; }
echo "arm64 zig: $zp passed, $zf failed"

# 2. bun test under qemu with Bun's aarch64 build and the cross-compiled library.
BUN_VERSION=$(sed -n 's/.*"packageManager": "bun@\([^"]*\)".*/\1/p' package.json)
if [ ! -x "$cache/bun-$BUN_VERSION/package/bin/bun" ]; then
  mkdir -p "$cache/bun-$BUN_VERSION"
  (cd "$cache/bun-$BUN_VERSION" && npm pack --silent "@oven/bun-linux-aarch64@$BUN_VERSION" >/dev/null && tar xzf ./*.tgz)
fi
blog=$(mktemp)
python3 -m ziglang build -Dtarget=aarch64-linux-gnu.2.28 -p "$cache/lib" >"$blog" 2>&1 || { echo "arm64: cross build failed:"; tail -30 "$blog"; rm -f "$blog"; exit 1; }
rm -f "$blog"
# Tests that spawn other processes (load, package, readme, and one in reduce: BITNET_EMULATED
# skips it, saying so) need the host's Bun: those run natively.
files=(test/creation.test.ts test/views.test.ts test/dtype.test.ts test/random.test.ts test/format.test.ts test/memory.test.ts test/device.test.ts test/elementwise.test.ts test/reduce.test.ts test/nn.test.ts test/ternary.test.ts test/quant_int8.test.ts)
log=$(mktemp)
BITNET_EMULATED=1 BITNET_BUN_LIB="$PWD/$cache/lib/lib/libbitnet.so" timeout 900 qemu-aarch64-static -L /usr/aarch64-linux-gnu \
  "$cache/bun-$BUN_VERSION/package/bin/bun" test --timeout 120000 "${files[@]}" >"$log" 2>&1 || status=1
grep -E "^\(fail\)|error:" "$log" | head -20
bp=$(grep -oE "^ *[0-9]+ pass$" "$log" | tail -1 | grep -oE "[0-9]+" || echo 0)
bf=$(grep -oE "^ *[0-9]+ fail$" "$log" | tail -1 | grep -oE "[0-9]+" || echo 0)
[ "$status" -ne 0 ] && [ "$bf" -eq 0 ] && [ "$zf" -eq 0 ] && { bf=1; tail -20 "$log"; }
echo "arm64 bun: $bp passed, $bf failed"
rm -f "$log"
exit $status
