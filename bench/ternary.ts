// Ternary (BitNet b1.58) matmul (ternary-weights issue): bn.quant.ternaryMatmul(x, w) for the
// 4096x4096 and 11008x4096 (out x in) projections of a 7B-class model at 1, 8 and 32 tokens, in
// each packing ("i2": 2 bits + one f32 scale per tensor, BitNet's choice; "tq2_0" / "tq1_0":
// ggml's blocks), beside our f32 bn.matmul(x, w.T), NumPy's f32 x @ w.T (OpenBLAS with our
// thread count) and llama.cpp's TQ2_0 / TQ1_0 (bench/peers/llama.ts; i2 is compared with TQ2_0,
// the same 2-bit codes), all in the same run. GOPS = 2*M*N*K / time (M tokens, N out, K in).
// Also: the weights' memory per format, and the time of one quantization (bn.quant.ternary).
import { bench, group } from "mitata";
import * as bn from "../src/index.ts";
import { caseKey, llamaTernaryPeer, type TernaryCase } from "./peers/llama.ts";
import { header, numpyPeer, printTable, runAll } from "./util.ts";

const caps = bn.deviceCapabilities();
console.log(header(caps), `· ${caps.threads} threads`);

const K = 4096;
const OUTS = [4096, 11008];
const TOKENS = [1, 8, 32];
const FORMATS = ["i2", "tq2_0", "tq1_0"] as const;
type Format = (typeof FORMATS)[number];

// One quantization, timed once (after a small warm-up so the first call's setup is not in it).
{
  using w0 = bn.randn([256, 256], { seed: 0 });
  bn.quant.ternary(w0).dispose();
}
const quantTimes: string[] = [];

const weights = new Map<number, { f32: bn.Tensor; wT: bn.Tensor; q: Record<Format, bn.TernaryTensor> }>();
for (const n of OUTS) {
  const f32 = bn.randn([n, K], { seed: n });
  const q = {} as Record<Format, bn.TernaryTensor>;
  for (const f of FORMATS) {
    const t0 = performance.now();
    q[f] = bn.quant.ternary(f32, { format: f });
    if (n === 4096) quantTimes.push(`${f} ${(performance.now() - t0).toFixed(1)} ms`);
  }
  weights.set(n, { f32, wT: f32.T, q });
}
const xs = new Map(TOKENS.map((m) => [m, bn.randn([m, K], { seed: 100 + m })]));

const ours = (f: Format | "f32", n: number, m: number) => `${f === "f32" ? "bn.matmul f32 x @ w.T" : `ternaryMatmul ${f}`} ${n}x${K} m=${m}`;
const npName = (n: number, m: number) => `np: f32 x @ w.T ${n}x${K} m=${m}`;

for (const n of OUTS) {
  const { wT, q } = weights.get(n)!;
  group(`${n}x${K} weights (out x in)`, () => {
    for (const m of TOKENS) {
      const x = xs.get(m)!;
      for (const f of FORMATS) {
        bench(ours(f, n, m), () => {
          const y = bn.quant.ternaryMatmul(x, q[f]);
          y.dispose();
          return y;
        });
      }
      bench(ours("f32", n, m), () => {
        const y = bn.matmul(x, wT);
        y.dispose();
        return y;
      });
    }
  });
}

const rows = await runAll();

// NumPy f32, same shapes, same thread count.
const rng = (name: string, shape: string, seed: number) => `${name} = np.random.default_rng(${seed}).standard_normal(${shape}, dtype=np.float32)`;
const np = numpyPeer(
  OUTS.flatMap((n) => TOKENS.map((m) => ({ name: npName(n, m), setup: `${rng("x", `(${m}, ${K})`, m)}; ${rng("w", `(${n}, ${K})`, n)}`, stmt: "x @ w.T" }))),
  { OPENBLAS_NUM_THREADS: String(caps.threads), OMP_NUM_THREADS: String(caps.threads) },
);
if (np.error) console.log(`\nnumpy peer: not run (${np.error})`);
for (const [name, s] of Object.entries(np.times)) rows.push({ name, p50: s * 1e9, avg: s * 1e9 });

