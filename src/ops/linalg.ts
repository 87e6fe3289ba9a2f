/**
 * `bn.linalg`: inv, solve, det, cholesky, qr, svd, svdvals, eigh and norm, with NumPy semantics.
 *
 * - Every function works on stacks of matrices: the last two axes are the matrix, the leading
 *   axes a batch (each matrix of the batch is independent; batches run in parallel).
 * - Inputs may be any view (transposed, sliced, broadcast): the engine reads them through their
 *   strides. Results are new contiguous tensors.
 * - Dtypes: f32, f16 and bf16 inputs give results of the same dtype. The arithmetic is float64
 *   inside whatever the input, and each result is rounded once. Integer and bool inputs are
 *   promoted to **f32** results (NumPy gives float64, a dtype this library does not have).
 *   `solve` with two different dtypes promotes them first (`bn.promoteTypes`).
 * - Errors: a matrix that is singular (inv, solve: a pivot of the LU factorisation is exactly
 *   zero, as LAPACK), not positive definite (cholesky) or for which the QR iterations do not
 *   converge (svd, eigh, norm 2/-2/nuc; NaN input) raises {@link LinAlgError}; non-square input to
 *   inv/det/cholesky/eigh/solve raises {@link ShapeError}. Messages name the op, the shapes and
 *   dtypes, and for a batch the index of the failing matrix. Operands are never changed.
 *
 * Algorithms (zig/cpu/linalg.zig): LU with partial pivoting (blocked, GEMM trailing update) for
 * inv, solve and det; blocked Cholesky; Householder QR in compact WY form; Householder
 * tridiagonalisation + implicit QL for eigh; Golub-Kahan bidiagonalisation + implicit-shift QR for
 * svd. See docs/tensor_implementation_guide.md, "Linear algebra".
 * @module
 */
import { type DTypeInfo, dtypeInfo, promoteTypes } from "../dtype.ts";
import { DTypeError, DeviceError, ShapeError, ValueError, fmtShape, show } from "../errors.ts";
import { check, putLayout, sym } from "../native.ts";
import { broadcastShapes, normAxis } from "../shape.ts";
import { Tensor } from "../tensor.ts";

const OP = { inv: 0, solve: 1, det: 2, cholesky: 3, qr: 4, svd: 5, eigh: 6, normVector: 7, normMatrix: 8 } as const;
const MATRIX_ORD = { fro: 0, nuc: 1, "1": 2, "-1": 3, "2": 4, "-2": 5, Infinity: 6, "-Infinity": 7 } as const;

/** Options of {@link qr}. */
export interface QrOptions {
  /** `"reduced"` (default): Q is [..., m, k], R is [..., k, n] with k = min(m, n). `"complete"`: Q is [..., m, m], R is [..., m, n]. */
  mode?: "reduced" | "complete";
}

/** Options of {@link svd}. */
export interface SvdOptions {
  /** true (default, as NumPy): U is [..., m, m] and Vt is [..., n, n]; false: [..., m, k] and [..., k, n] with k = min(m, n). */
  fullMatrices?: boolean;
}

/** The result of {@link qr}: A = Q R, Q with orthonormal columns, R upper triangular. */
export interface QrResult {
  Q: Tensor;
  R: Tensor;
}

/** The result of {@link svd}: A = U diag(S) Vt, S descending and non-negative. */
export interface SvdResult {
  U: Tensor;
  S: Tensor;
  Vt: Tensor;
}

/** The result of {@link eigh}: A = V diag(w) Vᵀ, eigenvalues ascending, eigenvectors in the columns. */
export interface EighResult {
  eigenvalues: Tensor;
  eigenvectors: Tensor;
}

/** A norm order (NumPy's `ord`): a number (including ±Infinity) or "fro" / "nuc" for matrices. */
export type NormOrder = number | "fro" | "nuc";

function checkTensor(x: unknown, op: string, what = "input"): Tensor {
  if (!(x instanceof Tensor)) throw new DTypeError(op, `${what} must be a Tensor, got ${x === null ? "null" : typeof x}`);
  x._live(op);
  return x;
}

function desc(t: Tensor): string {
  return `${t._dt.name} ${fmtShape(t._shape)}`;
}

/** The result dtype: the input's float dtype, f32 for integers and bool. */
function outDtype(dt: DTypeInfo): DTypeInfo {
  return dt.isFloat ? dt : dtypeInfo("f32");
}

