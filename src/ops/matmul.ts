/**
 * Matrix products: `matmul` (NumPy's `@`), `dot` and `outer`.
 *
 * - `matmul(a, b)`: the last two axes are matrices, leading axes are a batch that broadcasts; a
 *   1-D operand is a row (first operand) or a column (second operand) vector whose added axis is
 *   removed from the result, as in NumPy. Any strides: a transposed view (`w.T`) is read in place.
 * - dtypes promote like the elementwise ops ({@link promoteTypes}); the result has the promoted
 *   dtype. f32, f16 and bf16 accumulate in f32 (f16/bf16 results are rounded once at the end);
 *   integer and bool inputs accumulate in i32 with wrap-around (the low bits, hence the result
 *   of an i8/u8/i16/u16/u32 product, are those of the exact sum modulo the type's range, as NumPy
 *   computes them); bool results are "any pair of trues" (NumPy's logical matmul).
 * - On a CUDA device the product runs in cuBLAS (f32 in full f32, f16/bf16 on the tensor cores
 *   with f32 accumulation, written in the operands' dtype); integer products are refused there.
 * - The engine's GEMM packs panels of both operands (converting element types on the way) and
 *   runs register-blocked micro-kernels of the SIMD level chosen at load, threads over row blocks;
 *   a vector operand takes a GEMV path that streams the matrix once.
 * @module
 */
import { type DType, dtypeInfo, promoteTypes } from "../dtype.ts";
import { DTypeError, DeviceError, ShapeError, fmtShape } from "../errors.ts";
import { check, putLayout, sym } from "../native.ts";
import { isMetalIndex } from "../device.ts";
import { broadcastShapes, broadcastStrides, contiguousStrides } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { mul } from "./elementwise.ts";
import { record } from "../autograd/graph.ts";

function operand(x: unknown, what: string, op: string): Tensor {
  if (!(x instanceof Tensor)) throw new DTypeError(op, `${what} must be a Tensor, got ${x === null ? "null" : typeof x}`);
  x._live(op);
  return x;
}

function sameDevice(a: Tensor, b: Tensor, op: string): number {
  const da = a._live(op).device;
  if (b._live(op).device !== da) throw new DeviceError(op, `operands are on ${a.device} and ${b.device}; move one with to()`);
  return da;
}

/** The accumulation dtype of the GEMM for a result dtype. */
function accOf(d: DType): DType {
  return dtypeInfo(d).isFloat ? "f32" : "i32";
}

/**
 * The operands as the kernel reads them: f32/f16/bf16 (both the promoted float dtype) or i32
 * (narrower integers and bool widen exactly; products of those types are not the fast path).
 * Converted copies are contiguous and go to `temps` for the caller to dispose.
 */
function kernelOperands(a: Tensor, b: Tensor, rd: DType, temps: Tensor[]): [Tensor, Tensor] {
  const kd: DType = dtypeInfo(rd).isFloat ? rd : "i32";
  const conv = (t: Tensor) => {
    if (t._dt.name === kd) return t;
    const c = t.astype(kd);
    temps.push(c);
    return c;
  };
  return [conv(a), conv(b)];
}

/**
 * Runs the batched GEMM over the layout [batch..., M, N, K] (operands already in a kernel dtype),
 * then converts to `rd` if that is not the accumulation type. `so` gives where each
 * (batch, M, N) element lands in the result (a contiguous tensor of `resultShape`).
 */
function gemm(op: string, a: Tensor, b: Tensor, rd: DType, device: number, layout: number[], sa: number[], sb: number[], resultShape: number[], so: number[], what: string): Tensor {
  if (device !== 0) return gemmCuda(op, a, b, rd, device, layout, sa, sb, resultShape, so, what);
  const acc = accOf(rd);
  const out = Tensor._alloc(resultShape, dtypeInfo(acc), device, op);
  try {
    if (out._size > 0) {
      putLayout(layout, so, sa, sb);
      check(sym.bn_matmul(out._ptr(op), dtypeInfo(acc).code, a._ptr(op), b._ptr(op), a._dt.code, 1, 0, layout.length), op, what);
    }
    if (acc === rd) return out;
    const r = out.astype(rd);
    out.dispose();
    return r;
  } catch (e) {
    if (out._s !== null) out.dispose();
    throw e;
  }
}

