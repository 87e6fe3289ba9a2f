// Quantization-aware training of a BitNet b1.58 MLP, in Bun: `bun examples/train_bitnet_mlp.ts`.
//
// The task: 256-dimensional Gaussian inputs labelled by a fixed random "teacher" network (10
// classes), a fresh batch each step. Two students with the same shape learn it with AdamW: one of float `Linear` layers,
// one of `BitLinear` layers (RMSNorm → int8 activations → ternary weights, trained with
// straight-through gradients on float master weights). Then: held-out accuracy of both (the
// ternary one through the packed ternary kernel), their sizes, and the ternary weights saved to a
// GGUF file (TQ2_0, byte-compatible with llama.cpp) and loaded back into an inference model.
//
// Options (environment): STEPS (default 800), LR (peak learning rate, default 5e-3), SEED
// (default 1), OUT (where the GGUF file goes; default a temp dir).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as bn from "../src/index.ts";

const STEPS = Number(process.env.STEPS ?? 800);
const LR = Number(process.env.LR ?? 5e-3);
const SEED = Number(process.env.SEED ?? 1);
const DIM = 256;
const HIDDEN = 256;
const CLASSES = 10;
const BATCH = 64;

// The teacher: 256 → 16 (tanh) → 10, fixed random weights.
const TH = 16;
const teacher1 = bn.randn([DIM, TH], { seed: 9001, std: 1 / Math.sqrt(DIM) });
const teacher2 = bn.randn([TH, CLASSES], { seed: 9002, std: 1 / Math.sqrt(TH) });

/** `n` inputs and the teacher's labels (i32). */
function batch(n: number, seed: number): { x: bn.Tensor; y: bn.Tensor } {
  return bn.noGrad(() => {
    const x = bn.randn([n, DIM], { seed });
    using h0 = bn.matmul(x, teacher1);
    using h = h0.tanh();
    using logits = bn.matmul(h, teacher2);
    return { x, y: logits.argmax({ axis: -1 }) };
  });
}

const floatModel = () =>
  new bn.nn.Sequential(new bn.nn.Linear(DIM, HIDDEN, { seed: SEED }), bn.relu, new bn.nn.Linear(HIDDEN, HIDDEN, { seed: SEED + 1 }), bn.relu, new bn.nn.Linear(HIDDEN, CLASSES, { seed: SEED + 2 }));
const bitModel = () =>
  new bn.nn.Sequential(
    new bn.nn.BitLinear(DIM, HIDDEN, { seed: SEED, format: "tq2_0" }),
    bn.relu,
    new bn.nn.BitLinear(HIDDEN, HIDDEN, { seed: SEED + 1, format: "tq2_0" }),
    bn.relu,
    new bn.nn.BitLinear(HIDDEN, CLASSES, { seed: SEED + 2, format: "tq2_0" }),
  );

function accuracy(model: bn.Module, x: bn.Tensor, y: bn.Tensor): number {
  model.eval();
  try {
    return bn.noGrad(() => {
      using logits = model.forward(x);
      using pred = logits.argmax({ axis: -1 });
      using hit = bn.eq(pred, y);
      using m = hit.mean();
      return m.item() as number;
    });
  } finally {
    model.train();
  }
}

function bar(done: number, total: number, width = 24): string {
  const k = Math.round((done / total) * width);
  return `[${"#".repeat(k)}${".".repeat(width - k)}]`;
}

