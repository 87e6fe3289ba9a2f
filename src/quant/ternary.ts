/**
 * BitNet b1.58 ternary weights: {@link ternary} (the absmean quantizer), the packed
 * {@link TernaryTensor}, and {@link ternaryMatmul} (int8 activations × packed ternary weights,
 * never dequantized).
 *
 * Formats (256 weights a block along the last axis):
 * - `"i2"`: 2 bits a weight, 64 bytes a block: exactly TQ2_0's code bytes (weight t stored as
 *   t + 1; byte `h·32 + m` of a block holds weights `h·128 + n·32 + m` in bits 2n) without the
 *   per-block scale; the f32 scales live beside the codes (one, one a row, or one a group). Rows
 *   whose length is not a multiple of 256 are padded with zero weights to whole blocks.
 * - `"tq2_0"`, `"tq1_0"`: ggml's blocks, byte for byte (an f16 scale in every 256-weight block;
 *   2.0625 and 1.6875 bits a weight), so GGUF files carry them unchanged. Rows must be a
 *   multiple of 256 long (ShapeError otherwise); a block's scale is its group's scale in f16.
 * @module
 */
import { type DType, dtypeInfo } from "../dtype.ts";
import { DTypeError, DeviceError, DisposedTensorError, ShapeError, ValueError, fmtShape, show } from "../errors.ts";
import { check, putLayout, sym } from "../native.ts";
import { Tensor, copyInto } from "../tensor.ts";
import { zeros } from "../creation.ts";
import { abs, add, clip, div, mul, round } from "../ops/elementwise.ts";
import { mean } from "../ops/reduce.ts";
import { BLOCK_BYTES, BLOCK_WEIGHTS, dequantizeBlocks, packBlocks, unpackBlocks } from "./blocks.ts";

/** Packed ternary formats. */
export type TernaryFormat = "i2" | "tq2_0" | "tq1_0";

/** Which weights share a scale: all, each row of the last axis (an output channel), or runs of `group` weights of a row. */
export type TernaryGranularity = "tensor" | "channel" | { group: number };

/** Options of {@link ternary}. */
export interface TernaryOptions {
  /** Default `"tensor"`. A group must be a positive multiple of 256 that divides the row length. */
  granularity?: TernaryGranularity;
  /** Default `"i2"`. */
  format?: TernaryFormat;
}

const FORMAT_CODE: Readonly<Record<TernaryFormat, number>> = { tq2_0: 0, tq1_0: 1, i2: 2 };
const I2_BLOCK_BYTES = 64;
/** The absmean rule's epsilon (BitNet b1.58). */
export const TERNARY_EPS = 1e-5;

/** Bytes of one 256-weight block of a format (i2: codes only). */
function blockSize(format: TernaryFormat): number {
  return format === "i2" ? I2_BLOCK_BYTES : BLOCK_BYTES[format];
}

function checkFormat(f: unknown, op: string): TernaryFormat {
  if (f !== "i2" && f !== "tq2_0" && f !== "tq1_0") throw new ValueError(op, `unknown ternary format ${show(f)} (expected "i2", "tq2_0" or "tq1_0")`);
  return f;
}

/** Internal description of where scales live. */
type ScaleMode = { kind: "tensor" } | { kind: "channel" } | { kind: "group"; group: number } | { kind: "block" };

/**
 * Packed ternary weights `shape = [..., K]` (rows of the last axis): codes in `packed` (u8
 * `[rows, ceil(K/256) · blockBytes]`) and, for `"i2"`, f32 scales. A weight means `t · scale`
 * with t ∈ {-1, 0, +1}. Owns its tensors: `dispose()` (or `using`) releases them once.
 */
export class TernaryTensor {
  readonly format: TernaryFormat;
  readonly #shape: number[];
  readonly #mode: ScaleMode;
  #packed: Tensor | null;
  #scale: Tensor | null;