/** The GPU product (cuBLAS; MPS on Metal): the result is written in the operands' dtype directly. */
function gemmCuda(op: string, a: Tensor, b: Tensor, rd: DType, device: number, layout: number[], sa: number[], sb: number[], resultShape: number[], so: number[], what: string): Tensor {
  const k = layout[layout.length - 1]!;
  const out = Tensor._alloc(resultShape, dtypeInfo(rd), device, op, k === 0);
  try {
    if (out._size > 0 && k > 0) {
      putLayout(layout, so, sa, sb);
      const run = isMetalIndex(device) ? sym.bn_metal_matmul : sym.bn_cuda_matmul;
      check(run(device, out._addr(op), out._dt.code, a._addr(op), b._addr(op), a._dt.code, layout.length), op, what);
    }
    return out;
  } catch (e) {
    out.dispose();
    throw e;
  }
}

/**
 * Whether cuBLAS reads `t`'s matrices in place: the last two axes row- or column-contiguous (a
 * 1-D operand: unit stride) and no negative stride (zig/gpu/cublas.zig `operandView`).
 */
function cublasReadable(t: Tensor): boolean {
  const s = t._shape;
  const st = t._st();
  if (st.some((v) => v < 0)) return false;
  if (s.length === 1) return s[0]! <= 1 || st[0] === 1;
  const r = s[s.length - 2]!;
  const c = s[s.length - 1]!;
  const sr = st[st.length - 2]!;
  const sc = st[st.length - 1]!;
  const rowMajor = (sc === 1 || c === 1) && (r === 1 || sr >= c);
  const colMajor = (sr === 1 || r === 1) && (c === 1 || sc >= r);
  return rowMajor || colMajor;
}

/**
 * The operands of a GPU product: float only (as PyTorch: no integer GEMM on CUDA), converted to
 * the result dtype, copied contiguous when cuBLAS cannot read them in place.
 */
function gpuOperands(x: Tensor, y: Tensor, rd: DType, op: string, what: string, temps: Tensor[]): [Tensor, Tensor] {
  if (!dtypeInfo(rd).isFloat) throw new DeviceError(op, `${what}: integer and bool products do not run on ${x.device} (as in PyTorch); convert to a float dtype first`);
  const [cx, cy] = kernelOperands(x, y, rd, temps);
  const ready = (t: Tensor) => {
    if (cublasReadable(t)) return t;
    const c = t.contiguous();
    temps.push(c);
    return c;
  };
  return [ready(cx), ready(cy)];
}

/**
 * Matrix product with NumPy's `matmul` semantics.
 *
 * ```ts
 * const y = bn.matmul(x, w.T);          // [batch, in] @ [in, out] -> [batch, out], w.T read in place
 * bn.matmul(bn.ones([2, 3, 4]), bn.ones([4, 5])).shape; // [2, 3, 5]: the batch broadcasts
 * bn.matmul(bn.ones([4]), bn.ones([4])).shape;          // []: a dot product
 * ```
 * @throws ShapeError when an operand is 0-d, the inner dimensions differ, or batch shapes do not
 * broadcast (the message names both shapes); DeviceError for operands on different devices.
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  const op = "matmul";
  const x = operand(a, "the first operand", op);
  const y = operand(b, "the second operand", op);
  const device = sameDevice(x, y, op);
  if (x._shape.length === 0 || y._shape.length === 0) {
    throw new ShapeError(op, `needs operands of at least 1 dimension, got ${fmtShape(x._shape)} and ${fmtShape(y._shape)} (use mul for scalars)`);
  }
  const rd = promoteTypes(x._dt.name, y._dt.name);
  const what = `${x._dt.name} ${fmtShape(x._shape)} @ ${y._dt.name} ${fmtShape(y._shape)}`;
  checkMatmulShapes(op, x._shape, y._shape); // before any operand is converted
  const temps: Tensor[] = [];
  try {
    const [cx, cy] = device === 0 ? kernelOperands(x, y, rd, temps) : gpuOperands(x, y, rd, op, what, temps);
    return record(op, [x, y], matmulLayout(op, cx, cy, rd, device, what));
  } finally {
    for (const t of temps) t.dispose();
  }
}

/** The shape errors of matmul, from the shapes alone (so that no conversion is wasted on them). */
function checkMatmulShapes(op: string, xs0: readonly number[], ys0: readonly number[]): void {
  const xs = xs0.length === 1 ? [1, xs0[0]!] : xs0;
  const ys = ys0.length === 1 ? [ys0[0]!, 1] : ys0;
  const k = xs[xs.length - 1]!;
  const k2 = ys[ys.length - 2]!;
  if (k !== k2) throw new ShapeError(op, `shapes ${fmtShape(xs0)} and ${fmtShape(ys0)}: inner dimensions ${k} and ${k2} do not match`);
  try {
    broadcastShapes(xs.slice(0, -2), ys.slice(0, -2), op);
  } catch {
    throw new ShapeError(op, `shapes ${fmtShape(xs0)} and ${fmtShape(ys0)}: batch dimensions ${fmtShape(xs.slice(0, -2))} and ${fmtShape(ys.slice(0, -2))} do not broadcast`);
  }
}

