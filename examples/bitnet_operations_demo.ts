// BitNet b1.58 operations in bitnet-bun. Run it with `bun run demo:bitnet`, or
// `bun examples/bitnet_operations_demo.ts`.
//
// 1. Ternary weights: quantize a float layer with bn.quant.ternary in each packing ("i2",
//    "tq2_0", "tq1_0") and compare sizes with f32.
// 2. Quantization error: of the dequantized weights, and of a ternaryMatmul output against the
//    f32 product.
// 3. Speed: ternaryMatmul against the f32 matmul at batch 1.
// 4. int8 activations: bn.quant.int8 round trip.
// 5. A small network of bn.nn.BitLinear layers.
// 6. GGUF: write tq2_0 weights with bn.gguf.write, read them back, compare the bytes.
//
// Everything the demo creates is released with `using` (or an explicit dispose), and the end
// checks that no tensor is left alive.
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as bn from "../src/index.ts";

const caps = bn.deviceCapabilities();
console.log(`bitnet-bun on ${caps.platform}-${caps.arch}: ${caps.cores} cores, ${caps.threads} threads, SIMD ${caps.simd}, engine: ${caps.library.source}\n`);
const live0 = bn.memory.stats().liveTensors;

const FORMATS = ["i2", "tq2_0", "tq1_0"] as const;
const OUT = 1024;
const IN = 4096;

/** ‖a − b‖_F / ‖b‖_F, a plain number (temporaries released). */
function relErr(a: bn.Tensor, b: bn.Tensor): number {
  using d = bn.sub(a, b);
  using nd = bn.linalg.norm(d);
  using nb = bn.linalg.norm(b);
  return Number(nd.item()) / Number(nb.item());
}

/** Median wall time in µs of `reps` calls of `f` (after one warm-up call). */
function medianUs(reps: number, f: () => bn.Tensor): number {
  f().dispose();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const y = f();
    times.push((performance.now() - t0) * 1e3);
    y.dispose();
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(reps / 2)]!;
}

main();
bn.memory.collect(); // the GGUF check read packed bytes through .data arrays, which the collector frees
// Every tensor of main() was released when its `using` declarations went out of scope.
console.log(`\nlive tensors after the demo: ${bn.memory.stats().liveTensors - live0} (all released)`);

