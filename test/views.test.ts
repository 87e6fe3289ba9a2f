import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import * as bn from "../src/index.ts";
import { Ref, arbPerm, arbShape, pyRange } from "./helpers.ts";

/** A tensor holding 0..n-1 (f32) and the matching reference. */
function iota(shape: number[]): [bn.Tensor, Ref] {
  const ref = Ref.iota(shape);
  return [bn.tensor(Float32Array.from(ref.data), { shape }), ref];
}

/** Allocations made while `fn` runs (views must make none). */
function allocationsDuring(fn: () => void): number {
  const before = bn.memory.stats().allocations;
  fn();
  return bn.memory.stats().allocations - before;
}

describe("views share storage and never copy", () => {
  test("reshape, transpose, permute, slice, expand, squeeze, unsqueeze, flatten allocate nothing", () => {
    const [t] = iota([2, 3, 4]);
    const views: bn.Tensor[] = [];
    const n = allocationsDuring(() => {
      views.push(t.reshape([6, 4]), t.reshape(4, -1, 3), t.view([24]), t.transpose(0, 2), t.T, t.permute([1, 2, 0]));
      views.push(t.slice([1, [0, 3, 2], [null, null, -1]]), t.unsqueeze(1), t.unsqueeze(-1).squeeze(), t.flatten());
      views.push(t.slice([[0, 1]]).expand([5, 3, 4]), t.slice([[0, 1]]).broadcastTo([2, 2, 3, 4]), t.contiguous(), t.to("cpu"));
    });
    expect(n).toBe(0);
    // Writing through the base is visible in every view.
    (t.data as Float32Array)[5] = -1;
    expect(views[0]!.toArray()).toEqual([[0, 1, 2, 3], [4, -1, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15], [16, 17, 18, 19], [20, 21, 22, 23]]);
    expect((views[3]!.toArray() as number[][][])[1]![1]![0]).toBe(-1);
    for (const v of views) v.dispose();
    t.dispose();
  });

  test("t.data of a contiguous view is zero-copy over the same memory", () => {
    using t = bn.arange(12).reshape([3, 4]);
    using row = t.slice([1]);
    const d = row.data as Float32Array;
    expect(Array.from(d)).toEqual([4, 5, 6, 7]);
    d[0] = 100;
    expect((t.toArray() as number[][])[1]![0]).toBe(100);
    expect(row.data).toBe(d); // cached, not rebuilt
  });

  test("reshape of a non-contiguous tensor copies only when it must", () => {
    using t = bn.arange(24).reshape([4, 6]);
    using tt = t.T; // [6, 4], not contiguous
    expect(tt.isContiguous()).toBe(false);
    let v!: bn.Tensor;
    expect(allocationsDuring(() => (v = tt.reshape([6, 2, 2])))).toBe(0); // splitting an axis: a view
    expect(v.toArray()).toEqual((tt.toArray() as number[][]).map((r) => [r.slice(0, 2), r.slice(2)]));
    v.dispose();
    let c!: bn.Tensor;
    expect(allocationsDuring(() => (c = tt.reshape([24])))).toBe(1); // merging transposed axes: a copy
    expect(c.toArray()).toEqual((tt.toArray() as number[][]).flat());
    c.dispose();
    expect(() => tt.view([24])).toThrow(bn.ShapeError);
    expect(() => tt.view([24])).toThrow(/without a copy/);
  });
});