function matmulLayout(op: string, x: Tensor, y: Tensor, rd: DType, device: number, what: string): Tensor {
  // Promote 1-D operands to matrices: a row [1, K] first, a column [K, 1] second.
  const xs = x._shape.length === 1 ? [1, x._shape[0]!] : x._shape;
  const xst = x._shape.length === 1 ? [0, x._st()[0]!] : x._st();
  const ys = y._shape.length === 1 ? [y._shape[0]!, 1] : y._shape;
  const yst = y._shape.length === 1 ? [y._st()[0]!, 0] : y._st();
  const m = xs[xs.length - 2]!;
  const k = xs[xs.length - 1]!;
  const k2 = ys[ys.length - 2]!;
  const n = ys[ys.length - 1]!;
  if (k !== k2) {
    throw new ShapeError(op, `shapes ${fmtShape(x._shape)} and ${fmtShape(y._shape)}: inner dimensions ${k} and ${k2} do not match`);
  }
  const xb = xs.slice(0, -2);
  const yb = ys.slice(0, -2);
  let batch: number[];
  try {
    batch = broadcastShapes(xb, yb, op);
  } catch {
    throw new ShapeError(op, `shapes ${fmtShape(x._shape)} and ${fmtShape(y._shape)}: batch dimensions ${fmtShape(xb)} and ${fmtShape(yb)} do not broadcast`);
  }
  const sxb = broadcastStrides(xb, xst.slice(0, -2), batch, op);
  const syb = broadcastStrides(yb, yst.slice(0, -2), batch, op);
  const resultShape = [...batch];
  if (x._shape.length > 1) resultShape.push(m);
  if (y._shape.length > 1) resultShape.push(n);
  // Output strides in the layout's [batch..., M, N] order, from the result's contiguous strides.
  const rst = contiguousStrides(resultShape);
  const nb = batch.length;
  const so = [...rst.slice(0, nb), x._shape.length > 1 ? rst[nb]! : 0, y._shape.length > 1 ? rst[rst.length - 1]! : 0, 0];
  const layout = [...batch, m, n, k];
  const sa = [...sxb, xst[xst.length - 2]!, 0, xst[xst.length - 1]!];
  const sb = [...syb, 0, yst[yst.length - 1]!, yst[yst.length - 2]!];
  return gemm(op, x, y, rd, device, layout, sa, sb, resultShape, so, what);
}

/**
 * NumPy's `dot`: for 1-D and 2-D operands the same as {@link matmul}; a 0-d operand multiplies
 * elementwise; for N-D operands it sums over the last axis of `a` and the second-to-last of `b`,
 * giving shape `a.shape[:-1] + b.shape[:-2] + b.shape[-1:]` (no batch broadcasting, unlike
 * matmul).
 * @throws ShapeError when the summed dimensions differ.
 */
