// ggml TQ2_0 / TQ1_0 blocks (src/quant/blocks.ts, zig/cpu/ternary_pack.zig) against fixtures made
// by the `gguf` package (test/fixtures/gen_ternary_blocks.py), at every SIMD level the CPU runs.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as bn from "../src/index.ts";
import { runnableLevels } from "./helpers.ts";
import { BLOCK_BYTES, type BlockFormat, bitsPerWeight, dequantizeBlocks, packBlocks, unpackBlocks } from "../src/quant/blocks.ts";

const dir = join(import.meta.dir, "fixtures", "ternary");
const raw = (name: string) => {
  const b = readFileSync(join(dir, name));
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength).slice();
};
const input = new Float32Array(raw("input.f32").buffer); // [2, 1024]
const ROWS = 2;
const K = 1024;
const FORMATS: BlockFormat[] = ["tq2_0", "tq1_0"];

/**
 * ggml's reference rule (quantize_row_tq*_ref), written independently in float64 with Math.fround
 * where ggml rounds to f32: d = max|x| over the block, id = f32(1/d) (0 when d = 0), t =
 * round-half-away-from-zero(f32(x * id)). Returns the ternary values and the f32 block scales.
 */
function ggmlTernary(x: Float32Array): { t: Int8Array; d: Float32Array } {
  const nb = x.length / 256;
  const t = new Int8Array(x.length);
  const d = new Float32Array(nb);
  for (let b = 0; b < nb; b++) {
    let amax = 0;
    for (let j = 0; j < 256; j++) amax = Math.max(amax, Math.abs(x[b * 256 + j]!));
    d[b] = amax;
    const id = amax === 0 ? 0 : Math.fround(1 / amax);
    for (let j = 0; j < 256; j++) {
      const v = Math.fround(x[b * 256 + j]! * id);
      t[b * 256 + j] = Math.sign(v) * Math.floor(Math.abs(v) + 0.5);
    }
  }
  return { t, d };
}

const ref = ggmlTernary(input);

const caps = bn.deviceCapabilities();
const LEVELS = runnableLevels();

test("bits per weight: tq2_0 = 66 B / 256 = 2.0625, tq1_0 = 54 B / 256 = 1.6875", () => {
  expect(BLOCK_BYTES).toEqual({ tq2_0: 66, tq1_0: 54 });
  expect(bitsPerWeight("tq2_0")).toBe(2.0625);
  expect(bitsPerWeight("tq1_0")).toBe(1.6875);
  // and the fixtures made by gguf have that size
  expect(raw("tq2_0.bin").length).toBe((ROWS * K * 2.0625) / 8);
  expect(raw("tq1_0.bin").length).toBe((ROWS * K * 1.6875) / 8);
});

test("the fixture exercises ties, zero blocks and every value", () => {
  // block 1 holds x = max/2 exactly (ties round away from zero) and values a hair either side
  expect(ref.t[256 + 1]).toBe(1);
  expect(ref.t[256 + 40]).toBe(-1);
  expect(ref.t[256 + 80]).toBe(0);
  expect(ref.t[256 + 120]).toBe(-1);
  expect(ref.d[2]).toBe(0);
  for (const v of [-1, 0, 1]) expect(ref.t.includes(v)).toBe(true);
});

