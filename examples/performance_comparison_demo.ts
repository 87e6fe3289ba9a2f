// The same operations at every SIMD level this CPU runs, against plain JavaScript, as a table.
// Run: bun examples/performance_comparison_demo.ts   (BITNET_THREADS=1 to see one core)
import * as bn from "../src/index.ts";

const N = 1 << 20;
const caps = bn.deviceCapabilities();
console.log(`${caps.platform}-${caps.arch}, ${caps.cores} cores, ${caps.threads} threads; SIMD levels built: ${caps.simdCompiled.join(", ")}; best here: ${caps.simdDetected}\n`);

/** Median time of `fn` in milliseconds. */
function time(fn: () => void, reps = 15): number {
  for (let i = 0; i < 3; i++) fn();
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = Bun.nanoseconds();
    fn();
    t.push((Bun.nanoseconds() - t0) / 1e6);
  }
  return t.sort((a, b) => a - b)[reps >> 1]!;
}

const a = bn.randn([N], { seed: 1 });
const b = bn.randn([N], { seed: 2 });
const m = bn.randn([1024, 1024], { seed: 3 });
const ja = Float32Array.from(a.data as Float32Array);
const jb = Float32Array.from(b.data as Float32Array);
const jc = new Float32Array(N);

type Case = { name: string; lib: () => bn.Tensor; js: () => void };
const reduceOps = bn as unknown as Record<string, ((t: bn.Tensor, o?: object) => bn.Tensor) | undefined>;
const cases: Case[] = [
  { name: "add 1M f32", lib: () => bn.add(a, b), js: () => { for (let i = 0; i < N; i++) jc[i] = ja[i]! + jb[i]!; } },
  { name: "mul 1M f32", lib: () => bn.mul(a, b), js: () => { for (let i = 0; i < N; i++) jc[i] = ja[i]! * jb[i]!; } },
  { name: "exp 1M f32", lib: () => bn.exp(a), js: () => { for (let i = 0; i < N; i++) jc[i] = Math.exp(ja[i]!); } },
  { name: "tanh 1M f32", lib: () => bn.tanh(a), js: () => { for (let i = 0; i < N; i++) jc[i] = Math.tanh(ja[i]!); } },
  { name: "gelu 1M f32", lib: () => bn.gelu(a, { approximate: "tanh" }), js: () => { for (let i = 0; i < N; i++) { const x = ja[i]!; jc[i] = 0.5 * x * (1 + Math.tanh(0.7978845608 * (x + 0.044715 * x * x * x))); } } },
];
if (reduceOps.sum) {
  cases.push({ name: "sum 1M f32", lib: () => reduceOps.sum!(a), js: () => { let s = 0; for (let i = 0; i < N; i++) s += ja[i]!; jc[0] = s; } });
}
if (reduceOps.softmax) {
  const jm = Float32Array.from(m.data as Float32Array);
  const jo = new Float32Array(jm.length);
  cases.push({
    name: "softmax [1024,1024]",
    lib: () => reduceOps.softmax!(m),
    js: () => {
      for (let r = 0; r < 1024; r++) {
        const o = r * 1024;
        let mx = -Infinity;
        for (let i = 0; i < 1024; i++) mx = Math.max(mx, jm[o + i]!);
        let s = 0;
        for (let i = 0; i < 1024; i++) s += jo[o + i] = Math.exp(jm[o + i]! - mx);
        for (let i = 0; i < 1024; i++) jo[o + i]! /= s;
      }
    },
  });
}

const levels = caps.simdCompiled.filter((l) => {
  try {
    bn.setSimdLevel(l);
    return true;
  } catch {
    return false;
  }
});
bn.setSimdLevel(caps.simdDetected);

const header = ["operation", "plain JS", ...levels.map((l) => `${l}`), "best vs JS"];
const lines: string[][] = [];
for (const c of cases) {
  const js = time(c.js);
  const per: number[] = [];
  for (const l of levels) {
    bn.setSimdLevel(l);
    per.push(time(() => c.lib().dispose()));
  }
  bn.setSimdLevel(caps.simdDetected);
  const best = Math.min(...per);
  lines.push([c.name, `${js.toFixed(3)} ms`, ...per.map((t) => `${t.toFixed(3)} ms`), `${(js / best).toFixed(1)}x`]);
}
const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
const fmt = (cells: string[]) => "| " + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ") + " |";
console.log(fmt(header));
console.log("|" + widths.map((w, i) => (i === 0 ? "-".repeat(w + 2) : "-".repeat(w + 1) + ":")).join("|") + "|");
for (const l of lines) console.log(fmt(l));
console.log("\n(median of 15 runs each; the library's numbers include allocating and freeing the result)");
