// bn.quant.ternary (BitNet b1.58 absmean) is byte-compatible with ggml: its "tq2_0" / "tq1_0"
// TernaryTensors hold exactly the blocks that the gguf package's quantizer (gguf.quants, PyPI
// gguf 0.17.1) writes for the same weights. Fixture and its documentation:
// test/fixtures/gen_ternary_quant.py (-> test/fixtures/ternary_quant.json).
//
// How the reference is made: NumPy computes the absmean scale and the codes q in f32; the weights
// q · f16(scale) then go through gguf.quants.quantize, whose own rule (d = max|x| of a block)
// recovers exactly q and d = f16(scale). One documented difference: in a block whose codes are
// all zero, ggml writes d = 0 while we write the group's scale (dequantized values are 0 either
// way). The fixture lists those blocks (`zero_blocks`); there we compare the codes with gguf's
// bytes and d with f16 of NumPy's scale. Every other byte must be equal.
//
// NumPy's f32 mean sums pairwise and ours may round differently, so our scale must be within
// 2 ulp of NumPy's (and within 1 ulp of the float64 mean rounded to f32); the generator checked
// that no code or f16 scale depends on those last ulps.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as bn from "../src/index.ts";
import { tempDirs } from "./helpers.ts";

type Granularity = "tensor" | "channel" | { group: number };
interface Variant {
  granularity: Granularity;
  scale: number[];
  scale_exact: number[];
  scale_f16: number[];
  q: string;
  dequantized: string;
  tq2_0: string;
  tq1_0: string;
  zero_blocks: number[];
}
interface Case {
  name: string;
  shape: number[];
  weights: string;
  variants: Variant[];
}
const fixture = JSON.parse(readFileSync(join(import.meta.dir, "fixtures", "ternary_quant.json"), "utf8")) as { cases: Case[] };
const tmp = tempDirs()("tqgguf-");

/** base64 → bytes in a fresh, aligned ArrayBuffer. */
const bytes = (s: string) => new Uint8Array(Buffer.from(s, "base64"));
const f32 = (s: string) => new Float32Array(bytes(s).buffer);
const u32 = (x: Float32Array) => new Uint32Array(x.buffer, x.byteOffset, x.length);
const BLOCK_BYTES = { tq2_0: 66, tq1_0: 54 } as const;
const FORMATS = ["tq2_0", "tq1_0"] as const;
const gname = (g: Granularity) => (typeof g === "string" ? g : `group ${g.group}`);

/** Distance in ulps between two non-negative finite f32 values. */
function ulps(a: number, b: number): number {
  const bits = new Uint32Array(new Float32Array([a, b]).buffer);
  return Math.abs(bits[0]! - bits[1]!);
}

/** The index into the stored scales of flat block b (rows of nb blocks of 256). */
function scaleIndex(g: Granularity, b: number, nb: number, k: number): number {
  const row = Math.floor(b / nb);
  const j = b % nb;
  if (g === "tensor") return 0;
  if (g === "channel") return row;
  return row * (k / g.group) + Math.floor((j * 256) / g.group);
}

/** gguf's bytes, with d of the listed all-zero blocks replaced by f16(NumPy's scale): what we write. */
function expectedBytes(c: Case, v: Variant, format: "tq2_0" | "tq1_0"): Uint8Array {
  const want = bytes(v[format]);
  const bb = BLOCK_BYTES[format];
  const k = c.shape[c.shape.length - 1]!;
  const nb = k / 256;
  for (const b of v.zero_blocks) {
    const at = b * bb + bb - 2;
    expect(want[at]! | (want[at + 1]! << 8)).toBe(0); // ggml's d = 0 there
    // codes: every weight 0 (code 1): TQ2_0 bytes 0x55; TQ1_0 base-3 bytes 128 (5 digits), then 127 (qh, 4 digits)
    for (let i = 0; i < bb - 2; i++) expect(want[b * bb + i]).toBe(format === "tq2_0" ? 0x55 : i < 48 ? 128 : 127);
    const bits = v.scale_f16[scaleIndex(v.granularity, b, nb, k)]!;
    expect(bits).not.toBe(0);
    want[at] = bits & 0xff;
    want[at + 1] = bits >> 8;
  }
  return want;
}

const inUse = () => {
  bn.memory.collect();
  return bn.memory.stats().bytesInUse;
};

test("the fixture covers all-zero blocks, an all-zero row and f16-subnormal scales", () => {
  const z = fixture.cases.flatMap((c) => c.variants.map((v) => v.zero_blocks.length));
  expect(z.some((n) => n > 0)).toBe(true); // the documented d = 0 difference is exercised
  const outlier = fixture.cases[1]!;
  expect(outlier.variants[1]!.granularity).toBe("channel");
  expect(outlier.variants[1]!.scale[1]).toBe(0); // the zero row: d = 0 for ggml and for us
  const sub = fixture.cases[2]!.variants[0]!.scale[0]!;
  expect(sub).toBeLessThan(2 ** -14); // below f16's smallest normal
  expect(fixture.cases.length).toBeGreaterThanOrEqual(3);
});

