#!/usr/bin/env bash
# Build llama.cpp's (ggml's) `test-backend-ops` for the CPU backend, as the
# peer for bench/ternary.ts (TQ2_0 / TQ1_0 matmul timings).
#
#   bench/peers/llama.sh LLAMA_CPP_DIR [BUILD_DIR]
#   (or LLAMA_CPP_DIR=... LLAMA_BUILD_DIR=... bench/peers/llama.sh)
#
# LLAMA_CPP_DIR may be a llama.cpp checkout or a ggml checkout (ggml-org/ggml
# carries the same ggml/ sources and tests/test-backend-ops.cpp, synced from
# llama.cpp). Prints the path of the built binary on the last line of stdout;
# use it as LLAMA_TEST_BACKEND_OPS for bench/peers/llama.ts.
set -euo pipefail

src="${1:-${LLAMA_CPP_DIR:?set LLAMA_CPP_DIR or pass the checkout as \$1}}"
build="${2:-${LLAMA_BUILD_DIR:-$src/build-bench}}"
jobs="${BUILD_JOBS:-2}"
patch="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/llama-perf-cases.patch"

# Our patch adds the ternary perf cases (m=4096/11008, k=4096, n=1/8/32) and a
# GGML_TEST_N_THREADS override to tests/test-backend-ops.cpp. Apply it once;
# skip if already applied (reverse-applies cleanly).
if git -C "$src" apply --reverse --check "$patch" 2>/dev/null; then
  echo "patch already applied" >&2
else
  git -C "$src" apply "$patch"
fi

# llama.cpp root vs. standalone ggml root: different option names for tests.
if [[ -d "$src/ggml/src" ]]; then
  proj_opts=(-DLLAMA_BUILD_TESTS=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_SERVER=OFF
             -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF)
else
  proj_opts=(-DGGML_BUILD_TESTS=ON -DGGML_BUILD_EXAMPLES=OFF)
fi

# Release + -march=native so ggml picks the best x86 kernels for this CPU
# (same as a user building llama.cpp locally). OpenMP is ggml's default
# thread pool on Linux.
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
  -DGGML_OPENMP="${GGML_OPENMP:-ON}" -DBUILD_SHARED_LIBS=OFF "${proj_opts[@]}" >&2
# Only the one test binary (pulls in ggml + ggml-cpu), not the whole tree.
cmake --build "$build" --target test-backend-ops -j "$jobs" >&2

bin="$build/bin/test-backend-ops"
[[ -x "$bin" ]] || { echo "build finished but $bin is missing" >&2; exit 1; }
echo "$bin"