function checkMatrix(x: unknown, op: string, square: boolean): Tensor {
  const t = checkTensor(x, op);
  const nd = t._shape.length;
  if (nd < 2) throw new ShapeError(op, `needs a matrix or a stack of matrices (at least 2 dimensions), got ${desc(t)}`);
  if (square && t._shape[nd - 1] !== t._shape[nd - 2]) {
    throw new ShapeError(op, `needs square matrices in the last two axes, got ${desc(t)}`);
  }
  return t;
}

function checkOpts(opts: unknown, op: string): Record<string, unknown> {
  if (opts === undefined || opts === null) return {};
  if (typeof opts !== "object" || Array.isArray(opts) || opts instanceof Tensor) {
    throw new ValueError(op, `options must be an object, got ${Array.isArray(opts) ? "an array" : typeof opts}`);
  }
  return opts as Record<string, unknown>;
}

interface Call {
  op: number;
  name: string;
  a: Tensor;
  /** The layout: [batch..., m, n] and a's strides for it. */
  shape: number[];
  aStrides: number[];
  b?: Tensor;
  bStrides?: number[];
  k?: number;
  flags?: number;
  p?: number;
  outs: Tensor[];
  context: string;
}

/** One native call; disposes the outputs if it fails. */
function run(c: Call): void {
  try {
    putLayout(c.shape, c.aStrides, c.bStrides ?? c.aStrides.map(() => 0));
    const o = c.outs;
    const status = sym.bn_linalg(
      c.op,
      c.a._dt.code,
      o[0]!._dt.code,
      c.a._ptr(c.name),
      c.b ? c.b._ptr(c.name) : null,
      o[0]!._ptr(c.name),
      o[1] ? o[1]._ptr(c.name) : null,
      o[2] ? o[2]._ptr(c.name) : null,
      c.k ?? 0,
      c.flags ?? 0,
      c.p ?? 0,
      c.shape.length,
    );
    check(status, c.name, c.context);
  } catch (e) {
    for (const t of c.outs) t.dispose();
    throw e;
  }
}

function alloc(shape: number[], dt: DTypeInfo, like: Tensor, op: string): Tensor {
  return Tensor._alloc(shape, dt, like._live(op).device, op);
}

/** One-output ops over square matrices: inv, det, cholesky. */
function squareOp(x: unknown, op: "inv" | "det" | "cholesky"): Tensor {
  const a = checkMatrix(x, op, true);
  const shape = a._shape;
  const od = outDtype(a._dt);
  const out = alloc(op === "det" ? shape.slice(0, -2) : shape.slice(), od, a, op);
  run({ op: OP[op], name: op, a, shape: shape.slice(), aStrides: a._st(), outs: [out], context: desc(a) });
  return out;
}

/**
 * The inverse of each square matrix: `inv(a) @ a ≈ I`. LU with partial pivoting in float64.
 *
 * ```ts
 * bn.linalg.inv(bn.tensor([[4, 7], [2, 6]])).toArray(); // [[0.6, -0.7], [-0.2, 0.4]]
 * ```
 * @throws ShapeError for fewer than 2 dimensions or non-square matrices; LinAlgError for a singular
 * matrix (an exactly zero pivot); DTypeError for a non-tensor.
 */
export function inv(a: Tensor): Tensor {
  return squareOp(a, "inv");
}

/**
 * The determinant of each square matrix (shape: the batch axes). From the LU factorisation: the
 * product of U's diagonal and the sign of the row permutation; 0 for a singular matrix (no error,
 * as NumPy). The product is float64, so it overflows only when the result dtype does.
 * @throws ShapeError for fewer than 2 dimensions or non-square matrices.
 */
export function det(a: Tensor): Tensor {
  return squareOp(a, "det");
}

/**
 * The lower Cholesky factor L of each symmetric positive definite matrix: `a = L Lᵀ`. Only the
 * lower triangle of `a` is read (NumPy's default); the result's upper triangle is zero.
 * @throws ShapeError for non-square input; LinAlgError when a matrix is not positive definite.
 */
export function cholesky(a: Tensor): Tensor {
  return squareOp(a, "cholesky");
}

/**
 * Solves `a @ x = b` for x. `a` is [..., n, n]; `b` is a vector [n] (when it is 1-D, as NumPy 2)
 * or a stack of matrices [..., n, k]; batch axes broadcast. The result has b's shape with the
 * broadcast batch.
 *
 * ```ts
 * bn.linalg.solve(bn.tensor([[3, 1], [1, 2]]), bn.tensor([9, 8])).toArray(); // [2, 3]
 * ```
 * @throws ShapeError for non-square `a`, a b whose rows differ from n, or batches that do not
 * broadcast; LinAlgError for a singular matrix.
 */
