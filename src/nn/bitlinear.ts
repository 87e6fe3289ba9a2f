/**
 * {@link BitLinear}: the BitNet b1.58 linear layer. Float master weights, ternary (absmean)
 * quantized weights cached beside them, int8 (absmax, per token) activations, one rescale.
 *
 * ```ts
 * using layer = new bn.nn.BitLinear(512, 256, { seed: 0 });
 * using x = bn.randn([4, 512], { seed: 1 });
 * using y = layer.forward(x); // f32 [4, 256]
 * ```
 * @module
 */
import { DTypeError, ShapeError, ValueError, fmtShape, show } from "../errors.ts";
import { ones, rand, zeros } from "../creation.ts";
import { isGradEnabled, noGrad, record } from "../autograd/graph.ts";
import { add, add_ } from "../ops/elementwise.ts";
import { matmul } from "../ops/matmul.ts";
import { layerNorm, rmsNorm } from "../ops/nn.ts";
import { int8 } from "../quant/int8.ts";
import { type TernaryFormat, type TernaryGranularity, TernaryTensor, fakeTernary, ternary, ternaryMatmul } from "../quant/ternary.ts";
import { Tensor } from "../tensor.ts";
import { Module } from "./module.ts";

/** The normalisation a {@link BitLinear} applies to its input before quantizing it. */
export type BitLinearNorm = "rms" | "layer" | "none";

/** Options of `new BitLinear(...)` and {@link BitLinear.fromFloat}. */
export interface BitLinearOptions {
  /**
   * Whether the layer adds a learnable bias (f32 `[out]`, initialised like PyTorch's
   * `nn.Linear`). Default `false`, as in BitNet b1.58 (PyTorch's `nn.Linear` defaults to true).
   * For {@link BitLinear.fromFloat} a bias is present when one is passed; `bias: true` without
   * one gives a zero bias.
   */
  bias?: boolean;
  /**
   * Normalisation over the last axis before the activations are quantized: `"rms"` (default;
   * BitNet's SubLN / RMSNorm), `"layer"` (LayerNorm), or `"none"`.
   */
  norm?: BitLinearNorm;
  /** The norm's epsilon (default 1e-5 for both "rms" and "layer"). */
  eps?: number;
  /**
   * Whether the norm has learnable per-feature parameters (default `true`): `normWeight` (f32
   * `[in]`, ones) and, for `"layer"`, `normBias` (f32 `[in]`, zeros). Initialised so, the norm is
   * exactly the parameter-free one. `false`: the norm has no parameters.
   */
  elementwiseAffine?: boolean;
  /** Packing of the cached ternary weights (default `"i2"`; the tq formats need `in % 256 == 0`). */
  format?: TernaryFormat;
  /** Which weights share a ternary scale (default `"tensor"`, as BitNet b1.58). */
  granularity?: TernaryGranularity;
  /** Seed of the initial weights (default: the global generator, see `bn.manualSeed`). Ignored by `fromFloat`. */
  seed?: number;
}

const OPTION_KEYS = new Set(["bias", "norm", "eps", "elementwiseAffine", "format", "granularity", "seed"]);

/** Weights handed from `fromFloat` to the constructor (module-private). */
let adopt: { weight: Tensor; bias: Tensor | null } | null = null;

function checkFeatures(n: unknown, what: string, op: string): number {
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1) throw new ValueError(op, `${what} must be a positive integer, got ${String(n)}`);
  return n;
}

function checkGranularity(g: unknown, inFeatures: number, op: string): TernaryGranularity {
  if (g === undefined || g === "tensor" || g === "channel") return g ?? "tensor";
  if (typeof g === "object" && g !== null && "group" in g) {
    const group = (g as { group: unknown }).group;
    if (typeof group !== "number" || !Number.isInteger(group) || group <= 0 || group % 256 !== 0 || inFeatures % group !== 0) {
      throw new ShapeError(op, `a ternary group must be a positive multiple of 256 that divides inFeatures ${inFeatures}, got ${String(group)}`);
    }
    return { group };
  }
  throw new ValueError(op, `granularity must be "tensor", "channel" or { group: n }, got ${show(g)}`);
}

