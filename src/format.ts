/**
 * NumPy-like printing: `tensor([[1., 2.],\n        [3., 4.]], dtype=f32)`; tensors over 1000
 * elements show the first and last 3 entries of each long axis around `...`.
 * @module
 */
import { borrowedArrayBuffer } from "./native.ts";
import type { Tensor } from "./tensor.ts";

const THRESHOLD = 1000;
const EDGE = 3;

/** Reads single elements (by element offset into the storage) as numbers. */
function reader(t: Tensor): (off: number) => number {
  const s = t._live("toString");
  const ab = borrowedArrayBuffer(s.ptr, 0, s.nbytes);
  switch (t._dt.name) {
    case "bf16": {
      const u16 = new Uint16Array(ab);
      const f = new Float32Array(1);
      const u32 = new Uint32Array(f.buffer);
      return (o) => {
        u32[0] = u16[o]! << 16;
        return f[0]!;
      };
    }
    default: {
      const arr = new t._dt.array(ab, 0, s.nbytes / t._dt.size);
      return (o) => Number(arr[o]);
    }
  }
}

function fmtFloat(values: number[]): (v: number) => string {
  const finite = values.filter(Number.isFinite);
  const special = (v: number) => (Number.isNaN(v) ? "nan" : v > 0 ? "inf" : "-inf");
  if (finite.length === 0) return special;
  let maxAbs = 0;
  let minAbs = Infinity;
  let integral = true;
  for (const v of finite) {
    const a = Math.abs(v);
    maxAbs = Math.max(maxAbs, a);
    if (a > 0) minAbs = Math.min(minAbs, a);
    if (!Number.isInteger(v)) integral = false;
  }
  if (integral && maxAbs < 1e16) return (v) => (Number.isFinite(v) ? `${v === 0 && Object.is(v, -0) ? "-0" : v}.` : special(v));
  if (maxAbs >= 1e8 || minAbs < 1e-4) return (v) => (Number.isFinite(v) ? v.toExponential(4) : special(v));
  // Fixed notation with the fewest decimals (at most 4) that every value needs.
  let decimals = 0;
  for (const v of finite) {
    const s = v.toFixed(4).replace(/0+$/, "");
    decimals = Math.max(decimals, s.length - s.indexOf(".") - 1);
  }
  decimals = Math.max(decimals, 1);
  return (v) => (Number.isFinite(v) ? v.toFixed(decimals) : special(v));
}

/** The printout of a live tensor. */
export function formatTensor(t: Tensor): string {
  const shape = t._shape;
  const strides = t._st();
  const read = t._size === 0 ? () => 0 : reader(t);
  const summarise = t._size > THRESHOLD;
  // An empty tensor prints its brackets down to the first empty axis; a huge axis before it
  // (e.g. [2**40, 0]) prints as just [].
  const emptyArrays = t._size === 0 ? shape.slice(0, Math.max(0, shape.indexOf(0))).reduce((a, b) => a * b, 1) : 0;
  if (t._size === 0 && emptyArrays > THRESHOLD) return `tensor([], dtype=${t._dt.name}, shape=[${shape.join(", ")}])`;
  const kept = shape.map((d) => {
    if (!summarise || d <= 2 * EDGE) return [...Array(d).keys()];
    return [...Array(EDGE).keys(), -1, ...Array.from({ length: EDGE }, (_, i) => d - EDGE + i)];
  });
  // Collect the printed values first, to choose one number format for all.
  const values: number[] = [];
  const collect = (axis: number, off: number): void => {
    if (axis === shape.length) {
      values.push(read(off));
      return;
    }
    for (const i of kept[axis]!) if (i >= 0) collect(axis + 1, off + i * strides[axis]!);
  };
  collect(0, t._offset);
  const dt = t._dt;
  const fmt: (v: number) => string =
    dt.name === "bool" ? (v) => (v !== 0 ? "true" : "false") : dt.isFloat ? fmtFloat(values) : (v) => String(v);
  const strs = values.map(fmt);
  const width = strs.reduce((w, s) => Math.max(w, s.length), 0);
  const prefix = "tensor(";
  let k = 0;
  const render = (axis: number, indent: string): string => {
    if (axis === shape.length) return strs[k++]!.padStart(width);
    const parts: string[] = [];
    for (const i of kept[axis]!) parts.push(i < 0 ? "..." : render(axis + 1, indent + " "));
    if (axis === shape.length - 1) return `[${parts.join(", ")}]`;
    const gap = ",\n" + "\n".repeat(Math.max(0, shape.length - axis - 2)) + indent + " ";
    return `[${parts.join(gap)}]`;
  };
  const body = shape.length === 0 ? strs[0]! : render(0, " ".repeat(prefix.length));
  const extra = t._size === 0 ? `, shape=[${shape.join(", ")}]` : "";
  return `${prefix}${body}, dtype=${dt.name}${extra})`;
}