  /**
   * Wraps packed codes (ownership moves to the TernaryTensor). For `"i2"` pass the f32 scales of
   * the granularity (`[]`, the row shape `shape.slice(0, -1)`, or `[...rows, K / group]`); the
   * tq formats carry theirs in the blocks.
   */
  constructor(format: TernaryFormat, shape: readonly number[], packed: Tensor, scale?: Tensor | null, granularity?: TernaryGranularity) {
    const op = "TernaryTensor";
    this.format = checkFormat(format, op);
    if (shape.length === 0) throw new ShapeError(op, "ternary weights need at least one axis");
    this.#shape = [...shape];
    const k = shape[shape.length - 1]!;
    const rows = shape.slice(0, -1);
    const nb = Math.ceil(k / BLOCK_WEIGHTS);
    if (!(packed instanceof Tensor) || packed.dtype !== "u8") throw new DTypeError(op, "packed codes must be a u8 Tensor");
    const wantPacked = [...rows, nb * blockSize(format)];
    if (packed.size !== wantPacked.reduce((a, b) => a * b, 1)) {
      throw new ShapeError(op, `${format} weights ${fmtShape(shape)} need ${fmtShape(wantPacked)} packed bytes, got ${fmtShape(packed.shape)}`);
    }
    if (format !== "i2") {
      if (k % BLOCK_WEIGHTS !== 0) throw new ShapeError(op, `${format} rows are whole 256-weight blocks; weights ${fmtShape(shape)} have rows of ${k}`);
      this.#mode = { kind: "block" };
      this.#scale = null;
    } else {
      if (!(scale instanceof Tensor) || scale.dtype !== "f32") throw new DTypeError(op, "i2 weights need f32 scales");
      const g = granularity ?? (scale.ndim === 0 ? "tensor" : scale.ndim === rows.length ? "channel" : { group: k / scale.shape[scale.ndim - 1]! });
      this.#mode = g === "tensor" ? { kind: "tensor" } : g === "channel" ? { kind: "channel" } : { kind: "group", group: g.group };
      const want = scaleShape(this.#mode, rows, k);
      if (scale.ndim !== want.length || scale.shape.some((d, i) => d !== want[i])) {
        throw new ShapeError(op, `i2 weights ${fmtShape(shape)} with ${describe(this.#mode)} scales need scale shape ${fmtShape(want)}, got ${fmtShape(scale.shape)}`);
      }
      this.#scale = scale;
    }
    this.#packed = packed.isContiguous() ? packed.reshape([rowCount(rows), nb * blockSize(format)]) : packed.contiguous();
    if (this.#packed !== packed) packed.dispose();
  }

  /** The logical shape of the weights, `[..., K]`. */
  get shape(): number[] {
    return [...this.#shape];
  }

  /** Which weights share a scale ("block" for the tq formats: one f16 scale a 256-weight block). */
  get granularity(): "tensor" | "channel" | "group" | "block" {
    return this.#mode.kind;
  }

  /** The group length of a group granularity (else undefined). */
  get group(): number | undefined {
    return this.#mode.kind === "group" ? this.#mode.group : this.#mode.kind === "block" ? BLOCK_WEIGHTS : undefined;
  }

  /** The packed codes, u8 `[rows, bytesPerRow]` (a view owned by this tensor; do not dispose). */
  get packed(): Tensor {
    return this.#live("packed");
  }

  /**
   * The scales (f32, owned by this tensor; do not dispose): `[]` per tensor, `shape.slice(0, -1)`
   * per channel, `[...rows, K / group]` per group, `[...rows, K / 256]` (the blocks' f16 scales,
   * widened) for the tq formats.
   */
  get scale(): Tensor {
    this.#live("scale");
    if (this.#scale === null) this.#scale = reshapeOwned(this.#blockScalesF32(), [...this.#shape.slice(0, -1), this.#nb]);
    return this.#scale;
  }

  /** Bytes of storage: packed codes plus separate scales. */
  get bytes(): number {
    const p = this.#live("bytes").size;
    return this.format === "i2" ? p + 4 * this.scale.size : p;
  }

  /** Storage bits per weight (codes, padding and scales). */
  get bitsPerWeight(): number {
    const n = this.#shape.reduce((a, b) => a * b, 1);
    return n === 0 ? 0 : (8 * this.bytes) / n;
  }

  get disposed(): boolean {
    return this.#packed === null;
  }

  /** The tq blocks' f16 scales, read in place by one strided copy (no unpacking), as f32 `[rows, nb]`. */
  #blockScalesF32(): Tensor {
    const op = "TernaryTensor.scale";
    const packed = this.#packed!;
    const bb = BLOCK_BYTES[this.format as "tq2_0" | "tq1_0"];
    const rows = packed.shape[0]!;
    const nb = this.#nb;
    const f16 = dtypeInfo("f16");
    const h = Tensor._alloc([rows, nb], f16, packed._live(op).device, op);
    try {
      if (h.size > 0) {
        // In f16 units a block is bb / 2 long and its scale sits at its last 2 bytes (bb is even).
        putLayout([rows, nb], [nb, 1], [(nb * bb) / 2, bb / 2]);
        check(sym.bn_copy(h._ptr(op), f16.code, packed._ptr(op) + bb - 2, f16.code, 2), op, `${this.format} ${fmtShape(this.#shape)}`);
      }
      return h.astype("f32");
    } finally {
      h.dispose();
    }
  }

  get #nb(): number {
    return Math.ceil(this.#shape[this.#shape.length - 1]! / BLOCK_WEIGHTS);
  }

  #live(op: string): Tensor {
    if (this.#packed === null) throw new DisposedTensorError(`TernaryTensor.${op}`, "this TernaryTensor was disposed");
    return this.#packed;
  }

  /** The ternary values t ∈ {-1, 0, +1} as an i8 Tensor of `shape`. */
  unpack(): Tensor {
    const op = "TernaryTensor.unpack";
    const packed = this.#live("unpack");
    const k = this.#shape[this.#shape.length - 1]!;
    if (this.format !== "i2") {
      const { values, scales } = unpackBlocks(packed, this.format);
      scales.dispose();
      return reshapeOwned(values, this.#shape);
    }
    const rows = packed.shape[0]!;
    const kp = this.#nb * BLOCK_WEIGHTS;
    return withScope((t) => {
      const full = t(Tensor._alloc([rows, kp], dtypeInfo("i8"), packed._live(op).device, op));
      if (full.size > 0) check(sym.bn_ternary_pack(1, FORMAT_CODE.i2, dtypeInfo("i8").code, full._ptr(op), null, packed._ptr(op), null, full.size), op, `i2 ${fmtShape(this.#shape)}`);
      const part = kp === k ? full : t(full.slice([null, [0, k]]));
      return t(kp === k ? full : part.contiguous()).reshape(this.#shape);
    });
  }

  /** The weights `t · scale` as a float Tensor of `shape` (f32 arithmetic, then `dtype`). */
  dequantize(dtype: DType = "f32"): Tensor {
    const op = "TernaryTensor.dequantize";
    const dt = dtypeInfo(dtype, op);
    if (!dt.isFloat) throw new DTypeError(op, `dequantizes to f32, f16 or bf16, not ${dt.name}`);
    const packed = this.#live("dequantize");
    if (this.format !== "i2") return reshapeOwned(dequantizeBlocks(packed, this.format, dtype), this.#shape);
    return withScope((t) => {
      const v = t(t(this.unpack()).astype("f32"));
      const s = this.#broadcastScale(t);
      const w = mul(v, s);
      return dtype === "f32" ? w : reshapeOwned(t(w).astype(dtype), this.#shape);
    });
  }

  /** The scale as something that broadcasts against the values of `shape`. */
  #broadcastScale(t: <T extends Tensor>(x: T) => T): Tensor {
    const s = this.scale;
    switch (this.#mode.kind) {
      case "tensor":
        return s;
      case "channel":
        return t(s.unsqueeze(-1));
      case "group": {
        const k = this.#shape[this.#shape.length - 1]!;
        const g = this.#mode.group;
        const rows = this.#shape.slice(0, -1);
        return t(t(t(s.unsqueeze(-1)).expand([...rows, k / g, g])).reshape(this.#shape));
      }
      case "block":
        throw new Error("unreachable");
    }
  }

  /** The same weights in another format (tq formats store each scale in f16). */
  toFormat(format: TernaryFormat): TernaryTensor {
    const op = "TernaryTensor.toFormat";
    const f = checkFormat(format, op);
    this.#live("toFormat");
    const rows = this.#shape.slice(0, -1);
    const k = this.#shape[this.#shape.length - 1]!;
    return withScope((t) => {
      const values = t(this.unpack());
      if (f === "i2") {
        const mode: TernaryGranularity = this.#mode.kind === "block" ? { group: BLOCK_WEIGHTS } : this.#mode.kind === "group" ? { group: this.#mode.group } : this.#mode.kind;
        return packI2(values, this.scale.clone(), mode, this.#shape, op);
      }
      if (k % BLOCK_WEIGHTS !== 0) throw new ShapeError(op, `${f} rows are whole 256-weight blocks; weights ${fmtShape(this.#shape)} have rows of ${k}`);
      const perBlock = this.#mode.kind === "block" ? this.scale : blockScales(t, this.scale, this.#mode, rows, k);
      return new TernaryTensor(f, this.#shape, packBlocks(values, perBlock, f));
    });
  }

  /** The device holding the codes and scales: "cpu", "cuda", "cuda:1", ..., "metal". */
  get device(): string {
    return this.#live("device").device;
  }

  /**
   * A copy on `device` (the codes and scales move as they are). On a GPU (CUDA or Metal)
   * {@link ternaryMatmul} and `BitLinear` run there for "i2" and "tq2_0" weights (tq1_0 is
   * CPU-only); `unpack`, `dequantize` and `toFormat` run on the CPU (move back with `to("cpu")`).
   * @throws DeviceError (unknown or absent device), DisposedTensorError.
   */
  to(device: string): TernaryTensor {
    const op = "TernaryTensor.to";
    const packed = this.#live(op).to(device);
    let scale: Tensor | null = null;
    try {
      if (this.format === "i2") scale = this.#scale!.to(device);
      const m = this.#mode;
      const g: TernaryGranularity | undefined = m.kind === "group" ? { group: m.group } : m.kind === "block" ? undefined : m.kind;
      return new TernaryTensor(this.format, this.#shape, packed, scale, g);
    } catch (e) {
      packed.dispose();
      scale?.dispose();
      throw e;
    }
  }

  /** Releases the packed codes and scales (once; later use throws DisposedTensorError). */
  dispose(): void {
    this.#packed?.dispose();
    this.#scale?.dispose();
    this.#packed = null;
    this.#scale = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    if (this.disposed) return "TernaryTensor(disposed)";
    return `TernaryTensor(${this.format}, shape=${fmtShape(this.#shape)}, granularity=${this.#mode.kind}, ${this.bytes} bytes, ${this.bitsPerWeight.toFixed(4)} bits/weight)`;
  }
}

/** Scales of a granularity repeated to one a 256-weight block, `[...rows, K / 256]` (temporaries through `t`). */
function blockScales(t: <T extends Tensor>(x: T) => T, s: Tensor, mode: ScaleMode, rows: number[], k: number): Tensor {
  const nb = k / BLOCK_WEIGHTS;
  switch (mode.kind) {
    case "tensor":
      return t(t(t(s.reshape([...rows.map(() => 1), 1])).expand([...rows, nb])).contiguous());
    case "channel":
      return t(t(t(s.unsqueeze(-1)).expand([...rows, nb])).contiguous());
    case "group": {
      const per = mode.group / BLOCK_WEIGHTS;
      return t(t(t(t(t(s.unsqueeze(-1)).expand([...rows, k / mode.group, per])).contiguous()).reshape([...rows, nb])));
    }
    case "block":
      return s;
  }
}

function rowCount(rows: readonly number[]): number {
  return rows.reduce((a, b) => a * b, 1);
}

function describe(m: ScaleMode): string {
  return m.kind === "group" ? `group-${m.group}` : `per-${m.kind}`;
}

function scaleShape(m: ScaleMode, rows: number[], k: number): number[] {
  switch (m.kind) {
    case "tensor":
      return [];
    case "channel":
      return rows;
    case "group":
      return [...rows, k / m.group];
    case "block":
      return [...rows, k / BLOCK_WEIGHTS];
  }
}

/** Reshapes `x` and disposes it when the reshape made a new tensor object. */
function reshapeOwned(x: Tensor, shape: readonly number[]): Tensor {
  const r = x.reshape([...shape]);
  if (r !== x) x.dispose();
  return r;
}

/** Runs `body` with `t`, which registers temporaries to dispose at the end (the result is kept). */
function withScope<R extends Tensor | TernaryTensor>(body: (t: <T extends Tensor>(x: T) => T) => R): R {
  const temps: Tensor[] = [];
  const t = <T extends Tensor>(x: T): T => {
    temps.push(x);
    return x;
  };
  let out: R | undefined;
  try {
    out = body(t);
    return out;
  } finally {
    for (const x of temps) if (x !== out && !x.disposed) x.dispose();
  }
}

function parseGranularity(g: unknown, k: number, format: TernaryFormat, shape: readonly number[], op: string): ScaleMode {
  if (g === undefined || g === "tensor") return { kind: "tensor" };
  if (g === "channel") return { kind: "channel" };
  if (typeof g === "object" && g !== null && "group" in g) {
    const group = (g as { group: unknown }).group;
    if (typeof group !== "number" || !Number.isInteger(group) || group <= 0) throw new ValueError(op, `group must be a positive integer, got ${String(group)}`);
    if (group % BLOCK_WEIGHTS !== 0 || k % group !== 0) {
      throw new ShapeError(op, `group ${group} must be a multiple of ${BLOCK_WEIGHTS} that divides the row length (weights ${fmtShape(shape)}, ${format})`);
    }
    return { kind: "group", group };
  }
  throw new ValueError(op, `granularity must be "tensor", "channel" or { group: n }, got ${show(g)}`);
}

/**
 * BitNet b1.58's absmean quantizer: scale = mean(|w|) over the granularity (f32), and
 * `t = clamp(round(w / (scale + 1e-5)), -1, 1)` (round half to even), packed in `format`.
 *
 * NaN weights make their group's scale NaN (the quantized values are 0 there, dequantized NaN);
 * an infinite weight makes the scale infinite (values 0 and NaN after dequantization); an
 * all-zero group gets scale 0 and values 0 (no NaN).
 * @param w float weights `[..., K]` (rows of the last axis: for a linear layer `[out, in]`).
 * @throws DTypeError (not a float tensor), ShapeError (0-d, tq rows not a multiple of 256, bad
 *   group), ValueError (unknown format or granularity).
 */
export function ternary(w: Tensor, opts: TernaryOptions = {}): TernaryTensor {
  const op = "quant.ternary";
  const { format, mode, shape, rows, k } = checkTernary(w, opts, op);
  if (w._s!.device !== 0) {
    // Packing runs on the CPU: quantize a host copy, move the packed weights back.
    const host = w.toCpu();
    try {
      const q = ternary(host, opts);
      try {
        return q.to(w.device);
      } finally {
        q.dispose();
      }
    } finally {
      host.dispose();
    }
  }
  return withScope((t) => {
    const { q, scale } = absmean(t, w, mode, shape, rows, k);
    const values = t(q.astype("i8"));
    const g: TernaryGranularity = mode.kind === "group" ? { group: mode.group } : (mode.kind as "tensor" | "channel");
    if (format === "i2") return packI2(values, scale.clone(), g, shape, op);
    return new TernaryTensor(format, shape, packBlocks(values, blockScales(t, scale, mode, rows, k), format));
  });
}

/**
 * `ternary(w, opts).dequantize()` computed without packing: the same f32 values (a zero may come
 * out as -0), for quantization-aware training, where the weights change every step.
 * @internal
 */
export function fakeTernary(w: Tensor, opts: TernaryOptions = {}): Tensor {
  const op = "quant.ternary";
  const { format, mode, shape, rows, k } = checkTernary(w, opts, op);
  return withScope((t) => {
    const { q, scale } = absmean(t, w, mode, shape, rows, k);
    if (format === "i2") {
      // The scale broadcast against q's rows (and groups).
      if (mode.kind === "tensor") return mul(q, scale);
      if (mode.kind === "channel") return mul(q, t(scale.unsqueeze(-1)));
      const g = (mode as { group: number }).group;
      return t(mul(t(q.reshape([...rows, k / g, g])), t(scale.unsqueeze(-1)))).reshape(shape);
    }
    // tq formats: each 256-weight block is rescaled by its scale rounded to f16.
    const blocks = t(t(blockScales(t, scale, mode, rows, k).astype("f16")).astype("f32"));
    return t(mul(t(q.reshape([...rows, k / BLOCK_WEIGHTS, BLOCK_WEIGHTS])), t(blocks.unsqueeze(-1)))).reshape(shape);
  });
}

function checkTernary(w: Tensor, opts: TernaryOptions, op: string) {
  if (!(w instanceof Tensor)) throw new DTypeError(op, `weights must be a Tensor, got ${w === null ? "null" : typeof w}`);
  w._live(op);
  if (typeof opts !== "object" || opts === null) throw new ValueError(op, "options must be an object");
  for (const key of Object.keys(opts)) if (key !== "granularity" && key !== "format") throw new ValueError(op, `unknown option "${key}"`);
  const format = checkFormat(opts.format ?? "i2", op);
  if (!w._dt.isFloat) throw new DTypeError(op, `weights must be f32, f16 or bf16, got ${w.dtype} ${fmtShape(w.shape)}`);
  const shape = w.shape;
  if (shape.length === 0) throw new ShapeError(op, "weights are zero-dimensional; ternary rows run along the last axis");
  const k = shape[shape.length - 1]!;
  if (format !== "i2" && k % BLOCK_WEIGHTS !== 0) {
    throw new ShapeError(op, `${format} blocks hold ${BLOCK_WEIGHTS} weights of the last axis; weights ${fmtShape(shape)} have rows of ${k}, not a multiple of ${BLOCK_WEIGHTS}`);
  }
  const mode = parseGranularity(opts.granularity, k, format, shape, op);
  return { format, mode, shape, rows: shape.slice(0, -1), k };
}

/** The absmean scale (f32, per the granularity) and the ternary values q (f32, in {-1, 0, 1}) of `w`, shaped like w. */
function absmean(t: <T extends Tensor>(x: T) => T, w: Tensor, mode: ScaleMode, shape: number[], rows: number[], k: number): { q: Tensor; scale: Tensor } {
  const wf = w.dtype === "f32" ? w : t(w.astype("f32"));
  const a = t(abs(wf));
  const empty = w.size === 0;
  switch (mode.kind) {
    case "tensor": {
      const scale = empty ? t(zeros([])) : t(mean(a));
      return { scale, q: quantizeWith(t, wf, scale) };
    }
    case "channel": {
      const scale = empty ? t(zeros(rows)) : t(mean(a, { axis: -1 }));
      return { scale, q: quantizeWith(t, wf, t(scale.unsqueeze(-1))) };
    }
    case "group": {
      const grouped = [...rows, k / mode.group, mode.group];
      const scale = empty ? t(zeros(grouped.slice(0, -1))) : t(mean(t(a.reshape(grouped)), { axis: -1 }));
      return { scale, q: t(quantizeWith(t, t(wf.reshape(grouped)), t(scale.unsqueeze(-1))).reshape(shape)) };
    }
    case "block":
      throw new Error("unreachable");
  }
}

/** t = clamp(round(w / (scale + eps)), -1, 1) (f32; registered temporaries go through `t`). */
function quantizeWith(t: <T extends Tensor>(x: T) => T, w: Tensor, scale: Tensor): Tensor {
  const r = t(round(t(div(w, t(add(scale, TERNARY_EPS))))));
  return t(clip(r, -1, 1));
}

/** Packs i8 values `[..., K]` (in {-1, 0, 1}) with owned f32 scales into an "i2" TernaryTensor. */
function packI2(values: Tensor, scale: Tensor, g: TernaryGranularity, shape: readonly number[], op: string): TernaryTensor {
  const k = shape[shape.length - 1]!;
  const rows = rowCount(shape.slice(0, -1));
  const nb = Math.ceil(k / BLOCK_WEIGHTS);
  const kp = nb * BLOCK_WEIGHTS;
  let padded: Tensor | null = null;
  let packed: Tensor | null = null;
  try {
    if (kp === k && values.isContiguous()) {
      padded = values.reshape([rows, k]); // whole blocks already: pack the values in place
    } else {
      const flat = values.reshape([rows, k]);
      try {
        padded = Tensor._alloc([rows, kp], dtypeInfo("i8"), values._live(op).device, op, true);
        const dst = kp === k ? padded : padded.slice([null, [0, k]]);
        copyInto(dst, flat, op);
        if (dst !== padded) dst.dispose();
      } finally {
        if (flat !== values) flat.dispose();
      }
    }
    packed = Tensor._alloc([rows, nb * I2_BLOCK_BYTES], dtypeInfo("u8"), values._live(op).device, op);
    if (padded.size > 0) {
      const st = sym.bn_ternary_pack(0, FORMAT_CODE.i2, dtypeInfo("f32").code, padded._ptr(op), null, packed._ptr(op), null, padded.size);
      check(st, op, `i2 ${fmtShape(shape)}`);
    }
    const out = new TernaryTensor("i2", shape, packed, scale, g);
    packed = null;
    return out;
  } catch (e) {
    packed?.dispose();
    scale.dispose();
    throw e;
  } finally {
    if (padded !== values) padded?.dispose();
  }
}

/**
 * `x @ wᵀ` for packed ternary weights `w` `[N, K]`, like a linear layer: each row (token) of x is
 * quantized to int8 (absmax: s = 127 / max|x|, q = round(x · s), as {@link int8} with
 * granularity "token"), multiplied with the ternary codes in integers, and rescaled once:
 * `out = Σ_segments(isum · scale) / s`. The weights are never dequantized.
 * @param x f32, f16 or bf16 `[..., K]` (any strides).
 * @param w a {@link TernaryTensor} of shape `[N, K]`.
 * On a GPU (x and w both there) the same arithmetic runs in zig/gpu/ternary.cu (CUDA) or
 * metal/kernels.metal (Metal): results equal the CPU's for per-tensor and per-channel scales and
 * agree to f32 rounding for group and block scales (the per-block terms are summed in another
 * order).
 * @returns f32 `[..., N]` on x's device.
 * @throws ShapeError (K differs, w not 2-D), DTypeError (integer x, w not a TernaryTensor),
 *   DeviceError (x and w on different devices; tq1_0 weights on a GPU).
 */
export function ternaryMatmul(x: Tensor, w: TernaryTensor, opts: { fusedDot?: boolean } = {}): Tensor {
  const op = "quant.ternaryMatmul";
  if (!(x instanceof Tensor)) throw new DTypeError(op, `x must be a Tensor, got ${x === null ? "null" : typeof x}`);
  if (!(w instanceof TernaryTensor)) throw new DTypeError(op, `w must be a TernaryTensor (from bn.quant.ternary), got ${w === null ? "null" : typeof w}`);
  x._live(op);
  const packed = w.packed;
  const ws = w.shape;
  if (!x._dt.isFloat) throw new DTypeError(op, `x must be f32, f16 or bf16, got ${x.dtype} ${fmtShape(x.shape)}`);
  if (ws.length !== 2) throw new ShapeError(op, `w must be 2-D [out, in], got ${w.format} ${fmtShape(ws)}`);
  const [n, k] = ws as [number, number];
  const xs = x._shape; // read only (the public getter copies: this path runs once a token)
  if (xs.length === 0 || xs[xs.length - 1] !== k) {
    throw new ShapeError(op, `x ${fmtShape(xs)} (${x.dtype}) @ wᵀ needs x's last axis to be ${k} (w ${w.format} ${fmtShape(ws)})`);
  }
  const dev = x._s!.device;
  if (packed._live(op).device !== dev) throw new DeviceError(op, `x is on ${x.device} and w on ${w.device}; move one with to()`);
  if (dev !== 0 && w.format === "tq1_0") throw new DeviceError(op, `tq1_0 weights run on the CPU only; convert them first, e.g. w.to("cpu").toFormat("tq2_0").to("${x.device}")`);
  const lead = xs.slice(0, -1);
  const m = rowCount(lead);
  lead.push(n);
  const out = Tensor._alloc(lead, dtypeInfo("f32"), dev, op);
  if (out.size === 0) return out;
  // Rows must be contiguous along K and evenly spaced: a 2-D view with unit inner stride as is.
  const st = x._strides;
  const direct = xs.length <= 2 && (st === null || st[st.length - 1] === 1);
  const xc = direct ? x : x.contiguous();
  try {
    const rowStride = direct && xs.length === 2 && st !== null ? st[0]! : k;
    const mode = w.granularity === "tensor" ? 0 : w.granularity === "channel" ? 1 : 2;
    if (dev !== 0) {
      const scales = w.format === "i2" ? w.scale._addr(op) : null;
      const status = sym.bn_gpu_ternary_matmul(dev, out._addr(op), xc._addr(op), x._dt.code, packed._addr(op), scales, FORMAT_CODE[w.format], mode, m, n, k, rowStride, w.group ?? 0);
      if (status !== 0) check(status, op, `x ${fmtShape(xs)} ${x.dtype} @ ${w.format} ${fmtShape(ws)}ᵀ`);
      return out;
    }
    const scales = w.format === "i2" ? w.scale._ptr(op) : null;
    const flags = opts.fusedDot === false ? 1 : 0;
    const status = sym.bn_ternary_matmul(out._ptr(op), xc._ptr(op), x._dt.code, packed._ptr(op), scales, FORMAT_CODE[w.format], mode, m, n, k, rowStride, w.group ?? 0, flags);
    if (status !== 0) check(status, op, `x ${fmtShape(xs)} ${x.dtype} @ ${w.format} ${fmtShape(ws)}ᵀ`);
  } catch (e) {
    out.dispose();
    throw e;
  } finally {
    if (xc !== x) xc.dispose();
  }
  return out;
}