export function solve(a: Tensor, b: Tensor): Tensor {
  const op = "solve";
  const ta = checkMatrix(a, op, true);
  const tb = checkTensor(b, op, "b");
  if (tb._live(op).device !== ta._live(op).device) throw new DeviceError(op, `b is on ${tb.device} but a is on ${ta.device}; move it with to()`);
  const n = ta._shape[ta._shape.length - 1]!;
  const context = `a: ${desc(ta)}, b: ${desc(tb)}`;
  const aBatch = ta._shape.slice(0, -2);
  const vector = tb._shape.length === 1;
  if (tb._shape.length === 0) throw new ShapeError(op, `b must be a vector [n] or matrices [..., n, k], got a scalar (${context})`);
  const bRows = vector ? tb._shape[0]! : tb._shape[tb._shape.length - 2]!;
  if (bRows !== n) throw new ShapeError(op, `b must have ${n} rows to match a, got ${bRows} (${context})`);
  const k = vector ? 1 : tb._shape[tb._shape.length - 1]!;
  const bBatch = vector ? [] : tb._shape.slice(0, -2);
  let batch: number[];
  try {
    batch = broadcastShapes(aBatch, bBatch, op);
  } catch {
    throw new ShapeError(op, `batch shapes ${fmtShape(aBatch)} and ${fmtShape(bBatch)} do not broadcast (${context})`);
  }
  // One dtype for both operands.
  const temps: Tensor[] = [];
  try {
    let xa = ta;
    let xb = tb;
    if (ta._dt !== tb._dt) {
      const d = promoteTypes(ta._dt.name, tb._dt.name);
      if (ta._dt.name !== d) temps.push((xa = ta.astype(d)));
      if (tb._dt.name !== d) temps.push((xb = tb.astype(d)));
    }
    const od = outDtype(xa._dt);
    const out = alloc(vector ? [...batch, n] : [...batch, n, k], od, ta, op);
    const stA = padBatch(xa._shape, xa._st(), batch);
    const sb = xb._st();
    const stB = vector ? [...batch.map(() => 0), sb[0]!, 0] : padBatch(xb._shape, sb, batch);
    run({ op: OP.solve, name: op, a: xa, shape: [...batch, n, n], aStrides: stA, b: xb, bStrides: stB, k, outs: [out], context });
    return out;
  } finally {
    for (const t of temps) t.dispose();
  }
}

/** Strides of a [..., r, c] tensor over a broadcast batch (stride 0 on broadcast batch axes). */
function padBatch(shape: readonly number[], strides: readonly number[], batch: readonly number[]): number[] {
  const nb = shape.length - 2;
  const off = batch.length - nb;
  const out = batch.map((d, i) => {
    const j = i - off;
    return j < 0 || shape[j] === 1 ? 0 : strides[j]!;
  });
  return [...out, strides[nb]!, strides[nb + 1]!];
}

/**
 * QR decomposition by Householder reflections: `a = Q R` with Q's columns orthonormal and R upper
 * triangular. `mode: "reduced"` (default) or `"complete"` (see {@link QrOptions}). The signs follow
 * LAPACK (R's diagonal may be negative), as NumPy.
 * @throws ShapeError for fewer than 2 dimensions; ValueError for an unknown mode.
 */
export function qr(a: Tensor, opts?: QrOptions): QrResult {
  const op = "qr";
  const t = checkMatrix(a, op, false);
  const { mode = "reduced" } = checkOpts(opts, op) as QrOptions;
  if (mode !== "reduced" && mode !== "complete") throw new ValueError(op, `mode must be "reduced" or "complete", got ${String(mode)}`);
  const shape = t._shape;
  const batch = shape.slice(0, -2);
  const m = shape[shape.length - 2]!;
  const n = shape[shape.length - 1]!;
  const mc = mode === "complete" ? m : Math.min(m, n);
  const od = outDtype(t._dt);
  const Q = alloc([...batch, m, mc], od, t, op);
  let R: Tensor;
  try {
    R = alloc([...batch, mc, n], od, t, op);
  } catch (e) {
    Q.dispose();
    throw e;
  }
  run({ op: OP.qr, name: op, a: t, shape: shape.slice(), aStrides: t._st(), flags: mode === "complete" ? 1 : 0, outs: [Q, R], context: desc(t) });
  return { Q, R };
}

/**
 * Singular value decomposition: `a = U diag(S) Vt`, S descending and non-negative. With
 * `fullMatrices` (default true, as NumPy) U is [..., m, m] and Vt [..., n, n]; otherwise
 * [..., m, k] and [..., k, n], k = min(m, n). The signs of singular vectors are not unique.
 * @throws ShapeError for fewer than 2 dimensions; LinAlgError when the iteration does not converge
 * (NaN or Inf in the input).
 */
