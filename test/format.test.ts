import { describe, expect, test } from "bun:test";
import * as bn from "../src/index.ts";

describe("String(t)", () => {
  test("NumPy-like layout, aligned columns, dtype suffix", () => {
    using a = bn.tensor([[1, 2], [30, 4]]);
    expect(String(a)).toBe("tensor([[ 1.,  2.],\n        [30.,  4.]], dtype=f32)");
    using b = bn.tensor([0.5, -0.25, 1], { dtype: "f16" });
    expect(String(b)).toBe("tensor([ 0.50, -0.25,  1.00], dtype=f16)");
    using c = bn.tensor([3, -4], { dtype: "i8" });
    expect(String(c)).toBe("tensor([ 3, -4], dtype=i8)");
    using d = bn.tensor([true, false]);
    expect(String(d)).toBe("tensor([ true, false], dtype=bool)");
    using e = bn.tensor(7, { dtype: "u8" });
    expect(String(e)).toBe("tensor(7, dtype=u8)");
    using f = bn.tensor([NaN, Infinity, -1.5]);
    expect(String(f)).toBe("tensor([ nan,  inf, -1.5], dtype=f32)");
    using g = bn.tensor([1e-6, 2]);
    expect(String(g)).toBe("tensor([1.0000e-6, 2.0000e+0], dtype=f32)");
    using z = bn.zeros([0, 3]);
    expect(String(z)).toBe("tensor([], dtype=f32, shape=[0, 3])");
  });

  test("3-D tensors separate blocks with a blank line; views print their own layout", () => {
    using t = bn.arange(8, undefined, undefined, { dtype: "i32" }).reshape([2, 2, 2]);
    expect(String(t)).toBe("tensor([[[0, 1],\n         [2, 3]],\n\n        [[4, 5],\n         [6, 7]]], dtype=i32)");
    using v = t.permute([2, 1, 0]).slice([1]);
    expect(String(v)).toBe("tensor([[1, 5],\n        [3, 7]], dtype=i32)");
  });

  test("more than 1000 elements are summarised with ...", () => {
    using t = bn.arange(2000, undefined, undefined, { dtype: "i32" });
    expect(String(t)).toBe("tensor([   0,    1,    2, ..., 1997, 1998, 1999], dtype=i32)");
    using m = bn.arange(1200, undefined, undefined, { dtype: "i16" }).reshape([40, 30]);
    const s = String(m);
    expect(s.split("\n").length).toBe(7);
    expect(s).toContain("[1170, 1171, 1172, ..., 1197, 1198, 1199]]");
    expect(s).toContain("        ...,\n");
    using small = bn.zeros([10, 100]);
    expect(String(small)).not.toContain("...");
  });
});