/** Trains with AdamW and a cosine learning-rate schedule, drawing a progress bar. */
function train(name: string, model: bn.Module, lr: number): void {
  using opt = new bn.optim.AdamW(model.parameters(), { lr, weightDecay: 0.01 });
  const tty = process.stdout.isTTY;
  const t0 = performance.now();
  let lossAvg = 0;
  let accAvg = 0;
  for (let step = 1; step <= STEPS; step++) {
    opt.lr = lr * 0.5 * (1 + Math.cos((Math.PI * (step - 1)) / STEPS));
    const { x: xb, y: yb } = batch(BATCH, SEED * 1_000_000 + step);
    opt.zeroGrad();
    using logits = model.forward(xb);
    using loss = bn.nn.crossEntropy(logits, yb);
    loss.backward();
    opt.step();
    const acc = bn.noGrad(() => {
      using p = logits.argmax({ axis: -1 });
      using hit = bn.eq(p, yb);
      using m = hit.mean();
      return m.item() as number;
    });
    lossAvg = step === 1 ? (loss.item() as number) : 0.95 * lossAvg + 0.05 * (loss.item() as number);
    accAvg = step === 1 ? acc : 0.95 * accAvg + 0.05 * acc;
    xb.dispose();
    yb.dispose();
    if (tty || step % 100 === 0 || step === STEPS) {
      const sps = step / ((performance.now() - t0) / 1000);
      const line = `${name.padEnd(10)} ${bar(step, STEPS)} step ${String(step).padStart(4)}/${STEPS}  loss ${lossAvg.toFixed(3)}  acc ${(accAvg * 100).toFixed(1)}%  ${sps.toFixed(0)} steps/s`;
      process.stdout.write(tty ? `\r${line}` : `${line}\n`);
    }
  }
  if (tty) process.stdout.write("\n");
}

const testSet = batch(2048, 7);
console.log(`teacher task: ${DIM}-d inputs, ${CLASSES} classes; students ${DIM} → ${HIDDEN} → ${HIDDEN} → ${CLASSES}, batch ${BATCH}, ${STEPS} steps\n`);

using fm = floatModel();
train("float", fm, LR);
using tm = bitModel();
train("ternary", tm, LR);

const layers = tm.layers.filter((l): l is bn.BitLinear => l instanceof bn.BitLinear);
const floatBytes = fm.numParameters() * 4;
const ternaryBytes = layers.reduce((a, l) => a + l.quantized.bytes + (l.normWeight?.nbytes ?? 0), 0);
const accF = accuracy(fm, testSet.x, testSet.y);
const accT = accuracy(tm, testSet.x, testSet.y);
console.log(`\n| model | held-out accuracy | weights | bytes |`);
console.log(`| --- | ---: | ---: | ---: |`);
console.log(`| float (Linear, f32) | ${(accF * 100).toFixed(1)}% | ${fm.numParameters()} | ${(floatBytes / 1024).toFixed(1)} KiB |`);
console.log(`| ternary (BitLinear, TQ2_0 + f32 norms) | ${(accT * 100).toFixed(1)}% | ${tm.numParameters()} | ${(ternaryBytes / 1024).toFixed(1)} KiB (${(floatBytes / ternaryBytes).toFixed(1)}x smaller) |`);

// Save the ternary weights (and the norms' scales) to GGUF, then load an inference model from it.
const out = process.env.OUT ?? mkdtempSync(join(tmpdir(), "bitnet-mlp-"));
const path = join(out, "bitnet_mlp.gguf");
const tensors: Record<string, bn.Tensor | bn.TernaryTensor> = {};
layers.forEach((l, i) => {
  tensors[`blk.${i}.weight`] = l.quantized;
  tensors[`blk.${i}.norm`] = l.normWeight!;
});
bn.gguf.write(path, { metadata: { "general.architecture": "bitnet-mlp", "general.name": "train_bitnet_mlp example" }, tensors });
const file = bn.gguf.read(path);
const loaded = layers.map((_, i) => {
  const l = bn.nn.BitLinear.fromTernary(file.tensors[`blk.${i}.weight`] as bn.TernaryTensor);
  l.loadStateDict({ normWeight: file.tensors[`blk.${i}.norm`] as bn.Tensor }, { strict: false });
  return l;
});
for (const t of Object.values(file.tensors)) t.dispose();
using inference = new bn.nn.Sequential(loaded[0]!, bn.relu, loaded[1]!, bn.relu, loaded[2]!).eval();
const accL = accuracy(inference, testSet.x, testSet.y);
console.log(`\nsaved ${path} (${(Bun.file(path).size / 1024).toFixed(1)} KiB); reloaded inference model: ${(accL * 100).toFixed(1)}% held-out accuracy`);
for (const t of [testSet.x, testSet.y, teacher1, teacher2]) t.dispose();