export function svd(a: Tensor, opts?: SvdOptions): SvdResult {
  const op = "svd";
  const t = checkMatrix(a, op, false);
  const { fullMatrices = true } = checkOpts(opts, op) as SvdOptions;
  if (typeof fullMatrices !== "boolean") throw new ValueError(op, `fullMatrices must be a boolean, got ${String(fullMatrices)}`);
  const shape = t._shape;
  const batch = shape.slice(0, -2);
  const m = shape[shape.length - 2]!;
  const n = shape[shape.length - 1]!;
  const k = Math.min(m, n);
  const od = outDtype(t._dt);
  const outs: Tensor[] = [];
  try {
    outs.push(alloc([...batch, m, fullMatrices ? m : k], od, t, op));
    outs.push(alloc([...batch, k], od, t, op));
    outs.push(alloc([...batch, fullMatrices ? n : k, n], od, t, op));
  } catch (e) {
    for (const o of outs) o.dispose();
    throw e;
  }
  run({ op: OP.svd, name: op, a: t, shape: shape.slice(), aStrides: t._st(), flags: (fullMatrices ? 1 : 0) | 2, outs, context: desc(t) });
  return { U: outs[0]!, S: outs[1]!, Vt: outs[2]! };
}

/**
 * The singular values of each matrix, descending ([..., min(m, n)]): {@link svd} without the
 * vectors (NumPy 2's `svdvals`), which is much cheaper.
 * @throws ShapeError for fewer than 2 dimensions; LinAlgError when the iteration does not converge.
 */
export function svdvals(a: Tensor): Tensor {
  const op = "svdvals";
  const t = checkMatrix(a, op, false);
  const shape = t._shape;
  const k = Math.min(shape[shape.length - 2]!, shape[shape.length - 1]!);
  const S = alloc([...shape.slice(0, -2), k], outDtype(t._dt), t, op);
  run({ op: OP.svd, name: op, a: t, shape: shape.slice(), aStrides: t._st(), flags: 0, outs: [S], context: desc(t) });
  return S;
}

/**
 * Eigenvalues (ascending) and eigenvectors (columns) of each symmetric matrix: `a = V diag(w) Vᵀ`.
 * Only the lower triangle is read (NumPy's default `UPLO="L"`). The signs of eigenvectors, and
 * the basis of a repeated eigenvalue's eigenspace, are not unique.
 * @throws ShapeError for non-square input; LinAlgError when the iteration does not converge.
 */
export function eigh(a: Tensor): EighResult {
  const op = "eigh";
  const t = checkMatrix(a, op, true);
  const shape = t._shape;
  const od = outDtype(t._dt);
  const w = alloc(shape.slice(0, -1), od, t, op);
  let v: Tensor;
  try {
    v = alloc(shape.slice(), od, t, op);
  } catch (e) {
    w.dispose();
    throw e;
  }
  run({ op: OP.eigh, name: op, a: t, shape: shape.slice(), aStrides: t._st(), outs: [w, v], context: desc(t) });
  return { eigenvalues: w, eigenvectors: v };
}

/**
 * Vector or matrix norm, as `numpy.linalg.norm(x, ord, axis, keepdims)`.
 *
 * - `axis` omitted: with `ord` omitted, the 2-norm of all elements (Frobenius for a matrix);
 *   with `ord` given, x must be 1-D (vector norm) or 2-D (matrix norm).
 * - `axis` a number: vector norms along it. `ord`: 2 (default), 1, Infinity (max |x|), -Infinity
 *   (min |x|), 0 (count of non-zeros), any other p: `sum(|x|^p)^(1/p)`.
 * - `axis` a pair: matrix norms over those two axes. `ord`: "fro" (default), "nuc" (sum of
 *   singular values), 1 / -1 (max / min column sum of |x|), 2 / -2 (largest / smallest singular
 *   value), Infinity / -Infinity (max / min row sum).
 * - `keepdims`: keep the reduced axes as size 1.
 *
 * The result has the input's float dtype (f32 for integer inputs); sums run in float64.
 * @throws ValueError for an order that does not apply, duplicate axes, or a max/min over nothing;
 * ShapeError for an axis out of range; LinAlgError if an SVD-based norm does not converge.
 */