function checkOptions(opts: unknown, op: string): BitLinearOptions {
  if (opts === undefined || opts === null) return {};
  if (typeof opts !== "object" || Array.isArray(opts) || opts instanceof Tensor) throw new ValueError(op, `options must be an object, got ${Array.isArray(opts) ? "an array" : typeof opts}`);
  for (const key of Object.keys(opts)) if (!OPTION_KEYS.has(key)) throw new ValueError(op, `unknown option "${key}"`);
  const o = opts as BitLinearOptions;
  if (o.bias !== undefined && typeof o.bias !== "boolean") throw new ValueError(op, `bias must be a boolean, got ${String(o.bias)}`);
  if (o.elementwiseAffine !== undefined && typeof o.elementwiseAffine !== "boolean") throw new ValueError(op, `elementwiseAffine must be a boolean, got ${String(o.elementwiseAffine)}`);
  if (o.norm !== undefined && o.norm !== "rms" && o.norm !== "layer" && o.norm !== "none") throw new ValueError(op, `norm must be "rms", "layer" or "none", got ${show(o.norm)}`);
  if (o.eps !== undefined && (typeof o.eps !== "number" || !Number.isFinite(o.eps) || o.eps < 0)) throw new ValueError(op, `eps must be a finite number ≥ 0, got ${String(o.eps)}`);
  if (o.format !== undefined && o.format !== "i2" && o.format !== "tq2_0" && o.format !== "tq1_0") throw new ValueError(op, `unknown ternary format ${show(o.format)} (expected "i2", "tq2_0" or "tq1_0")`);
  return o;
}

/**
 * The BitNet b1.58 linear layer, `y = ternaryMatmul(norm(x), quantize(W)) + b`:
 *
 * 1. `norm(x)` over the last axis (RMSNorm by default, optionally with a learnable weight), in
 *    f32 whatever the input's float dtype;
 * 2. the normalised activations are quantized to int8 per token (absmax: s = 127 / max|x|) and
 *    multiplied in integers with the ternary weights (`bn.quant.ternaryMatmul`), then rescaled
 *    once: `out = isum · scale_w / s`;
 * 3. the optional bias is added in f32.
 *
 * Parameters. The layer keeps float master weights for training: {@link weight} (f32
 * `[out, in]`, initialised like PyTorch's `nn.Linear`, uniform in ±1/√in), {@link bias} (f32
 * `[out]` or null), {@link normWeight} / {@link normBias} (the norm's, or null). They are
 * tensors owned by the layer that require grad: update them in place (optimizers do; do not
 * dispose or replace them); `parameters()` lists them.
 *
 * Training and inference. In training mode (the default, as every {@link Module}) with grad mode
 * on, forward runs quantization-aware training: the same quantizers, the quantized values
 * multiplied as floats, and straight-through gradients to the normalised activations and the
 * float weights (BitNet b1.58's recipe). In `eval()` mode or inside `bn.noGrad`, forward runs
 * the packed ternary kernel on int8 activations (no graph). Both give the same values up to f32
 * rounding.
 *
 * Quantized weights. {@link quantized} is a {@link TernaryTensor} (absmean, per tensor, "i2" by
 * default) built from `weight` on first use and cached; it is rebuilt when `weight` was changed
 * in place through the library (optimizer steps, in-place ops, `loadStateDict`). After writing
 * `weight.data` directly, call {@link requantize}.
 *
 * Dtypes. `x` may be f32, f16 or bf16 (mixed precision: the norm and every accumulation run in
 * f32 or integers). The output is f32 for f32 input and the input's dtype for f16/bf16 (as
 * PyTorch autocast returns a linear layer's result in the autocast dtype).
 *
 * Lifetime. `dispose()` (or `using`) releases every tensor of the layer once.
 */
export class BitLinear extends Module {
  /** Input features (the last axis of `x`). */
  readonly inFeatures: number;
  /** Output features (the last axis of the result). */
  readonly outFeatures: number;
  /** The normalisation applied before quantizing the activations. */
  readonly norm: BitLinearNorm;
  /** The norm's epsilon. */
  readonly eps: number;
  /** Packing of the cached ternary weights. */
  readonly format: TernaryFormat;
  /** Which weights share a ternary scale. */
  readonly granularity: TernaryGranularity;
  /** Float master weights, f32 `[out, in]` (owned by the layer; optimizers update it in place). */
  readonly weight: Tensor;
  /** Bias, f32 `[out]`, or null (owned by the layer). */
  readonly bias: Tensor | null;
  /** The norm's per-feature scale, f32 `[in]` (ones at first), or null for `norm: "none"` or `elementwiseAffine: false`. */
  readonly normWeight: Tensor | null;
  /** LayerNorm's per-feature shift, f32 `[in]` (zeros at first), or null. */
  readonly normBias: Tensor | null;
  #q: TernaryTensor | null = null;
  /** Storage of `weight` and its version when #q was built. */
  #qStorage: object | null = null;
  #qVersion = -1;