export function dot(a: Tensor, b: Tensor): Tensor {
  const op = "dot";
  const x = operand(a, "the first operand", op);
  const y = operand(b, "the second operand", op);
  const device = sameDevice(x, y, op);
  if (x._shape.length === 0 || y._shape.length === 0) return mul(x, y);
  if (x._shape.length <= 2 && y._shape.length <= 2) return matmul(x, y);
  if (y._shape.length === 1) return matmul(x, y);
  const rd = promoteTypes(x._dt.name, y._dt.name);
  const what = `${x._dt.name} ${fmtShape(x._shape)} · ${y._dt.name} ${fmtShape(y._shape)}`;
  const kx = x._shape[x._shape.length - 1]!;
  const ky = y._shape[y._shape.length - 2]!;
  if (kx !== ky) throw new ShapeError(op, `shapes ${fmtShape(x._shape)} and ${fmtShape(y._shape)}: summed dimensions ${kx} and ${ky} do not match`);
  const temps: Tensor[] = [];
  try {
    const [cx, cy] = device === 0 ? kernelOperands(x, y, rd, temps) : gpuOperands(x, y, rd, op, what, temps);
    return record(op, [x, y], dotLayout(op, cx, cy, rd, device, what));
  } finally {
    for (const t of temps) t.dispose();
  }
}

function dotLayout(op: string, x: Tensor, y: Tensor, rd: DType, device: number, what: string): Tensor {
  // Layout [a_outer..., b_outer..., M, N, K]: a's leading axes and b's leading axes are
  // independent batch axes (each operand has stride 0 along the other's).
  const xs = x._shape.length === 1 ? [1, x._shape[0]!] : x._shape;
  const xst = x._shape.length === 1 ? [0, x._st()[0]!] : x._st();
  const ys = y._shape;
  const yst = y._st();
  const k = xs[xs.length - 1]!;
  const k2 = ys[ys.length - 2]!;
  if (k !== k2) throw new ShapeError(op, `shapes ${fmtShape(x._shape)} and ${fmtShape(y._shape)}: summed dimensions ${k} and ${k2} do not match`);
  const m = xs[xs.length - 2]!;
  const n = ys[ys.length - 1]!;
  const ao = xs.slice(0, -2);
  const bo = ys.slice(0, -2);
  const resultShape = [...ao, ...(x._shape.length > 1 ? [m] : []), ...bo, n];
  const rst = contiguousStrides(resultShape);
  const mAxis = ao.length;
  const so = [...rst.slice(0, ao.length), ...rst.slice(resultShape.length - 1 - bo.length, resultShape.length - 1), x._shape.length > 1 ? rst[mAxis]! : 0, 1, 0];
  const layout = [...ao, ...bo, m, n, k];
  const sa = [...xst.slice(0, -2), ...bo.map(() => 0), xst[xst.length - 2]!, 0, xst[xst.length - 1]!];
  const sb = [...ao.map(() => 0), ...yst.slice(0, -2), 0, yst[yst.length - 1]!, yst[yst.length - 2]!];
  return gemm(op, x, y, rd, device, layout, sa, sb, resultShape, so, what);
}

/**
 * Outer product of two tensors, flattened first as NumPy does: `out[i, j] = a.flat[i] * b.flat[j]`,
 * shape `[a.size, b.size]`, dtype as {@link promoteTypes}.
 */
export function outer(a: Tensor, b: Tensor): Tensor {
  const op = "outer";
  const x = operand(a, "the first operand", op);
  const y = operand(b, "the second operand", op);
  sameDevice(x, y, op);
  const col = x.reshape([x._size, 1]);
  try {
    const row = y.reshape([1, y._size]);
    try {
      return mul(col, row);
    } finally {
      row.dispose();
    }
  } finally {
    col.dispose();
  }
}

declare module "../tensor.ts" {
  interface Tensor {
    /** `bn.matmul(this, other)`. */
    matmul(other: Tensor): Tensor;
    /** `bn.dot(this, other)`. */
    dot(other: Tensor): Tensor;
  }
}

Tensor.prototype.matmul = function (this: Tensor, other: Tensor) {
  return matmul(this, other);
};
Tensor.prototype.dot = function (this: Tensor, other: Tensor) {
  return dot(this, other);
};
