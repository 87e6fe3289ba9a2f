/**
 * 8-bit quantization of activations: `int8(x)` (BitNet b1.58's absmax rule, and an asymmetric
 * uint8 variant) and the {@link QuantizedTensor} it returns.
 *
 * Conventions (the same in both modes):
 * - `.scale` is the *quantization multiplier* s (f32): a value x quantizes to about `x · s`
 *   (plus the zero point), and {@link QuantizedTensor.dequantize} *divides* by s:
 *   `x ≈ (q − zeroPoint) / s`. For the symmetric rule s = 127 / max|x|, as BitNet writes it.
 * - Every step runs in f32 (f16 and bf16 inputs are widened to f32 first, exactly) with
 *   round-half-to-even, composed of this library's elementwise ops, so the symmetric values are
 *   bit-identical to the native ternary matmul's per-token activation quantizer.
 * - `granularity: "tensor"` gives one scale (shape `[]`); `"token"` one scale per row of the
 *   last axis (shape `[...x.shape.slice(0, -1), 1]`, so it broadcasts against `values`).
 * @module
 */
import { type DType, dtypeInfo } from "../dtype.ts";
import { DTypeError, DisposedTensorError, ShapeError, ValueError, fmtShape, show } from "../errors.ts";
import { Tensor } from "../tensor.ts";
import { zeros } from "../creation.ts";
import { abs, add, clip, div, eq, maximum, minimum, mul, round, sub, where } from "../ops/elementwise.ts";
import { max, min } from "../ops/reduce.ts";

/** Where the scales are shared: the whole tensor, or each row of the last axis (each token). */
export type Int8Granularity = "tensor" | "token";

/** Options of {@link int8}. */
export interface Int8Options {
  /** `"tensor"` (default): one scale; `"token"`: one scale per row of the last axis. */
  granularity?: Int8Granularity;
  /** `true` (default): absmax to int8 in [-127, 127], zero point 0; `false`: min/max to uint8 with a zero point. */
  symmetric?: boolean;
}

const OP = "quant.int8";
/** The largest finite f32. */
const F32_MAX = 3.4028234663852886e38;
const I32 = dtypeInfo("i32");

/**
 * An affine 8-bit tensor: `values` (i8 for the symmetric rule, u8 for the asymmetric one) with
 * a scale and zero point per tensor or per row. Made by {@link int8}; owns its three tensors
 * (`dispose()` or `using` releases them).
 *
 * The value an element stands for is `(values − zeroPoint) / scale`: **`.scale` is the
 * quantization multiplier** (`127 / max|x|` for the symmetric rule), not its inverse.
 */
export class QuantizedTensor {
  /** The quantized values: i8 in [-127, 127] (symmetric) or u8 in [0, 255] (asymmetric); the shape of the input. */
  readonly values: Tensor;
  /**
   * f32 quantization multipliers: shape `[]` for `"tensor"`, `[...lead, 1]` for `"token"` (it
   * broadcasts against `values`). A value x was quantized as `round(x · scale) + zeroPoint`.
   */
  readonly scale: Tensor;
  /** i32 zero points, the shape of `scale`: all 0 for the symmetric rule, in [0, 255] otherwise. */
  readonly zeroPoint: Tensor;
  /** Whether the scales are per tensor or per row of the last axis. */
  readonly granularity: Int8Granularity;
  /** Whether this is the symmetric (int8, zero point 0) rule. */
  readonly symmetric: boolean;
  #disposed = false;

  /**
   * Wraps quantized parts, taking ownership of the three tensors (they are disposed with this
   * object). Checks dtypes (values i8 or u8, scale f32, zeroPoint i32), that `zeroPoint` has the
   * shape of `scale`, and that `scale` has the shape the granularity implies for `values`.
   * @throws DTypeError, ShapeError, ValueError (unknown granularity).
   */
  constructor(values: Tensor, scale: Tensor, zeroPoint: Tensor, granularity: Int8Granularity) {
    const op = "QuantizedTensor";
    for (const [t, what] of [[values, "values"], [scale, "scale"], [zeroPoint, "zeroPoint"]] as const) {
      if (!(t instanceof Tensor)) throw new DTypeError(op, `${what} must be a Tensor, got ${t === null ? "null" : typeof t}`);
      t._live(op);
    }
    if (granularity !== "tensor" && granularity !== "token") throw new ValueError(op, `granularity must be "tensor" or "token", got ${show(granularity)}`);
    const vd = values._dt.name;
    if (vd !== "i8" && vd !== "u8") throw new DTypeError(op, `values must be i8 or u8, got ${vd} ${fmtShape(values._shape)}`);
    if (scale._dt.name !== "f32") throw new DTypeError(op, `scale must be f32, got ${scale._dt.name} ${fmtShape(scale._shape)}`);
    if (zeroPoint._dt.name !== "i32") throw new DTypeError(op, `zeroPoint must be i32, got ${zeroPoint._dt.name} ${fmtShape(zeroPoint._shape)}`);
    if (granularity === "token" && values._shape.length === 0) throw new ShapeError(op, `granularity "token" needs at least one axis; values are 0-d`);
    const want = scaleShape(values._shape, granularity);
    if (!sameShape(scale._shape, want)) throw new ShapeError(op, `values ${fmtShape(values._shape)} with granularity "${granularity}" need a scale of shape ${fmtShape(want)}, got ${fmtShape(scale._shape)}`);
    if (!sameShape(zeroPoint._shape, want)) throw new ShapeError(op, `zeroPoint must have the shape of scale ${fmtShape(want)}, got ${fmtShape(zeroPoint._shape)}`);
    this.values = values;
    this.scale = scale;
    this.zeroPoint = zeroPoint;
    this.granularity = granularity;
    this.symmetric = vd === "i8";
  }