  /**
   * A layer with fresh weights, uniform in [-1/√in, 1/√in) (PyTorch's `nn.Linear` rule; so is
   * the bias, when asked for). With `seed`, the weights are reproducible (the bias uses seed + 1).
   * @throws ValueError (sizes not positive integers, bad options), ShapeError (a tq format with
   *   `inFeatures` not a multiple of 256).
   */
  constructor(inFeatures: number, outFeatures: number, opts: BitLinearOptions = {}) {
    super();
    const op = "BitLinear";
    const init = adopt;
    adopt = null;
    const made: Tensor[] = [];
    const keep = <T extends Tensor>(t: T): T => {
      made.push(t);
      return t;
    };
    try {
      this.inFeatures = checkFeatures(inFeatures, "inFeatures", op);
      this.outFeatures = checkFeatures(outFeatures, "outFeatures", op);
      const o = checkOptions(opts, op);
      this.norm = o.norm ?? "rms";
      this.eps = o.eps ?? 1e-5;
      this.format = o.format ?? "i2";
      this.granularity = checkGranularity(o.granularity, inFeatures, op);
      if (this.format !== "i2" && inFeatures % 256 !== 0) {
        throw new ShapeError(op, `${this.format} packs rows of whole 256-weight blocks; inFeatures ${inFeatures} is not a multiple of 256 (use format "i2")`);
      }
      if (o.seed !== undefined && (typeof o.seed !== "number" || !Number.isSafeInteger(o.seed) || o.seed < 0)) {
        throw new ValueError(op, `seed must be an integer in [0, 2^53), got ${String(o.seed)}`);
      }
      const bound = 1 / Math.sqrt(inFeatures);
      const seedB = o.seed === undefined ? undefined : (o.seed + 1) % Number.MAX_SAFE_INTEGER;
      if (init) {
        this.weight = keep(init.weight);
        this.bias = init.bias ? keep(init.bias) : o.bias ? keep(zeros([outFeatures])) : null;
      } else {
        this.weight = keep(rand([outFeatures, inFeatures], { low: -bound, high: bound, seed: o.seed }));
        this.bias = o.bias ? keep(rand([outFeatures], { low: -bound, high: bound, seed: seedB })) : null;
      }
      const affine = this.norm !== "none" && (o.elementwiseAffine ?? true);
      this.normWeight = affine ? keep(ones([inFeatures])) : null;
      this.normBias = affine && this.norm === "layer" ? keep(zeros([inFeatures])) : null;
      this._param("weight", this.weight);
      if (this.bias) this._param("bias", this.bias);
      if (this.normWeight) this._param("normWeight", this.normWeight);
      if (this.normBias) this._param("normBias", this.normBias);
    } catch (e) {
      for (const t of made) t.dispose();
      if (init) {
        init.weight.dispose();
        init.bias?.dispose();
      }
      throw e;
    }
  }

  /**
   * A layer holding copies (as f32) of float `weight` `[out, in]` and, when given, `bias`
   * `[out]`; the caller keeps (and still owns) its tensors. Sizes come from `weight`; `opts` as
   * for the constructor (`seed` is unused).
   * @throws DTypeError (not float tensors), ShapeError (weight not 2-D, bias not `[out]`),
   *   DisposedTensorError, ValueError (bad options).
   */
  static fromFloat(weight: Tensor, bias?: Tensor | null, opts: BitLinearOptions = {}): BitLinear {
    const op = "BitLinear.fromFloat";
    if (!(weight instanceof Tensor)) throw new DTypeError(op, `weight must be a Tensor, got ${weight === null ? "null" : typeof weight}`);
    weight._live(op);
    if (!weight._dt.isFloat) throw new DTypeError(op, `weight must be f32, f16 or bf16, got ${weight.dtype} ${fmtShape(weight.shape)}`);
    if (weight.ndim !== 2) throw new ShapeError(op, `weight must be 2-D [out, in], got ${fmtShape(weight.shape)}`);
    const [out, inF] = weight.shape as [number, number];
    if (bias !== undefined && bias !== null) {
      if (!(bias instanceof Tensor)) throw new DTypeError(op, `bias must be a Tensor, got ${typeof bias}`);
      bias._live(op);
      if (!bias._dt.isFloat) throw new DTypeError(op, `bias must be f32, f16 or bf16, got ${bias.dtype} ${fmtShape(bias.shape)}`);
      if (bias.ndim !== 1 || bias.shape[0] !== out) throw new ShapeError(op, `bias must have shape [${out}] for weight ${fmtShape(weight.shape)}, got ${fmtShape(bias.shape)}`);
    }
    checkFeatures(inF, "weight's in dimension", op);
    checkFeatures(out, "weight's out dimension", op);
    checkOptions(opts, op);
    const w = weight.astype("f32");
    let b: Tensor | null = null;
    try {
      b = bias ? bias.astype("f32") : null;
    } catch (e) {
      w.dispose();
      throw e;
    }
    adopt = { weight: w, bias: b };
    try {
      return new BitLinear(inF, out, opts);
    } finally {
      adopt = null;
    }
  }

