import { describe, expect, test } from "bun:test";
import * as bn from "../src/index.ts";
import { toBF16, toF16, toF32 } from "./helpers.ts";

// An independent Philox4x32-10 in TypeScript, from the published algorithm (Salmon et al. 2011),
// and the mapping documented in zig/cpu/random.zig. 32x32->64 products via BigInt.
function philox(key: [number, number], ctr: [number, number, number, number]): number[] {
  let [c0, c1, c2, c3] = ctr.map(BigInt) as [bigint, bigint, bigint, bigint];
  let [k0, k1] = key.map(BigInt) as [bigint, bigint];
  const M = 0xffffffffn;
  for (let r = 0; r < 10; r++) {
    const p0 = 0xd2511f53n * c0;
    const p1 = 0xcd9e8d57n * c2;
    [c0, c1, c2, c3] = [(p1 >> 32n) ^ c1 ^ k0, p1 & M, (p0 >> 32n) ^ c3 ^ k1, p0 & M];
    k0 = (k0 + 0x9e3779b9n) & M;
    k1 = (k1 + 0xbb67ae85n) & M;
  }
  return [c0, c1, c2, c3].map(Number);
}

function uniformRef(seed: number, n: number, mant: number, low = 0, high = 1, offset = 0): number[] {
  const key: [number, number] = [seed % 2 ** 32, Math.floor(seed / 2 ** 32)];
  return Array.from({ length: n }, (_, i) => {
    const idx = offset + i;
    const block = Math.floor(idx / 4);
    const x = philox(key, [block % 2 ** 32, Math.floor(block / 2 ** 32), 0, 0])[idx % 4]!;
    return low + (high - low) * (Math.floor(x / 2 ** (32 - mant)) / 2 ** mant);
  });
}

function normalRef(seed: number, n: number): number[] {
  const key: [number, number] = [seed % 2 ** 32, Math.floor(seed / 2 ** 32)];
  return Array.from({ length: n }, (_, i) => {
    const pair = Math.floor(i / 2);
    const [x0, x1, x2, x3] = philox(key, [pair % 2 ** 32, Math.floor(pair / 2 ** 32), 1, 0]);
    const u1 = ((x0! >>> 5) * 2 ** 26 + (x1! >>> 6) + 1) / 2 ** 53;
    const u2 = ((x2! >>> 5) * 2 ** 26 + (x3! >>> 6)) / 2 ** 53;
    const r = Math.sqrt(-2 * Math.log(u1));
    return i % 2 === 0 ? r * Math.cos(2 * Math.PI * u2) : r * Math.sin(2 * Math.PI * u2);
  });
}

describe("rand / randn", () => {
  test("rand is exactly the documented Philox stream (f32, f16, bf16, ranges)", () => {
    using a = bn.rand([5, 7], { seed: 1234 });
    expect((a.toArray() as number[][]).flat()).toEqual(uniformRef(1234, 35, 24).map(toF32));
    using h = bn.rand([9], { seed: 2 ** 40 + 5, dtype: "f16" });
    expect(h.toArray()).toEqual(uniformRef(2 ** 40 + 5, 9, 11).map(toF16));
    using b = bn.rand([9], { seed: 7, dtype: "bf16", low: -2, high: 3 });
    expect(b.toArray()).toEqual(uniformRef(7, 9, 8, -2, 3).map(toBF16));
    for (const v of (a.toArray() as number[][]).flat()) expect(v >= 0 && v < 1).toBe(true);
  });

  test("randn follows Box-Muller on the Philox stream (to within f32 rounding)", () => {
    using z = bn.randn([101], { seed: 99 });
    const want = normalRef(99, 101);
    const got = z.toArray() as number[];
    for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThanOrEqual(Math.abs(want[i]!) * 2 ** -23 + 1e-12);
    using m = bn.randn([20000], { seed: 5, mean: 3, std: 2 });
    const v = m.toArray() as number[];
    const mean = v.reduce((s, x) => s + x, 0) / v.length;
    const sd = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length);
    expect(Math.abs(mean - 3)).toBeLessThan(0.05);
    expect(Math.abs(sd - 2)).toBeLessThan(0.05);
  });

  test("same seed, same numbers; the global stream continues across calls", () => {
    using a = bn.randn([4, 4], { seed: 3 });
    using b = bn.randn([4, 4], { seed: 3 });
    expect(a.toArray()).toEqual(b.toArray());
    using c = bn.randn([4, 4], { seed: 4 });
    expect(c.toArray()).not.toEqual(a.toArray());
    bn.manualSeed(42);
    using x = bn.rand([6]);
    using y = bn.rand([10]);
    bn.manualSeed(42);
    using xy = bn.rand([16]);
    expect([...(x.toArray() as number[]), ...(y.toArray() as number[])]).toEqual(xy.toArray() as number[]);
    using s = bn.rand([16], { seed: 42 });
    expect(s.toArray()).toEqual(xy.toArray());
  });

  test("bad input", () => {
    expect(() => bn.rand([2], { dtype: "i32" })).toThrow(bn.DTypeError);
    expect(() => bn.randn([2], { seed: -1 })).toThrow(bn.ValueError);
    expect(() => bn.randn([2], { seed: 1.5 })).toThrow(bn.ValueError);
    expect(() => bn.rand([-2])).toThrow(bn.ShapeError);
    expect(() => bn.rand([2], { low: NaN })).toThrow(bn.ValueError);
    expect(() => bn.manualSeed(2 ** 60)).toThrow(bn.ValueError);
  });
});