for (const level of LEVELS) {
  describe(`SIMD ${level}`, () => {
    beforeAll(() => bn.setSimdLevel(level));
    afterAll(() => bn.setSimdLevel(caps.simdDetected));

    for (const f of FORMATS) {
      test(`${f}: packing ggml's ternary values and scales gives gguf's bytes`, () => {
        using values = bn.tensor(ref.t, { shape: [ROWS, K] });
        using scales = bn.tensor(ref.d, { shape: [ROWS, K / 256] });
        using blocks = packBlocks(values, scales, f);
        expect(blocks.dtype).toBe("u8");
        expect(blocks.shape).toEqual([ROWS, (K / 256) * BLOCK_BYTES[f]]);
        expect(Array.from(blocks.data as Uint8Array)).toEqual(Array.from(raw(`${f}.bin`)));
      });

      test(`${f}: unpack gives the ternary values and the f16 scales of gguf's blocks`, () => {
        using blocks = bn.tensor(raw(`${f}.bin`), { shape: [ROWS, (K / 256) * BLOCK_BYTES[f]] });
        const { values, scales } = unpackBlocks(blocks, f);
        using _v = values;
        using _s = scales;
        expect(values.shape).toEqual([ROWS, K]);
        expect(scales.shape).toEqual([ROWS, K / 256]);
        expect(Array.from(values.data as Int8Array)).toEqual(Array.from(ref.t));
        expect(Array.from(scales.data as Float32Array)).toEqual(Array.from(ref.d, (d) => Math.f16round(d)));
      });

      for (const dtype of ["f32", "f16", "bf16"] as const) {
        test(`${f}: dequantize to ${dtype} equals gguf.quants.dequantize (rounded to ${dtype})`, () => {
          using blocks = bn.tensor(raw(`${f}.bin`), { shape: [ROWS, (K / 256) * BLOCK_BYTES[f]] });
          using out = dequantizeBlocks(blocks, f, dtype);
          expect(out.dtype).toBe(dtype);
          expect(out.shape).toEqual([ROWS, K]);
          const want = new Float32Array(raw(`${f}_deq.f32`).buffer);
          using wantT = bn.tensor(want, { shape: [ROWS, K] });
          using wantD = wantT.astype(dtype); // the one rounding from f32, checked elsewhere
          const got = Array.from(out.data);
          const exp = Array.from(wantD.data);
          // NaN (0 · inf in block 6) compares equal to NaN; signs of zero must match too.
          expect(got.map((v) => (Number.isNaN(v) ? "NaN" : Object.is(v, -0) ? "-0" : v))).toEqual(
            exp.map((v) => (Number.isNaN(v) ? "NaN" : Object.is(v, -0) ? "-0" : v)),
          );
        });
      }
    }

    test("large inputs (threaded) round trip, both formats", () => {
      const n = 64 * 1024 * 4; // 1024 blocks: several job chunks
      const t = new Int8Array(n);
      let s = 12345;
      for (let i = 0; i < n; i++) {
        s = (s * 1103515245 + 12345) >>> 0;
        t[i] = (s >>> 16) % 3 - 1;
      }
      const d = Float32Array.from({ length: n / 256 }, (_, i) => 0.001 * (i + 1));
      for (const f of FORMATS) {
        using values = bn.tensor(t, { shape: [4, n / 4] });
        using scales = bn.tensor(d, { shape: [4, n / 1024] });
        using blocks = packBlocks(values, scales, f);
        const back = unpackBlocks(blocks, f);
        using bv = back.values;
        using bs = back.scales;
        expect(bv.shape).toEqual([4, n / 4]);
        const got = bv.data as Int8Array;
        let same = true;
        for (let i = 0; i < n; i++) if (got[i] !== t[i]) same = false;
        expect(same).toBe(true);
        expect(Array.from(bs.data as Float32Array)).toEqual(Array.from(d, (x) => Math.f16round(x)));
        using deq = dequantizeBlocks(blocks, f);
        const dd = deq.data as Float32Array;
        let ok = true;
        for (let i = 0; i < n; i++) if (dd[i] !== t[i]! * Math.f16round(d[Math.floor(i / 256)]!)) ok = false;
        expect(ok).toBe(true);
      }
    });
  });
}