  /**
   * An inference layer over ternary weights `[out, in]` as they are (e.g. read from a GGUF file):
   * forward in eval mode / `bn.noGrad` runs exactly these packed weights (a copy owned by the
   * layer; the caller keeps `w`). `weight` holds their dequantized values as f32 master weights,
   * so the layer can also be trained further (tq block scales become `{ group: 256 }`).
   * @throws DTypeError (w not a TernaryTensor), ShapeError (w not 2-D), as {@link fromFloat} for the rest.
   */
  static fromTernary(w: TernaryTensor, bias?: Tensor | null, opts: Omit<BitLinearOptions, "format" | "granularity" | "seed"> = {}): BitLinear {
    const op = "BitLinear.fromTernary";
    if (!(w instanceof TernaryTensor)) throw new DTypeError(op, `w must be a TernaryTensor, got ${w === null ? "null" : typeof w}`);
    if (w.shape.length !== 2) throw new ShapeError(op, `w must be 2-D [out, in], got ${fmtShape(w.shape)}`);
    const g = w.granularity;
    const granularity: TernaryGranularity = g === "block" || g === "group" ? { group: w.group! } : g;
    const dense = w.dequantize();
    let layer: BitLinear;
    try {
      layer = BitLinear.fromFloat(dense, bias, { ...opts, format: w.format, granularity });
    } finally {
      dense.dispose();
    }
    layer.#q = w.toFormat(w.format);
    layer.#qStorage = layer.weight._s;
    layer.#qVersion = layer.weight._s!.version;
    return layer;
  }

  /**
   * The ternary weights `[out, in]` forward uses, built from {@link weight} on first access and
   * cached (owned by the layer: do not dispose); rebuilt after `weight` changed in place through
   * the library, stale only after a direct write to `weight.data` (then call {@link requantize}).
   */
  get quantized(): TernaryTensor {
    this._live("BitLinear.quantized");
    const v = this.weight._live("BitLinear.quantized").version;
    if (this.#q === null || this.#qVersion !== v || this.#qStorage !== this.weight._s) {
      const q = noGrad(() => ternary(this.weight, { format: this.format, granularity: this.granularity }));
      this.#q?.dispose();
      this.#q = q;
      this.#qStorage = this.weight._s;
      this.#qVersion = v;
    }
    return this.#q;
  }

  /**
   * Moves the parameters to `device` (see `Module.to`) and the cached ternary weights with them
   * (so weights from {@link fromTernary} stay exactly those). Eval-mode forward then runs the
   * ternary kernel on that device.
   */
  override to(device: string): this {
    this._live("BitLinear.to");
    const ws = this.weight._live("BitLinear.to");
    const fresh = this.#q !== null && this.#qStorage === ws && this.#qVersion === ws.version;
    super.to(device);
    if (this.#q !== null && (!fresh || this.#q.device !== this.weight.device)) {
      const q = fresh ? this.#q.to(device) : null;
      this.#q.dispose();
      this.#q = q;
      this.#qStorage = this.weight._s;
      this.#qVersion = this.weight._s!.version;
    }
    return this;
  }

  /** Rebuilds {@link quantized} from the current {@link weight} (call after changing it in place); returns it. */
  requantize(): TernaryTensor {
    this._live("BitLinear.requantize");
    const old = this.#q;
    this.#q = null;
    old?.dispose();
    return this.quantized;
  }