describe("views against a float64 reference (properties)", () => {
  test("permute and transpose", () => {
    fc.assert(
      fc.property(
        arbShape(1, 4, 4).chain((s) => fc.tuple(fc.constant(s), arbPerm(s.length))),
        ([shape, perm]) => {
          const [t, ref] = iota(shape);
          using p = t.permute(perm);
          expect(p.shape).toEqual(perm.map((a) => shape[a]!));
          expect(p.toArray()).toEqual(ref.permute(perm).toNested());
          using c = p.contiguous();
          expect(c.isContiguous()).toBe(true);
          expect(Array.from(c.data as Float32Array)).toEqual(Array.from(ref.permute(perm).data));
          using tr = t.transpose();
          expect(tr.toArray()).toEqual(ref.permute([...perm.keys()].reverse()).toNested());
          t.dispose();
        },
      ),
      { numRuns: 80 },
    );
  });

  test("slice with negative indices, steps, nulls and clamped ranges (Python semantics)", () => {
    const arbSpec = (dim: number) =>
      fc.tuple(
        fc.option(fc.integer({ min: -dim - 2, max: dim + 2 }), { nil: null }),
        fc.option(fc.integer({ min: -dim - 2, max: dim + 2 }), { nil: null }),
        fc.option(fc.integer({ min: -3, max: 3 }).filter((s) => s !== 0), { nil: null }),
      );
    fc.assert(
      fc.property(
        arbShape(1, 4, 5).chain((s) => fc.tuple(fc.constant(s), fc.tuple(...s.map(arbSpec)))),
        ([shape, specs]) => {
          const [t, ref] = iota(shape);
          using v = t.slice(specs);
          const want = ref.sliceRanges(specs.map((sp, ax) => pyRange(sp, shape[ax]!)));
          expect(v.shape).toEqual(want.shape);
          expect(v.toArray()).toEqual(want.toNested());
          t.dispose();
        },
      ),
      { numRuns: 120 },
    );
  });

  test("integer indices drop axes; nested slices compose", () => {
    const [t, ref] = iota([3, 4, 5]);
    using a = t.slice([-1, null, [1, 5, 2]]);
    expect(a.shape).toEqual([4, 2]);
    expect(a.toArray()).toEqual(Ref.build([4, 2], ([j, k]) => ref.at([2, j!, 1 + 2 * k!])).toNested());
    using b = a.slice([[null, null, -2], 0]);
    expect(b.toArray()).toEqual([ref.at([2, 3, 1]), ref.at([2, 1, 1])]);
    using s = t.slice([1, 2, 3]);
    expect(s.shape).toEqual([]);
    expect(s.item()).toBe(ref.at([1, 2, 3]));
    t.dispose();
  });

  test("reshape (with -1) keeps row-major order for any strides", () => {
    fc.assert(
      fc.property(arbShape(1, 4, 4).chain((s) => fc.tuple(fc.constant(s), arbPerm(s.length))), ([shape, perm]) => {
        const [t, ref] = iota(shape);
        using p = t.permute(perm);
        const want = Array.from(ref.permute(perm).data);
        using flat = p.flatten();
        expect(flat.toArray()).toEqual(want);
        const n = ref.size;
        const k = [...Array(n + 1).keys()].find((d) => d > 1 && n % d === 0) ?? 1;
        if (n > 0) {
          using r = p.reshape([k, -1]);
          expect(r.shape).toEqual([k, n / k]);
          expect((r.toArray() as number[][]).flat()).toEqual(want);
        }
        t.dispose();
      }),
      { numRuns: 60 },
    );
  });

  test("expand/broadcastTo read stride-0 axes in place", () => {
    fc.assert(
      fc.property(
        arbShape(0, 3, 3, false).chain((s) =>
          fc.tuple(
            fc.constant(s),
            fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 2 }),
            fc.array(fc.integer({ min: 1, max: 3 }), { minLength: s.length, maxLength: s.length }),
          ),
        ),
        ([shape, lead, grow]) => {
          const src = shape.map((d, i) => (grow[i]! > 1 ? 1 : d));
          const target = [...lead, ...src.map((d, i) => (d === 1 ? grow[i]! : d))];
          const [t, ref] = iota(src);
          using e = t.expand(target);
          expect(e.shape).toEqual(target);
          expect(e.toArray()).toEqual(ref.broadcastTo(target).toNested());
          if (e.size > 1 && target.some((d, i) => d > 1 && (i < lead.length || src[i - lead.length] === 1))) {
            expect(e.strides.some((st) => st === 0)).toBe(true);
          }
          t.dispose();
        },
      ),
      { numRuns: 80 },
    );
  });

  test("squeeze / unsqueeze round trip", () => {
    const [t, ref] = iota([1, 3, 1, 2]);
    using s = t.squeeze();
    expect(s.shape).toEqual([3, 2]);
    using s0 = t.squeeze(0);
    expect(s0.shape).toEqual([3, 1, 2]);
    using s2 = t.squeeze([-2, 0]);
    expect(s2.shape).toEqual([3, 2]);
    using u = s.unsqueeze(-1).unsqueeze(0);
    expect(u.shape).toEqual([1, 3, 2, 1]);
    expect((u.toArray() as number[][][][])[0]!.flat(2)).toEqual(Array.from(ref.data));
    t.dispose();
  });
});

