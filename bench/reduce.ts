// Reductions and row-wise ops (CPU math issue): sum of 1M f32, sum over each axis of a matrix,
// softmax and layerNorm of [1024, 1024], with a plain-JS loop and NumPy in the same run.
import { bench, group } from "mitata";
import * as bn from "../src/index.ts";
import { gbps, header, numpyPeer, printTable, runAll } from "./util.ts";

const caps = bn.deviceCapabilities();
console.log(header(caps), `· ${caps.threads} threads`);

const N = 1 << 20;
const a = bn.randn([N], { seed: 1 });
const m = bn.randn([1024, 1024], { seed: 3 });
const ja = Float32Array.from(a.data as Float32Array);

group("sum", () => {
  bench("plain JS loop: sum of 1M f32", () => {
    let s = 0;
    for (let i = 0; i < N; i++) s += ja[i]!;
    return s;
  });
  bench("bn.sum(a) 1M f32", () => {
    const s = bn.sum(a);
    s.dispose();
    return s;
  });
  bench("bn.sum(m, { axis: 0 }) [1024,1024]", () => {
    const s = bn.sum(m, { axis: 0 });
    s.dispose();
    return s;
  });
  bench("bn.sum(m, { axis: 1 }) [1024,1024]", () => {
    const s = bn.sum(m, { axis: 1 });
    s.dispose();
    return s;
  });
});

group("rows of [1024, 1024]", () => {
  bench("bn.softmax(m)", () => {
    const s = bn.softmax(m);
    s.dispose();
    return s;
  });
  bench("bn.layerNorm(m)", () => {
    const s = bn.layerNorm(m);
    s.dispose();
    return s;
  });
});

const rows = await runAll();
const setupA = `a = np.random.default_rng(1).standard_normal(${N}, dtype=np.float32)`;
const setupM = "m = np.random.default_rng(3).standard_normal((1024, 1024), dtype=np.float32)";
const np = numpyPeer([
  { name: "np: a.sum()", setup: setupA, stmt: "a.sum()" },
  { name: "np: m.sum(axis=0)", setup: setupM, stmt: "m.sum(axis=0)" },
  { name: "np: m.sum(axis=1)", setup: setupM, stmt: "m.sum(axis=1)" },
  { name: "np: softmax(m)", setup: setupM, stmt: "e = np.exp(m - m.max(axis=-1, keepdims=True)); e / e.sum(axis=-1, keepdims=True)" },
  { name: "np: layerNorm(m)", setup: setupM, stmt: "mu = m.mean(axis=-1, keepdims=True); (m - mu) / np.sqrt(m.var(axis=-1, keepdims=True) + 1e-5)" },
]);
if (np.error) console.log(`\nnumpy peer: not run (${np.error})`);
for (const [name, s] of Object.entries(np.times)) rows.push({ name, p50: s * 1e9, avg: s * 1e9 });
printTable(`reductions (median; numpy ${np.version ?? "absent"})`, rows, {
  "bn.sum(a) 1M f32": "np: a.sum()",
  "bn.sum(m, { axis: 0 }) [1024,1024]": "np: m.sum(axis=0)",
  "bn.sum(m, { axis: 1 }) [1024,1024]": "np: m.sum(axis=1)",
  "bn.softmax(m)": "np: softmax(m)",
  "bn.layerNorm(m)": "np: layerNorm(m)",
});
const by = new Map(rows.map((r) => [r.name, r.p50]));
const s = by.get("bn.sum(a) 1M f32")!;
console.log(`\nbn.sum reads ${gbps(4 * N, s).toFixed(1)} GB/s; ${by.has("np: a.sum()") ? `${(by.get("np: a.sum()")! / s).toFixed(2)}x numpy; ` : ""}${(by.get("plain JS loop: sum of 1M f32")! / s).toFixed(1)}x plain JS`);