  /**
   * `norm(x) → int8 per token × ternary weightsᵀ → rescale → + bias`.
   * @param x f32, f16 or bf16 `[..., in]` (any leading shape, any strides; unchanged).
   * @returns `[..., out]`: f32 for f32 input, else the input's dtype.
   * @throws ShapeError (x 0-d or its last axis is not `in`), DTypeError (x not a float Tensor),
   *   DisposedTensorError (the layer or x was disposed).
   */
  forward(x: Tensor): Tensor {
    const op = "BitLinear.forward";
    this._live(op);
    if (!(x instanceof Tensor)) throw new DTypeError(op, `x must be a Tensor, got ${x === null ? "null" : typeof x}`);
    x._live(op);
    if (!x._dt.isFloat) throw new DTypeError(op, `x must be f32, f16 or bf16, got ${x.dtype} ${fmtShape(x.shape)}; convert it first, e.g. x.astype("f32")`);
    const xs = x.shape;
    if (xs.length === 0 || xs[xs.length - 1] !== this.inFeatures) {
      throw new ShapeError(op, `x ${fmtShape(xs)} must end in ${this.inFeatures}: BitLinear(in=${this.inFeatures}, out=${this.outFeatures}) maps [..., ${this.inFeatures}] to [..., ${this.outFeatures}] (weight ${fmtShape(this.weight.shape)})`);
    }
    if (this.training && isGradEnabled()) return this.#forwardTrain(x);
    return noGrad(() => this.#forwardKernel(x));
  }

  /** Inference: norm → int8 per token → the packed ternary kernel → rescale (+ bias); no graph. */
  #forwardKernel(x: Tensor): Tensor {
    const w = this.quantized;
    const temps: Tensor[] = [];
    let y: Tensor | null = null;
    try {
      let h = x;
      if (this.norm !== "none") {
        const xf = x.dtype === "f32" ? x : x.astype("f32");
        if (xf !== x) temps.push(xf);
        h = this.norm === "rms" ? rmsNorm(xf, { weight: this.normWeight, eps: this.eps }) : layerNorm(xf, { weight: this.normWeight, bias: this.normBias, eps: this.eps });
        temps.push(h);
      }
      y = ternaryMatmul(h, w);
      if (this.bias) add_(y, this.bias);
      if (x.dtype !== "f32") {
        temps.push(y); // the f32 result, released below
        y = y.astype(x.dtype);
      }
      return y;
    } catch (e) {
      if (y && !temps.includes(y)) y.dispose();
      throw e;
    } finally {
      for (const t of temps) t.dispose();
    }
  }

  /**
   * Quantization-aware training: the same quantizers in the forward pass (the output is the
   * dequantized computation of the ternary kernel's), with straight-through gradients: the
   * int8-quantized activations and the ternary weights pass the gradient to the normalised
   * activations and the float master weights unchanged. One float matmul of the quantized values.
   */
  #forwardTrain(x: Tensor): Tensor {
    const temps: Tensor[] = [];
    const t = <T extends Tensor>(v: T): T => {
      temps.push(v);
      return v;
    };
    try {
      let h = x.dtype === "f32" ? x : t(x.astype("f32"));
      if (this.norm === "rms") h = t(rmsNorm(h, { weight: this.normWeight, eps: this.eps }));
      else if (this.norm === "layer") h = t(layerNorm(h, { weight: this.normWeight, bias: this.normBias, eps: this.eps }));
      const hq = t(record("ste", [h], noGrad(() => fakeInt8(h))));
      // The weights change every step: quantize and dequantize without packing (the same values).
      const wq = t(record("ste", [this.weight], noGrad(() => fakeTernary(this.weight, { format: this.format, granularity: this.granularity }))));
      let y = matmul(hq, t(wq.T));
      if (this.bias) y = add(t(y), this.bias);
      if (x.dtype !== "f32") y = t(y).astype(x.dtype);
      return y;
    } finally {
      for (const v of temps) v.dispose();
    }
  }

  /** Releases the weights, bias, norm parameters and cached ternary weights (once; later use throws DisposedTensorError). */
  override dispose(): void {
    if (this.disposed) return;
    this.#q?.dispose();
    this.#q = null;
    super.dispose();
  }

  override toString(): string {
    const g = typeof this.granularity === "object" ? `group-${this.granularity.group}` : this.granularity;
    const state = this.disposed ? ", disposed" : "";
    return `BitLinear(in=${this.inFeatures}, out=${this.outFeatures}, bias=${this.bias !== null}, norm=${this.norm}, format=${this.format}, granularity=${g}${state})`;
  }
}

/** Per-token int8 quantization of `h` and back: the values the ternary kernel multiplies, as floats. */
function fakeInt8(h: Tensor): Tensor {
  const q = int8(h, { granularity: "token" });
  try {
    return q.dequantize();
  } finally {
    q.dispose();
  }
}