export function norm(x: Tensor, ord?: NormOrder | null, axis?: number | readonly number[] | null, keepdims = false): Tensor {
  const op = "norm";
  const t = checkTensor(x, op);
  const nd = t._shape.length;
  if (typeof keepdims !== "boolean") throw new ValueError(op, `keepdims must be a boolean, got ${String(keepdims)}`);
  if (ord !== undefined && ord !== null && typeof ord !== "number" && ord !== "fro" && ord !== "nuc") {
    throw new ValueError(op, `invalid norm order ${show(ord)}`);
  }
  if (typeof ord === "number" && Number.isNaN(ord)) throw new ValueError(op, "the norm order is NaN");
  let axes: number[];
  if (axis === undefined || axis === null) {
    if (ord === undefined || ord === null) {
      // The 2-norm of every element: a flat vector.
      const flat = t.reshape([-1]);
      try {
        const out = vectorNorm(flat, 2, 0, op, desc(t));
        if (!keepdims) return out;
        try {
          return out.reshape(t._shape.map(() => 1));
        } finally {
          out.dispose();
        }
      } finally {
        flat.dispose();
      }
    }
    if (nd === 1) axes = [0];
    else if (nd === 2) axes = [0, 1];
    else throw new ValueError(op, `an order needs a 1-D or 2-D input or an axis, got ${desc(t)}`);
  } else if (typeof axis === "number") {
    axes = [axis];
  } else if (Array.isArray(axis)) {
    axes = [...axis];
  } else {
    throw new ValueError(op, `axis must be a number, a pair of numbers or null, got ${String(axis)}`);
  }
  axes = axes.map((a) => normAxis(a, nd, op));
  let out: Tensor;
  if (axes.length === 1) {
    if (typeof ord === "string") throw new ValueError(op, `invalid norm order "${ord}" for vectors`);
    out = vectorNorm(t, ord ?? 2, axes[0]!, op, desc(t));
  } else if (axes.length === 2) {
    if (axes[0] === axes[1]) throw new ValueError(op, `duplicate axes [${axes.join(", ")}]`);
    out = matrixNorm(t, ord ?? "fro", axes[0]!, axes[1]!, op);
  } else {
    throw new ValueError(op, `needs one axis (vector norm) or two (matrix norm), got ${axes.length}`);
  }
  if (!keepdims) return out;
  try {
    return out.reshape(t._shape.map((d, i) => (axes.includes(i) ? 1 : d)));
  } finally {
    out.dispose();
  }
}

function vectorNorm(t: Tensor, p: number, ax: number, op: string, context: string): Tensor {
  const shape = t._shape;
  const st = t._st();
  const len = shape[ax]!;
  if (len === 0 && !Number.isFinite(p)) throw new ValueError(op, `the ${p > 0 ? "max" : "min"} of |x| over an empty axis has no value (${context})`);
  const batch = shape.filter((_, i) => i !== ax);
  const bst = st.filter((_, i) => i !== ax);
  const out = alloc(batch, outDtype(t._dt), t, op);
  run({ op: OP.normVector, name: op, a: t, shape: [...batch, 1, len], aStrides: [...bst, 0, st[ax]!], p, outs: [out], context: `${context}, ord ${p}` });
  return out;
}

function matrixNorm(t: Tensor, ord: NormOrder, r: number, c: number, op: string): Tensor {
  const code = MATRIX_ORD[String(ord) as keyof typeof MATRIX_ORD];
  if (code === undefined) throw new ValueError(op, `invalid norm order ${String(ord)} for matrices (use "fro", "nuc", ±1, ±2 or ±Infinity)`);
  const shape = t._shape;
  const st = t._st();
  const m = shape[r]!;
  const n = shape[c]!;
  if (m * n === 0 && ord !== "fro" && ord !== "nuc") {
    throw new ValueError(op, `order ${String(ord)} of an empty ${m}x${n} matrix has no value (${desc(t)})`);
  }
  const keep = shape.map((_, i) => i).filter((i) => i !== r && i !== c);
  const out = alloc(
    keep.map((i) => shape[i]!),
    outDtype(t._dt),
    t,
    op,
  );
  run({
    op: OP.normMatrix,
    name: op,
    a: t,
    shape: [...keep.map((i) => shape[i]!), m, n],
    aStrides: [...keep.map((i) => st[i]!), st[r]!, st[c]!],
    flags: code,
    outs: [out],
    context: `${desc(t)}, ord ${String(ord)}, axes [${r}, ${c}]`,
  });
  return out;
}

/**
 * The linear algebra namespace, `bn.linalg`: {@link inv}, {@link solve}, {@link det},
 * {@link cholesky}, {@link qr}, {@link svd}, {@link svdvals}, {@link eigh}, {@link norm}.
 */
export const linalg = { inv, solve, det, cholesky, qr, svd, svdvals, eigh, norm } as const;