// llama.cpp (ggml CPU backend), same thread count unless BENCH_THREADS says otherwise.
process.env.BENCH_THREADS ??= String(caps.threads);
const llamaCases: TernaryCase[] = OUTS.flatMap((n) => TOKENS.flatMap((m) => (["tq2_0", "tq1_0"] as const).map((type) => ({ type, m: n, n: m, k: K }))));
const llama = await llamaTernaryPeer(llamaCases);
if (typeof llama === "string") console.log(`\nllama.cpp peer: not run (${llama})`);
const llamaNs = (type: "tq2_0" | "tq1_0", n: number, m: number): number | undefined => {
  if (typeof llama === "string") return undefined;
  const us = llama.get(caseKey({ type, m: n, n: m, k: K }));
  return us === undefined ? undefined : us * 1e3;
};
const llamaName = (type: string, n: number, m: number) => `llama.cpp ${type.toUpperCase()} ${n}x${K} m=${m}`;
for (const n of OUTS) {
  for (const m of TOKENS) {
    for (const type of ["tq2_0", "tq1_0"] as const) {
      const ns = llamaNs(type, n, m);
      if (ns !== undefined) rows.push({ name: llamaName(type, n, m), p50: ns, avg: ns });
    }
  }
}

const peers: Record<string, string> = {};
for (const n of OUTS) for (const m of TOKENS) for (const f of [...FORMATS, "f32"] as const) peers[ours(f, n, m)] = npName(n, m);
printTable(`ternary matmul (median; numpy ${np.version ?? "absent"} with ${caps.threads} BLAS threads)`, rows, peers);

// The issue's table: µs per call (median), GOPS, and speed relative to the peers (peer time /
// our time: above 1 means we are faster).
const by = new Map(rows.map((r) => [r.name, r.p50]));
const ratio = (peer: number | undefined, t: number | undefined) => (peer !== undefined && t !== undefined ? `${(peer / t).toFixed(2)}x` : "-");
console.log(
  `\n### ternary matmul x[M, ${K}] @ wᵀ, µs per call (median), ${caps.threads} threads\n\n` +
    "speedup = peer time / our time (above 1: we are faster); llama.cpp column: i2 and tq2_0 vs TQ2_0, tq1_0 vs TQ1_0\n",
);
console.log("| weights (out×in) | M | kernel | µs | GOPS | speedup vs numpy f32 | speedup vs llama.cpp |");
console.log("| --- | ---: | --- | ---: | ---: | ---: | ---: |");
for (const n of OUTS) {
  for (const m of TOKENS) {
    const ops = 2 * m * n * K;
    const tNp = by.get(npName(n, m));
    const line = (kernel: string, t: number | undefined, llamaPeer?: number) => {
      if (t === undefined) return;
      console.log(`| ${n}×${K} | ${m} | ${kernel} | ${(t / 1e3).toFixed(1)} | ${(ops / t).toFixed(1)} | ${ratio(tNp, t)} | ${llamaPeer === undefined ? "-" : ratio(llamaPeer, t)} |`);
    };
    for (const f of FORMATS) line(`bn ${f}`, by.get(ours(f, n, m)), llamaNs(f === "tq1_0" ? "tq1_0" : "tq2_0", n, m));
    line("bn f32 matmul", by.get(ours("f32", n, m)));
    line("numpy f32", tNp);
    line("llama.cpp TQ2_0", llamaNs("tq2_0", n, m));
    line("llama.cpp TQ1_0", llamaNs("tq1_0", n, m));
  }
}

// Weight memory per format (codes + scales) vs f32.
console.log("\n### weight memory\n\n| weights (out×in) | format | bytes | bits/weight | f32 / format |\n| --- | --- | ---: | ---: | ---: |");
for (const n of OUTS) {
  const { f32, q } = weights.get(n)!;
  const fb = f32.size * 4;
  console.log(`| ${n}×${K} | f32 | ${fb} | 32 | 1.00x |`);
  for (const f of FORMATS) console.log(`| ${n}×${K} | ${f} | ${q[f].bytes} | ${q[f].bitsPerWeight.toFixed(4)} | ${(fb / q[f].bytes).toFixed(2)}x |`);
}
console.log(`\nquantization (bn.quant.ternary of ${4096}x${K} f32, per-tensor absmean, one call each): ${quantTimes.join(", ")}`);

for (const { f32, wT, q } of weights.values()) {
  wT.dispose();
  f32.dispose();
  for (const f of FORMATS) q[f].dispose();
}
for (const x of xs.values()) x.dispose();