function main(): void {
  // A float "layer" [out, in] (the layout of a linear layer's weight) and a batch of inputs.
  using w = bn.randn([OUT, IN], { seed: 1 });
  using xBatch = bn.randn([8, IN], { seed: 2 });
  using x1 = bn.randn([1, IN], { seed: 3 });
  using wT = w.T; // a view (no copy): matmul reads the transposed layout in place

  // ---- 1. ternary weights: sizes --------------------------------------------------------------------
  console.log(`== 1. ternary weights of a ${OUT}×${IN} layer (absmean, one scale per tensor) ==`);
  // bn.quant.ternary: scale = mean(|w|), t = clamp(round(w / scale), -1, 1), packed at 2 bits a weight
  // (tq1_0: five weights a byte, 1.6875 bits with its scales).
  using qi2 = bn.quant.ternary(w, { format: "i2" });
  using qtq2 = bn.quant.ternary(w, { format: "tq2_0" });
  using qtq1 = bn.quant.ternary(w, { format: "tq1_0" });
  const q = { i2: qi2, tq2_0: qtq2, tq1_0: qtq1 };
  const f32Bytes = w.nbytes;
  console.log(`${"f32".padEnd(6)} ${String(f32Bytes).padStart(9)} bytes  32.0000 bits/weight`);
  for (const f of FORMATS) {
    console.log(`${f.padEnd(6)} ${String(q[f].bytes).padStart(9)} bytes  ${q[f].bitsPerWeight.toFixed(4)} bits/weight  (${(f32Bytes / q[f].bytes).toFixed(2)}x smaller)`);
  }
  {
    using t = qi2.unpack(); // the ternary values themselves, i8 in {-1, 0, +1}
    using zeroMask = bn.eq(t, 0);
    using zeroF = zeroMask.astype("f32");
    using zeroCount = zeroF.sum();
    console.log(`i2 scale = ${Number(qi2.scale.item()).toFixed(4)}; ${((100 * Number(zeroCount.item())) / t.size).toFixed(1)}% of the weights are 0`);
  }

  // ---- 2. quantization error ------------------------------------------------------------------------
  console.log("\n== 2. quantization error (relative Frobenius) ==");
  // Random Gaussian weights were not trained for ternary values, so the error is large: BitNet
  // b1.58 trains with the quantizer in the loop, and its weights are made to be ternary.
  using yRef = bn.matmul(xBatch, wT); // the f32 product x @ wᵀ, [8, 1024]
  for (const f of FORMATS) {
    using deq = q[f].dequantize();
    using y = bn.quant.ternaryMatmul(xBatch, q[f]); // int8 activations × ternary codes, never dequantized
    using deqT = deq.T;
    using yDeq = bn.matmul(xBatch, deqT);
    console.log(
      `${f.padEnd(6)} weights ${relErr(deq, w).toFixed(4)}   ternaryMatmul vs f32 product ${relErr(y, yRef).toFixed(4)}` +
        `   (vs x @ dequantized wᵀ: ${relErr(y, yDeq).toExponential(2)}, the int8 activations' share)`,
    );
  }

  // ---- 3. speed -------------------------------------------------------------------------------------
  console.log(`\n== 3. speed at batch 1: x[1, ${IN}] @ wᵀ (median of 50) ==`);
  const tF32 = medianUs(50, () => bn.matmul(x1, wT));
  console.log(`f32 bn.matmul        ${tF32.toFixed(1).padStart(8)} µs`);
  for (const f of FORMATS) {
    const t = medianUs(50, () => bn.quant.ternaryMatmul(x1, q[f]));
    console.log(`ternaryMatmul ${f.padEnd(6)} ${t.toFixed(1).padStart(8)} µs  (${(tF32 / t).toFixed(2)}x the f32 speed)`);
  }

  // ---- 4. int8 activations --------------------------------------------------------------------------
  console.log("\n== 4. int8 activations (absmax, one scale per token) ==");
  {
    // BitLinear quantizes each token's activations as q = round(x · 127 / max|x|) before the
    // integer product; .scale is that multiplier, and dequantize() divides by it.
    using qa = bn.quant.int8(xBatch, { granularity: "token" });
    using back = qa.dequantize();
    using diff = bn.sub(back, xBatch);
    using err = bn.abs(diff);
    using maxErr = err.max();
    using minScale = qa.scale.min();
    console.log(`${String(qa)}, values ${qa.values.dtype}, scale shape [${qa.scale.shape.join(", ")}]`);
    console.log(`round trip: relative error ${relErr(back, xBatch).toExponential(2)}, max |error| ${Number(maxErr.item()).toExponential(2)} (bound 0.5 / scale = ${(0.5 / Number(minScale.item())).toExponential(2)})`);
  }

  // ---- 5. a BitLinear network -----------------------------------------------------------------------
  console.log("\n== 5. a stack of BitLinear layers: 256 → 512 → 512 → 64, relu between ==");
  {
    // Each BitLinear: RMSNorm → int8 activations per token → ternary weights → rescale (+ bias).
    using l1 = new bn.nn.BitLinear(256, 512, { seed: 10 });
    using l2 = new bn.nn.BitLinear(512, 512, { seed: 11 });
    using l3 = new bn.nn.BitLinear(512, 64, { seed: 12, bias: true });
    for (const l of [l1, l2, l3]) console.log(String(l));
    using input = bn.randn([32, 256], { seed: 13 });
    using h1 = l1.forward(input);
    using a1 = bn.relu(h1);
    using h2 = l2.forward(a1);
    using a2 = bn.relu(h2);
    using out = l3.forward(a2);
    using mu = out.mean();
    using sd = out.std();
    using lo = out.min();
    using hi = out.max();
    const n = (t: bn.Tensor) => Number(t.item()).toFixed(4);
    console.log(`input [${input.shape}] → output [${out.shape}] ${out.dtype}: mean ${n(mu)}, std ${n(sd)}, min ${n(lo)}, max ${n(hi)}`);
    const packed = [l1, l2, l3].reduce((s, l) => s + l.quantized.bytes, 0);
    const master = [l1, l2, l3].reduce((s, l) => s + l.weight.nbytes, 0);
    console.log(`ternary weights in use: ${packed} bytes (f32 master weights kept for training: ${master} bytes)`);
  }

  // ---- 6. GGUF round trip ---------------------------------------------------------------------------
  console.log("\n== 6. GGUF: write tq2_0 weights, read them back ==");
  {
    const dir = mkdtempSync(join(tmpdir(), "bitnet-demo-"));
    try {
      const path = join(dir, "layer.gguf");
      // GGUF stores TQ2_0 blocks as they are: our tq2_0 codes are ggml's bytes, unchanged.
      bn.gguf.write(path, { metadata: { "general.architecture": "bitnet", "general.name": "demo layer" }, tensors: { "blk.0.ffn_up.weight": qtq2 } });
      const file = bn.gguf.read(path);
      try {
        const back = file.tensors["blk.0.ffn_up.weight"];
        if (!(back instanceof bn.TernaryTensor)) throw new Error("expected a TernaryTensor back");
        const a = qtq2.packed.data as Uint8Array;
        const b = back.packed.data as Uint8Array;
        const same = Buffer.compare(a, b) === 0;
        console.log(`wrote ${statSync(path).size} bytes (GGUF v${file.version}, metadata ${JSON.stringify(file.metadata["general.name"])})`);
        console.log(`read back: ${String(back)}; packed bytes identical: ${same}`);
      } finally {
        for (const t of Object.values(file.tensors)) t.dispose();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