  /** The shape of the quantized tensor (a copy). */
  get shape(): number[] {
    return this.values._shape.slice();
  }

  /** Whether `dispose()` was called. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /**
   * The float tensor these values stand for: `(values − zeroPoint) / scale`, computed in f32
   * (the subtraction is exact; one f32 division), then rounded to `dtype` (ties to even).
   *
   * Each finite element is within `0.5 / scale` of the input (plus f32 rounding of the products,
   * a few units in 2⁻²⁴ of the row's max), except that an asymmetric element clamped at 0 or 255
   * can be a full step `1 / scale` off. A row quantized from all zeros gives exact zeros; a row
   * that held NaN or ±Infinity gives NaN throughout. Inputs within a step of the largest f32
   * (±3.4e38) may come back as ±Infinity (the division overflows).
   * @param dtype "f32" (default), "f16" or "bf16".
   * @returns a new tensor of `values`' shape (the caller disposes it).
   * @throws DisposedTensorError after `dispose()`, DTypeError for a non-float dtype.
   */
  dequantize(dtype: DType = "f32"): Tensor {
    const op = "QuantizedTensor.dequantize";
    if (this.#disposed) throw new DisposedTensorError(op, `quantized tensor ${fmtShape(this.values._shape)} was used after dispose()`);
    const dt = dtypeInfo(dtype, op);
    if (!dt.isFloat) throw new DTypeError(op, `dequantizes to f32, f16 or bf16, not ${dt.name}`);
    const temps: Tensor[] = [];
    try {
      let v = this.values.astype("f32");
      temps.push(v);
      if (!this.symmetric) {
        const zp = this.zeroPoint.astype("f32");
        temps.push(zp);
        v = sub(v, zp);
        temps.push(v);
      }
      const out = div(v, this.scale);
      if (dt.name === "f32") return out;
      temps.push(out);
      return out.astype(dt.name);
    } finally {
      for (const t of temps) t.dispose();
    }
  }

  /** Releases `values`, `scale` and `zeroPoint` (each once). Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.values.dispose();
    this.scale.dispose();
    this.zeroPoint.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    if (this.#disposed) return `QuantizedTensor(disposed)`;
    return `QuantizedTensor(${this.values._dt.name} ${fmtShape(this.values._shape)}, ${this.symmetric ? "symmetric" : "asymmetric"}, per ${this.granularity})`;
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** `[]` per tensor; the leading shape plus a 1 per token. */
function scaleShape(shape: readonly number[], g: Int8Granularity): number[] {
  return g === "tensor" ? [] : [...shape.slice(0, -1), 1];
}

function readOptions(opts: unknown): { granularity: Int8Granularity; symmetric: boolean } {
  if (opts === undefined || opts === null) return { granularity: "tensor", symmetric: true };
  if (typeof opts !== "object" || Array.isArray(opts)) {
    throw new ValueError(OP, `options must be an object like { granularity, symmetric }, got ${Array.isArray(opts) ? "an array" : typeof opts}`);
  }
  for (const k of Object.keys(opts)) {
    if (k !== "granularity" && k !== "symmetric") throw new ValueError(OP, `unknown option ${show(k)} (expected granularity, symmetric)`);
  }
  const o = opts as { granularity?: unknown; symmetric?: unknown };
  const g = o.granularity ?? "tensor";
  if (g !== "tensor" && g !== "token") throw new ValueError(OP, `granularity must be "tensor" or "token", got ${show(g)}`);
  const s = o.symmetric ?? true;
  if (typeof s !== "boolean") throw new ValueError(OP, `symmetric must be a boolean, got ${typeof s}`);
  return { granularity: g, symmetric: s };
}

/**
 * Quantizes a float tensor to 8 bits (BitNet b1.58's activation quantizer by default).
 *
 * **Symmetric** (default), per tensor or per row of the last axis (`granularity: "token"`), all
 * in f32:
 * ```
 * m = max(|x|)              over the granularity
 * s = 127 / m               (f32 division; s = +Infinity when m = 0)
 * q = clamp(rint(x · s), -127, 127) → i8   (f32 product, round half to even; NaN → 0)
 * scale = (m == 0 ? 1 : s),  zeroPoint = 0
 * ```
 * These `q` are bit-identical to the native ternary matmul's activation quantizer. A row of
 * zeros gives q = 0 and scale 1 (so it dequantizes to exact zeros). A max below
 * 127 / 3.4e38 ≈ 3.7e-37 (subnormals) overflows s to +Infinity: such a row gives ±127 where
 * x ≠ 0 and 0 elsewhere, and dequantizes to zeros.
 *
 * **Asymmetric** (`symmetric: false`), uint8 with a zero point; the range always includes 0
 * (as PyTorch's observers do), so 0 is exact:
 * ```
 * lo = min(min(x), 0),  hi = max(max(x), 0)      over the granularity
 * s  = min(127.5 / (hi/2 − lo/2), 3.4028235e38)  (= 255 / (hi − lo) without overflow; f32)
 * s  = 1 where hi/2 − lo/2 == 0 (an all-zero row, or a range of 2⁻¹⁴⁹, which halves to 0)
 * zp = clamp(rint(−lo · s), 0, 255)
 * q  = clamp(rint(x · s) + zp, 0, 255) → u8
 * scale = s,  zeroPoint = zp (i32)
 * ```
 *
 * **NaN and infinities.** A NaN anywhere in a row (a tensor) makes its max NaN, so its scale is
 * NaN, every value in it 0 and its dequantization NaN. An infinity makes the max +Infinity, so
 * s = 0, every value 0 (∞ · 0 is NaN, stored as 0), and the dequantization 0 / 0 = NaN.
 *
 * **Empty** tensors (or rows of length 0) count as all zeros: scale 1, zero point 0.
 *
 * `.scale` is the quantization multiplier, so `x ≈ (values − zeroPoint) / scale`
 * ({@link QuantizedTensor.dequantize}). The input is never modified.
 * @param x a float tensor (f32, f16 or bf16; any strides).
 * @returns a new {@link QuantizedTensor} (dispose it).
 * @throws DTypeError (x not a float tensor), ShapeError (0-d x with granularity "token"),
 *   ValueError (unknown options), DisposedTensorError.
 */
export function int8(x: Tensor, opts?: Int8Options): QuantizedTensor {
  if (!(x instanceof Tensor)) throw new DTypeError(OP, `x must be a Tensor, got ${x === null ? "null" : typeof x}`);
  const dev = x._live(OP).device;
  const { granularity, symmetric } = readOptions(opts);
  if (!x._dt.isFloat) throw new DTypeError(OP, `x must be a float tensor (f32, f16 or bf16), got ${x._dt.name} ${fmtShape(x._shape)}`);
  if (granularity === "token" && x._shape.length === 0) {
    throw new ShapeError(OP, `granularity "token" quantizes rows of the last axis; x (${x._dt.name} ${fmtShape(x._shape)}) is 0-d`);
  }
  const sShape = scaleShape(x._shape, granularity);
  const red = granularity === "tensor" ? { axis: null, keepdims: false } : { axis: -1, keepdims: true };
  const empty = x._size === 0;
  const temps: Tensor[] = [];
  const t = (v: Tensor): Tensor => {
    temps.push(v);
    return v;
  };
  const results: Tensor[] = [];
  try {
    const xf = t(x.astype("f32")); // exact for f16/bf16; a contiguous copy for f32
    let scale: Tensor;
    let zeroPoint: Tensor;
    let values: Tensor;
    if (symmetric) {
      const m = empty ? t(zeros(sShape)) : t(max(t(abs(xf)), red));
      const s = t(div(127, m));
      scale = where(t(eq(m, 0)), 1, s);
      results.push(scale);
      values = t(clip(t(round(t(mul(xf, scale)))), -127, 127)).astype("i8");
      results.push(values);
      zeroPoint = Tensor._alloc(sShape, I32, dev, OP, true);
      results.push(zeroPoint);
    } else {
      const lo = empty ? t(zeros(sShape)) : t(minimum(t(min(xf, red)), 0));
      const hi = empty ? t(zeros(sShape)) : t(maximum(t(max(xf, red)), 0));
      const half = t(sub(t(mul(hi, 0.5)), t(mul(lo, 0.5))));
      const s = t(minimum(t(div(127.5, half)), F32_MAX));
      scale = where(t(eq(half, 0)), 1, s);
      results.push(scale);
      const zpf = t(clip(t(round(t(mul(t(mul(lo, -1)), scale)))), 0, 255));
      const qf = t(clip(t(add(t(round(t(mul(xf, scale)))), zpf)), 0, 255));
      values = qf.astype("u8");
      results.push(values);
      zeroPoint = zpf.astype("i32");
      results.push(zeroPoint);
    }
    return new QuantizedTensor(values, scale, zeroPoint, granularity);
  } catch (e) {
    for (const r of results) r.dispose();
    throw e;
  } finally {
    for (const v of temps) v.dispose();
  }
}
