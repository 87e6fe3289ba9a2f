// Elementwise throughput (CPU math issue): add/mul of 1M f32, broadcast add, exp, with a plain-JS
// TypedArray loop, a memcpy-style copy (the bandwidth ceiling) and NumPy in the same run.
import { bench, do_not_optimize, group } from "mitata";
import * as bn from "../src/index.ts";
import { gbps, header, numpyPeer, printTable, runAll } from "./util.ts";

const caps = bn.deviceCapabilities();
console.log(header(caps), `· ${caps.threads} threads`);

const N = 1 << 20;
const a = bn.randn([N], { seed: 1 });
const b = bn.randn([N], { seed: 2 });
const m = bn.randn([1024, 1024], { seed: 3 });
const row = bn.randn([1024], { seed: 4 });
const ja = Float32Array.from(a.data as Float32Array);
const jb = Float32Array.from(b.data as Float32Array);
const jc = new Float32Array(N);

group("1M f32", () => {
  bench("copy: Float32Array.set (memcpy ceiling)", () => {
    jc.set(ja);
    return jc;
  });
  bench("plain JS loop: c[i] = a[i] + b[i]", () => {
    for (let i = 0; i < N; i++) jc[i] = ja[i]! + jb[i]!;
    return jc;
  });
  bench("bn.add(a, b)", () => {
    const c = bn.add(a, b);
    c.dispose();
    return c;
  });
  bench("bn.mul(a, b)", () => {
    const c = bn.mul(a, b);
    c.dispose();
    return c;
  });
  bench("a.add_(b) in place", () => do_not_optimize(a.add_(b).sub_(b)));
  bench("plain JS loop: Math.exp", () => {
    for (let i = 0; i < N; i++) jc[i] = Math.exp(ja[i]!);
    return jc;
  });
  bench("bn.exp(a)", () => {
    const c = bn.exp(a);
    c.dispose();
    return c;
  });
  bench("bn.tanh(a)", () => {
    const c = bn.tanh(a);
    c.dispose();
    return c;
  });
  bench("bn.gelu(a)", () => {
    const c = bn.gelu(a);
    c.dispose();
    return c;
  });
});

group("broadcast [1024, 1024] + [1024]", () => {
  bench("bn.add(m, row)", () => {
    const c = bn.add(m, row);
    c.dispose();
    return c;
  });
  bench("bn.add(m.T, row) (strided)", () => {
    const t = m.T;
    const c = bn.add(t, row);
    c.dispose();
    t.dispose();
    return c;
  });
});

const rows = await runAll();
const np = numpyPeer([
  { name: "np: a + b", setup: `a = np.random.default_rng(1).standard_normal(${N}, dtype=np.float32); b = np.random.default_rng(2).standard_normal(${N}, dtype=np.float32)`, stmt: "a + b" },
  { name: "np: a * b", setup: `a = np.random.default_rng(1).standard_normal(${N}, dtype=np.float32); b = np.random.default_rng(2).standard_normal(${N}, dtype=np.float32)`, stmt: "a * b" },
  { name: "np: np.exp(a)", setup: `a = np.random.default_rng(1).standard_normal(${N}, dtype=np.float32)`, stmt: "np.exp(a)" },
  { name: "np: np.tanh(a)", setup: `a = np.random.default_rng(1).standard_normal(${N}, dtype=np.float32)`, stmt: "np.tanh(a)" },
  { name: "np: m + row", setup: "m = np.random.default_rng(3).standard_normal((1024, 1024), dtype=np.float32); r = np.random.default_rng(4).standard_normal(1024, dtype=np.float32)", stmt: "m + r" },
  { name: "np: m.T + row", setup: "m = np.random.default_rng(3).standard_normal((1024, 1024), dtype=np.float32); r = np.random.default_rng(4).standard_normal(1024, dtype=np.float32)", stmt: "m.T + r" },
]);
if (np.error) console.log(`\nnumpy peer: not run (${np.error})`);
for (const [name, s] of Object.entries(np.times)) rows.push({ name, p50: s * 1e9, avg: s * 1e9 });
printTable(`elementwise (median; numpy ${np.version ?? "absent"})`, rows, {
  "plain JS loop: c[i] = a[i] + b[i]": "copy: Float32Array.set (memcpy ceiling)",
  "bn.add(a, b)": "np: a + b",
  "bn.mul(a, b)": "np: a * b",
  "bn.exp(a)": "np: np.exp(a)",
  "bn.tanh(a)": "np: np.tanh(a)",
  "bn.add(m, row)": "np: m + row",
  "bn.add(m.T, row) (strided)": "np: m.T + row",
});
const by = new Map(rows.map((r) => [r.name, r.p50]));
const bytesAdd = 3 * 4 * N;
const copy = by.get("copy: Float32Array.set (memcpy ceiling)")!;
const add = by.get("bn.add(a, b)")!;
console.log(`\nbandwidth: copy ${gbps(2 * 4 * N, copy).toFixed(1)} GB/s (read+write); bn.add ${gbps(bytesAdd, add).toFixed(1)} GB/s (2 reads + 1 write) = ${((gbps(bytesAdd, add) / gbps(2 * 4 * N, copy)) * 100).toFixed(0)}% of copy`);
console.log(`bn.add vs plain JS: ${(by.get("plain JS loop: c[i] = a[i] + b[i]")! / add).toFixed(1)}x faster${by.has("np: a + b") ? `; vs numpy: ${(by.get("np: a + b")! / add).toFixed(2)}x` : ""}`);
