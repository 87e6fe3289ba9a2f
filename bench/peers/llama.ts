// llama.cpp peer for ternary matmul: runs ggml's `test-backend-ops perf` (built and patched by
// bench/peers/llama.sh) on the CPU backend and reads its per-case µs/run. The binary's path comes
// from LLAMA_TEST_BACKEND_OPS; threads from BENCH_THREADS (default 2), passed to the patched
// binary as GGML_TEST_N_THREADS.
import { existsSync } from "node:fs";

export type TernaryType = "tq2_0" | "tq1_0";

export interface TernaryCase {
  type: TernaryType;
  /** output rows (weight rows) */
  m: number;
  /** tokens (activation columns) */
  n: number;
  /** inner dimension */
  k: number;
}

export const caseKey = (c: TernaryCase): string => `${c.type} m=${c.m} n=${c.n} k=${c.k}`;

// One perf line, after stripping ANSI colours:
//   MUL_MAT(type_a=tq2_0,type_b=f32,m=4096,n=1,k=4096,bs=[1,1],...):   5497 runs -   184.38 us/run - ...
const LINE = /^\s*MUL_MAT\(([^)]*)\):\s+(\d+)\s+runs\s+-\s+([0-9.]+)\s+us\/run/;
// The plain 2-D case (no batching/broadcast/permutation/views), which is what we time.
const PARAMS = /^type_a=(tq[12]_0),type_b=f32,m=(\d+),n=(\d+),k=(\d+),bs=\[1,1\],nr=\[1,1\],per=\[0,1,2,3\],k_v=0,o=1\b/;

/**
 * Microseconds per matmul for each case, keyed by `caseKey`, or a string explaining why there
 * are no numbers (binary unset/missing, run failed, or cases absent from its perf list).
 */
export async function llamaTernaryPeer(cases: TernaryCase[]): Promise<Map<string, number> | string> {
  const bin = process.env.LLAMA_TEST_BACKEND_OPS;
  if (!bin) return "LLAMA_TEST_BACKEND_OPS is not set (build it with bench/peers/llama.sh)";
  if (!existsSync(bin)) return `LLAMA_TEST_BACKEND_OPS=${bin} does not exist (build it with bench/peers/llama.sh)`;
  if (cases.length === 0) return new Map();

  const threads = process.env.BENCH_THREADS ?? "2";
  // -p is a regex searched in each case's params string; select exactly our cases.
  const filter = cases
    .map((c) => `^type_a=${c.type},type_b=f32,m=${c.m},n=${c.n},k=${c.k},bs=\\[1,1\\],nr=\\[1,1\\],per=\\[0,1,2,3\\],k_v=0,o=1,`)
    .join("|");
  const p = Bun.spawnSync([bin, "perf", "-o", "MUL_MAT", "-b", "CPU", "-p", filter], {
    env: { ...process.env, GGML_TEST_N_THREADS: threads },
    timeout: 600_000,
  });
  const out = p.stdout.toString().replace(/\x1b\[[0-9;]*m/g, "");
  if (p.exitCode !== 0) {
    return `test-backend-ops exited with ${p.exitCode ?? p.signalCode}: ${(p.stderr.toString() + out).trim().slice(-500)}`;
  }

  const got = new Map<string, number>();
  for (const line of out.split("\n")) {
    const l = LINE.exec(line);
    const q = l?.[1] ? PARAMS.exec(l[1]) : null;
    if (!l?.[3] || !q) continue;
    const c: TernaryCase = { type: q[1] as TernaryType, m: Number(q[2]), n: Number(q[3]), k: Number(q[4]) };
    got.set(caseKey(c), Number(l[3]));
  }

  const missing = cases.map(caseKey).filter((k) => !got.has(k));
  if (missing.length > 0) {
    return (
      `test-backend-ops printed no timing for: ${missing.join("; ")} ` +
      "(not in its perf case list; apply bench/peers/llama-perf-cases.patch, or not supported by this build)"
    );
  }
  // Only the requested cases, in request order.
  return new Map(cases.map((c) => [caseKey(c), got.get(caseKey(c))!]));
}