for (const c of fixture.cases) {
  describe(c.name, () => {
    const w = f32(c.weights);
    for (const v of c.variants) {
      const g = v.granularity;
      const q = new Int8Array(bytes(v.q).buffer);
      const deq = f32(v.dequantized);

      test(`${gname(g)}: scale within 2 ulp of NumPy's (1 of the exact mean), codes equal NumPy's (i2)`, () => {
        using x = bn.tensor(w, { shape: c.shape });
        using t = bn.quant.ternary(x, { granularity: g });
        expect(t.format).toBe("i2");
        using s = t.scale.reshape([-1]);
        const ours = Array.from(s.data as Float32Array);
        expect(ours.length).toBe(v.scale.length);
        const d = ours.map((o, i) => ulps(o, v.scale[i]!));
        expect(Math.max(...d)).toBeLessThanOrEqual(2);
        // (NumPy's pairwise f32 sum is itself up to 2 ulp off here; ours is within 1 of the exact mean)
        expect(Math.max(...ours.map((o, i) => ulps(o, v.scale_exact[i]!)))).toBeLessThanOrEqual(1);
        using u = t.unpack();
        expect(u.shape).toEqual(c.shape);
        expect(Array.from(u.data as Int8Array)).toEqual(Array.from(q));
      });

      for (const format of FORMATS) {
        test(`${gname(g)} ${format}: packed bytes = gguf.quants.quantize, unpack = NumPy's q, dequantize = gguf.quants.dequantize`, () => {
          using x = bn.tensor(w, { shape: c.shape });
          using t = bn.quant.ternary(x, { format, granularity: g });
          expect(t.format).toBe(format);
          expect(t.shape).toEqual(c.shape);
          const want = expectedBytes(c, v, format);
          const got = t.packed.data as Uint8Array;
          expect(got.length).toBe(want.length);
          // every byte, gguf's exactly outside the listed all-zero blocks
          expect(Buffer.compare(Buffer.from(got), Buffer.from(want))).toBe(0);
          if (v.zero_blocks.length === 0) expect(Buffer.compare(Buffer.from(got), Buffer.from(bytes(v[format])))).toBe(0);
          using u = t.unpack();
          expect(Array.from(u.data as Int8Array)).toEqual(Array.from(q));
          using d = t.dequantize();
          expect(d.shape).toEqual(c.shape);
          expect(Array.from(u32(d.data as Float32Array))).toEqual(Array.from(u32(deq)));
          // i2 → tq gives the same bytes (the f32 scale rounded to f16 once)
          using i2 = bn.quant.ternary(x, { granularity: g });
          using conv = i2.toFormat(format);
          expect(Buffer.compare(Buffer.from(conv.packed.data as Uint8Array), Buffer.from(want))).toBe(0);
          // and the bytes travel through a GGUF file unchanged
          const p = join(tmp, `${format}.gguf`);
          bn.gguf.write(p, { metadata: {}, tensors: { w: t } });
          const f = bn.gguf.read(p);
          try {
            const r = f.tensors.w as bn.TernaryTensor;
            expect(r).toBeInstanceOf(bn.TernaryTensor);
            expect(r.format).toBe(format);
            expect(r.shape).toEqual(c.shape);
            expect(Buffer.compare(Buffer.from(r.packed.data as Uint8Array), Buffer.from(want))).toBe(0);
          } finally {
            for (const y of Object.values(f.tensors)) y.dispose();
          }
        });
      }
    }
  });
}

// (No `.data` here: a typed array keeps its block alive until it is collected, and the collector
// may still see one on the stack; the tests above read through `.data`.)
test("nothing leaks: quantize, unpack, dequantize, toFormat, scale, GGUF write and read", () => {
  const run = () => {
    for (const c of fixture.cases) {
      using x = bn.tensor(f32(c.weights), { shape: c.shape });
      for (const v of c.variants) {
        using i2 = bn.quant.ternary(x, { granularity: v.granularity });
        for (const format of FORMATS) {
          using t = bn.quant.ternary(x, { format, granularity: v.granularity });
          t.unpack().dispose();
          t.dequantize().dispose();
          expect(t.scale.shape).toEqual([...c.shape.slice(0, -1), c.shape[c.shape.length - 1]! / 256]);
          using conv = i2.toFormat(format);
          const p = join(tmp, "leak.gguf");
          bn.gguf.write(p, { metadata: {}, tensors: { t, conv } });
          const f = bn.gguf.read(p);
          expect((f.tensors.t as bn.TernaryTensor).packed.toArray()).toEqual(t.packed.toArray());
          for (const y of Object.values(f.tensors)) y.dispose();
        }
      }
    }
  };
  run(); // warm up (lazily made state, pools)
  const before = inUse();
  run();
  expect(inUse()).toBe(before);
});