describe("concat, stack, split", () => {
  test("concat along each axis matches the reference, promoting dtypes", () => {
    const [a, ra] = iota([2, 3]);
    using b = bn.tensor([[10, 11, 12]], { dtype: "i16" });
    using c = bn.concat([a, b], 0);
    expect(c.dtype).toBe("f32");
    expect(c.toArray()).toEqual([...(ra.toNested() as number[][]), [10, 11, 12]]);
    using at = a.T;
    using d = bn.concat([at, at], -1);
    expect(d.toArray()).toEqual((ra.permute([1, 0]).toNested() as number[][]).map((r) => [...r, ...r]));
    using i8 = bn.tensor([1], { dtype: "i8" });
    using u8 = bn.tensor([200], { dtype: "u8" });
    using p = bn.concat([i8, u8]);
    expect(p.dtype).toBe("i16");
    expect(p.toArray()).toEqual([1, 200]);
    a.dispose();
  });

  test("stack adds an axis; split returns views", () => {
    const [a] = iota([2, 3]);
    using s = bn.stack([a, a, a], 1);
    expect(s.shape).toEqual([2, 3, 3]);
    expect((s.toArray() as number[][][])[1]![2]).toEqual([3, 4, 5]);
    using x = bn.arange(10);
    let parts: bn.Tensor[] = [];
    expect(allocationsDuring(() => (parts = bn.split(x, [3, 7])))).toBe(0);
    expect(parts.map((p) => p.toArray())).toEqual([[0, 1, 2], [3, 4, 5, 6], [7, 8, 9]]);
    for (const p of parts) p.dispose();
    const eq = bn.split(a, 3, 1);
    expect(eq.map((p) => p.shape)).toEqual([[2, 1], [2, 1], [2, 1]]);
    for (const p of eq) p.dispose();
    a.dispose();
  });

  test("bad input: mismatched shapes, bad axes, uneven split", () => {
    using a = bn.zeros([2, 3]);
    using b = bn.zeros([3, 3]);
    expect(() => bn.concat([a, b], 1)).toThrow(/differ outside axis 1/);
    expect(() => bn.concat([], 0)).toThrow(bn.ShapeError);
    expect(() => bn.stack([a, b])).toThrow(bn.ShapeError);
    expect(() => bn.concat([a, a], 2)).toThrow(/axis 2 is out of range/);
    expect(() => bn.split(a, 2, 1)).toThrow(/does not divide/);
    expect(() => bn.split(a, 0)).toThrow(bn.ShapeError);
  });
});

describe("bad view input gets typed errors and leaves the operand unchanged", () => {
  test("reshape/view/slice/permute/squeeze/expand errors", () => {
    using t = bn.arange(6).reshape([2, 3]);
    const before = t.toArray();
    expect(() => t.reshape([4, 2])).toThrow(bn.ShapeError);
    expect(() => t.reshape([4, 2])).toThrow(/cannot reshape \[2, 3\] \(6 elements\) to \[4, 2\]/);
    expect(() => t.reshape([-1, -1])).toThrow(bn.ShapeError);
    expect(() => t.reshape([5, -1])).toThrow(bn.ShapeError);
    expect(() => t.slice([2])).toThrow(/index 2 is out of range for axis 0 of size 2/);
    expect(() => t.slice([-3])).toThrow(bn.ShapeError);
    expect(() => t.slice([0, 0, 0])).toThrow(bn.ShapeError);
    expect(() => t.slice([[0, 2, 0]])).toThrow(/nonzero integer/);
    expect(() => t.slice([1.5])).toThrow(bn.ShapeError);
    expect(() => t.permute([0, 0])).toThrow(/repeated/);
    expect(() => t.permute([0])).toThrow(bn.ShapeError);
    expect(() => t.transpose(0, 5)).toThrow(bn.ShapeError);
    expect(() => t.squeeze(0)).toThrow(/its size is 2/);
    expect(() => t.unsqueeze(4)).toThrow(bn.ShapeError);
    expect(() => t.expand([4, 3, 2])).toThrow(bn.ShapeError);
    expect(() => t.expand([2, 6])).toThrow(/cannot broadcast \[2, 3\] to \[2, 6\]/);
    using tt = t.T;
    expect(() => tt.data).toThrow(/not contiguous/);
    expect(t.toArray()).toEqual(before);
    expect(t.shape).toEqual([2, 3]);
  });
});