describe("inputs", () => {
  test("views of any strides pack as their contents", () => {
    using values = bn.tensor(ref.t, { shape: [ROWS, K] });
    using scales = bn.tensor(ref.d, { shape: [ROWS, K / 256] });
    using vt = values.T.contiguous(); // [K, ROWS] in memory
    using back = vt.T; // a strided view with the original contents
    expect(back.isContiguous()).toBe(false);
    using a = packBlocks(back, scales, "tq2_0");
    expect(Array.from(a.data as Uint8Array)).toEqual(Array.from(raw("tq2_0.bin")));
  });

  test("f16 scales are accepted (rounded once to f16)", () => {
    using values = bn.tensor(ref.t, { shape: [ROWS, K] });
    using scales = bn.tensor(ref.d, { shape: [ROWS, K / 256], dtype: "f16" });
    using a = packBlocks(values, scales, "tq1_0");
    expect(Array.from(a.data as Uint8Array)).toEqual(Array.from(raw("tq1_0.bin")));
  });

  test("a last axis that is not a multiple of 256 is a ShapeError", () => {
    using values = bn.zeros([3, 300], { dtype: "i8" });
    using scales = bn.ones([3, 1]);
    expect(() => packBlocks(values, scales, "tq2_0")).toThrow(bn.ShapeError);
    expect(() => packBlocks(values, scales, "tq2_0")).toThrow(/multiple of 256/);
    using b = bn.zeros([2, 65], { dtype: "u8" });
    expect(() => unpackBlocks(b, "tq2_0")).toThrow(bn.ShapeError);
    expect(() => dequantizeBlocks(b, "tq1_0")).toThrow(/54 bytes/);
    using z = bn.zeros([], { dtype: "i8" });
    expect(() => packBlocks(z, scales, "tq2_0")).toThrow(bn.ShapeError);
  });

  test("wrong scale shapes, dtypes and formats", () => {
    using values = bn.zeros([2, 512], { dtype: "i8" });
    using s3 = bn.ones([2, 3]);
    expect(() => packBlocks(values, s3, "tq2_0")).toThrow(/\[2, 2\]/);
    using sok = bn.ones([2, 2]);
    using vf = bn.zeros([2, 512]);
    expect(() => packBlocks(vf, sok, "tq2_0")).toThrow(bn.DTypeError);
    using si = bn.ones([2, 2], { dtype: "i32" });
    expect(() => packBlocks(values, si, "tq2_0")).toThrow(bn.DTypeError);
    expect(() => packBlocks(values, sok, "q4_0" as BlockFormat)).toThrow(bn.ValueError);
    using b = bn.zeros([66], { dtype: "u8" });
    expect(() => dequantizeBlocks(b, "tq2_0", "i8")).toThrow(bn.DTypeError);
    using bi = bn.zeros([66], { dtype: "i8" });
    expect(() => unpackBlocks(bi, "tq2_0")).toThrow(bn.DTypeError);
  });

  test("a value outside {-1, 0, 1} is a ValueError naming its index; nothing leaks", () => {
    using values = bn.tensor(ref.t, { shape: [ROWS, K] });
    using scales = bn.tensor(ref.d, { shape: [ROWS, K / 256] });
    const bad = new Int8Array(ref.t);
    bad[K + 300] = 2;
    bad[K + 900] = -2;
    using vb = bn.tensor(bad, { shape: [ROWS, K] });
    const before = bn.memory.stats().bytesInUse;
    for (const f of FORMATS) {
      expect(() => packBlocks(vb, scales, f)).toThrow(bn.ValueError);
      expect(() => packBlocks(vb, scales, f)).toThrow(/found 2 at index \[1, 300\]/);
    }
    expect(bn.memory.stats().bytesInUse).toBe(before);
    using ok = packBlocks(values, scales, "tq2_0"); // still works afterwards
    expect(ok.size).toBe(ROWS * 4 * 66);
  });

  test("empty inputs give empty outputs", () => {
    using values = bn.zeros([0, 256], { dtype: "i8" });
    using scales = bn.zeros([0, 1]);
    using b = packBlocks(values, scales, "tq1_0");
    expect(b.shape).toEqual([0, 54]);
    const u = unpackBlocks(b, "tq1_0");
    using _v = u.values;
    using _s = u.scales;
    expect(u.values.shape).toEqual([0, 256]);
    using d = dequantizeBlocks(b, "tq1_0", "bf16");
    expect(d.shape).toEqual([0, 256]);
  });

  test("disposed inputs are refused", () => {
    const b = bn.zeros([66], { dtype: "u8" });
    b.dispose();
    expect(() => dequantizeBlocks(b, "tq2_0")).toThrow(bn.DisposedTensorError);
  });
});
