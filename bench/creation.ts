// Creation and view costs (issue: foundation). Peer: plain TypedArray allocation in the same run.
import { bench, do_not_optimize, group } from "mitata";
import * as bn from "../src/index.ts";
import { header, printTable, runAll } from "./util.ts";

console.log(header(bn.deviceCapabilities()));

group("small tensor: create + dispose", () => {
  bench("new Float32Array(4)", () => do_not_optimize(new Float32Array(4)));
  bench("bn.empty([4]) + dispose", () => {
    const t = bn.empty([4]);
    t.dispose();
    return t;
  });
  bench("bn.zeros([4]) + dispose", () => {
    const t = bn.zeros([4]);
    t.dispose();
    return t;
  });
  bench("bn.tensor([1,2,3,4]) + dispose", () => {
    const t = bn.tensor([1, 2, 3, 4]);
    t.dispose();
    return t;
  });
});

group("large tensor: zeros [1024, 1024] f32", () => {
  bench("new Float32Array(1 << 20)", () => do_not_optimize(new Float32Array(1 << 20)));
  bench("bn.zeros([1024, 1024]) + dispose", () => {
    const t = bn.zeros([1024, 1024]);
    t.dispose();
    return t;
  });
});

const base = bn.randn([64, 128], { seed: 0 });
group("views of [64, 128] (no data touched)", () => {
  bench("Float32Array.subarray (peer)", () => do_not_optimize(new Float32Array(8).subarray(2, 6)));
  bench("reshape([128, 64]) + dispose", () => {
    const v = base.reshape([128, 64]);
    v.dispose();
    return v;
  });
  bench("transpose() + dispose", () => {
    const v = base.transpose();
    v.dispose();
    return v;
  });
  bench("slice([[8, 40, 2], [null, null, -1]]) + dispose", () => {
    const v = base.slice([[8, 40, 2], [null, null, -1]]);
    v.dispose();
    return v;
  });
});

const before = bn.memory.stats();
const rows = await runAll();
const after = bn.memory.stats();
printTable("creation (median of mitata samples)", rows, {
  "bn.empty([4]) + dispose": "new Float32Array(4)",
  "bn.zeros([4]) + dispose": "new Float32Array(4)",
  "bn.tensor([1,2,3,4]) + dispose": "new Float32Array(4)",
  "bn.zeros([1024, 1024]) + dispose": "new Float32Array(1 << 20)",
});
console.log(`\nlive tensors before/after the run: ${before.liveTensors} / ${after.liveTensors}; pool hits ${after.poolHits - before.poolHits}, misses ${after.poolMisses - before.poolMisses}`);
