/**
 * ggml's ternary block formats TQ2_0 and TQ1_0 (internal helpers; not part of the public API).
 *
 * `TernaryTensor` (src/quant/ternary.ts, formats "tq2_0" / "tq1_0") and `bn.gguf` build on these calls.
 * Each makes one native call (`bn_ternary_pack`, zig/cpu/ternary_pack.zig) and returns a new
 * contiguous tensor; inputs may be views of any strides (a contiguous copy is made when needed).
 *
 * Layout. A block is 256 consecutive weights of the last axis plus one f16 scale, byte-identical
 * to ggml (`block_tq2_0`: 64 bytes of 2-bit codes then the scale, 66 bytes = 2.0625 bits a
 * weight; `block_tq1_0`: 48 + 4 bytes of base-3 digits then the scale, 54 bytes = 1.6875 bits a
 * weight). Blocks never cross rows: the last axis must be a multiple of 256 (ShapeError
 * otherwise), so a weight `[out, in]` packs to `u8 [out, in / 256 · blockBytes]`, which is also
 * exactly the byte string of a GGUF tensor of that type (rows back to back).
 *
 * - `packBlocks(values, scales, format)`: `values` i8 `[..., K]` with every element -1, 0 or 1
 *   (anything else is a ValueError naming the index), `scales` f32 `[..., K / 256]` (any float
 *   dtype; rounded to f16 with ties to even, as ggml's `GGML_FP32_TO_FP16`) → u8
 *   `[..., K / 256 · blockBytes]`. A weight w of block b then means `w · f16(scales[b])`.
 * - `unpackBlocks(blocks, format)`: u8 `[..., nb · blockBytes]` → `{ values: i8 [..., nb · 256],
 *   scales: f32 [..., nb] }` (the f16 scales widened exactly). As ggml decodes them, a TQ2_0
 *   code 3 (never written by a packer) reads as +2, and every TQ1_0 byte reads as some digits.
 * - `dequantizeBlocks(blocks, format, dtype = "f32")`: → `dtype [..., nb · 256]` with
 *   `value · scale` computed in f32 (ggml's `dequantize_row_tq*`) and rounded to f16/bf16 if asked.
 *
 * Quantizing floats (choosing the ternary values and scales: ggml's absmax rule or BitNet's
 * absmean rule) is the caller's job; these helpers only move bits.
 * @module
 */
import { type DType, dtypeInfo } from "../dtype.ts";
import { DTypeError, ShapeError, ValueError, fmtShape, show } from "../errors.ts";
import { check, lastMessage, sym } from "../native.ts";
import { Tensor } from "../tensor.ts";

/** The ggml ternary block formats. */
export type BlockFormat = "tq2_0" | "tq1_0";

/** Weights per block (ggml's QK_K). */
export const BLOCK_WEIGHTS = 256;

/** Bytes per block of each format (ggml: 2 + 64 and 2 + 48 + 4). */
export const BLOCK_BYTES: Readonly<Record<BlockFormat, number>> = { tq2_0: 66, tq1_0: 54 };

const FORMAT_CODE: Readonly<Record<BlockFormat, number>> = { tq2_0: 0, tq1_0: 1 };

/** Bits per weight of a format: 8 · blockBytes / 256 (2.0625 for tq2_0, 1.6875 for tq1_0). */
export function bitsPerWeight(format: BlockFormat): number {
  return (8 * BLOCK_BYTES[checkFormat(format, "bitsPerWeight")]) / BLOCK_WEIGHTS;
}

/** Bytes of `weights` weights (a multiple of 256) in a format. */
export function blockBytes(format: BlockFormat, weights: number): number {
  return (weights / BLOCK_WEIGHTS) * BLOCK_BYTES[checkFormat(format, "blockBytes")];
}

/** Whether a string names a block format. */
export function isBlockFormat(f: unknown): f is BlockFormat {
  return f === "tq2_0" || f === "tq1_0";
}

function checkFormat(format: unknown, op: string): BlockFormat {
  if (!isBlockFormat(format)) throw new ValueError(op, `unknown block format ${show(format)} (expected "tq2_0" or "tq1_0")`);
  return format;
}

function checkTensor(t: unknown, what: string, op: string): Tensor {
  if (!(t instanceof Tensor)) throw new DTypeError(op, `${what} must be a Tensor, got ${t === null ? "null" : typeof t}`);
  t._live(op);
  return t;
}

/** The last axis of `shape` (a 0-d shape has none: ShapeError). */
function lastAxis(shape: readonly number[], what: string, op: string): number {
  if (shape.length === 0) throw new ShapeError(op, `${what} is zero-dimensional; blocks run along the last axis`);
  return shape[shape.length - 1]!;
}

/** Runs `body` with a contiguous version of `t` (a copy only when `t` is a strided view). */
function withContiguous<R>(t: Tensor, body: (c: Tensor) => R): R {
  const c = t.contiguous();
  try {
    return body(c);
  } finally {
    c.dispose();
  }
}

/**
 * Packs ternary values with one scale per 256-weight block into ggml blocks.
 * @param values i8 `[..., K]`, K a multiple of 256, every element -1, 0 or 1.
 * @param scales float `[..., K / 256]` (f32 recommended; rounded to f16 in the blocks).
 * @returns u8 `[..., K / 256 · BLOCK_BYTES[format]]`.
 * @throws ShapeError (K not a multiple of 256, scale shape), DTypeError, ValueError (a value
 *   outside {-1, 0, 1}, an unknown format).
 */
export function packBlocks(values: Tensor, scales: Tensor, format: BlockFormat): Tensor {
  const op = "packBlocks";
  const f = checkFormat(format, op);
  const v = checkTensor(values, "values", op);
  const s = checkTensor(scales, "scales", op);
  if (v._dt.name !== "i8") throw new DTypeError(op, `values must be i8 (-1, 0, 1), got ${v._dt.name} ${fmtShape(v._shape)}`);
  if (!s._dt.isFloat) throw new DTypeError(op, `scales must be a float tensor, got ${s._dt.name} ${fmtShape(s._shape)}`);
  const k = lastAxis(v._shape, `values ${fmtShape(v._shape)}`, op);
  if (k % BLOCK_WEIGHTS !== 0) {
    throw new ShapeError(op, `${f} blocks hold ${BLOCK_WEIGHTS} weights of the last axis; values ${fmtShape(v._shape)} has a last axis of ${k}, not a multiple of ${BLOCK_WEIGHTS}`);
  }
  const lead = v._shape.slice(0, -1);
  const sShape = [...lead, k / BLOCK_WEIGHTS];
  if (s._shape.length !== sShape.length || s._shape.some((d, i) => d !== sShape[i])) {
    throw new ShapeError(op, `values ${fmtShape(v._shape)} need scales of shape ${fmtShape(sShape)} (one per block), got ${fmtShape(s._shape)}`);
  }
  const out = Tensor._alloc([...lead, (k / BLOCK_WEIGHTS) * BLOCK_BYTES[f]], dtypeInfo("u8"), v._live(op).device, op);
  if (v._size === 0) return out;
  try {
    const s32 = s._dt.name === "f32" ? s.contiguous() : s.astype("f32");
    try {
      withContiguous(v, (vc) => {
        const st = sym.bn_ternary_pack(0, FORMAT_CODE[f], dtypeInfo("f32").code, vc._ptr(op), s32._ptr(op), out._ptr(op), null, vc._size);
        if (st !== 0) {
          if (!/ at index \d+ /.test(lastMessage())) check(st, op, `${f} ${fmtShape(v._shape)}`);
          // The engine names the flat index; say where that is in the tensor.
          throw new ValueError(op, `${f}: values must be -1, 0 or 1 (i8 ${fmtShape(v._shape)}); ${lastMessageIndex(v._shape)}`);
        }
      });
    } finally {
      s32.dispose();
    }
  } catch (e) {
    out.dispose();
    throw e;
  }
  return out;
}

/** The native message is "value V at index I is not -1, 0 or 1"; this names I as a multi-index. */
function lastMessageIndex(shape: readonly number[]): string {
  const msg = lastMessage();
  const m = /value (-?\d+) at index (\d+)/.exec(msg);
  if (!m) return msg;
  let flat = Number(m[2]);
  const idx: number[] = new Array(shape.length);
  for (let i = shape.length - 1; i >= 0; i--) {
    idx[i] = flat % shape[i]!;
    flat = Math.floor(flat / shape[i]!);
  }
  return `found ${m[1]} at index ${fmtShape(idx)}`;
}

function blocksInput(blocks: Tensor, f: BlockFormat, op: string): { lead: number[]; nb: number } {
  const b = checkTensor(blocks, "blocks", op);
  if (b._dt.name !== "u8") throw new DTypeError(op, `blocks must be u8, got ${b._dt.name} ${fmtShape(b._shape)}`);
  const n = lastAxis(b._shape, `blocks ${fmtShape(b._shape)}`, op);
  const bb = BLOCK_BYTES[f];
  if (n % bb !== 0) throw new ShapeError(op, `${f} blocks are ${bb} bytes; blocks ${fmtShape(b._shape)} has a last axis of ${n} bytes, not a multiple of ${bb}`);
  return { lead: b._shape.slice(0, -1), nb: n / bb };
}

/**
 * Unpacks ggml blocks to their ternary values and scales.
 * @param blocks u8 `[..., nb · BLOCK_BYTES[format]]`.
 * @returns `{ values: i8 [..., nb · 256], scales: f32 [..., nb] }` (dispose both).
 */
export function unpackBlocks(blocks: Tensor, format: BlockFormat): { values: Tensor; scales: Tensor } {
  const op = "unpackBlocks";
  const f = checkFormat(format, op);
  const { lead, nb } = blocksInput(blocks, f, op);
  const dev = blocks._live(op).device;
  const values = Tensor._alloc([...lead, nb * BLOCK_WEIGHTS], dtypeInfo("i8"), dev, op);
  let scales: Tensor | undefined;
  try {
    scales = Tensor._alloc([...lead, nb], dtypeInfo("f32"), dev, op);
    const sc = scales;
    if (values._size > 0) {
      withContiguous(blocks, (bc) => {
        check(sym.bn_ternary_pack(1, FORMAT_CODE[f], dtypeInfo("i8").code, values._ptr(op), sc._ptr(op), bc._ptr(op), null, values._size), op, `${f} ${fmtShape(blocks._shape)}`);
      });
    }
  } catch (e) {
    values.dispose();
    scales?.dispose();
    throw e;
  }
  return { values, scales };
}

/**
 * Dequantizes ggml blocks: each weight is `value · scale` in f32 (as ggml), then `dtype`.
 * @param blocks u8 `[..., nb · BLOCK_BYTES[format]]`.
 * @param dtype "f32" (default), "f16" or "bf16".
 * @returns `dtype [..., nb · 256]`.
 */
export function dequantizeBlocks(blocks: Tensor, format: BlockFormat, dtype: DType = "f32"): Tensor {
  const op = "dequantizeBlocks";
  const f = checkFormat(format, op);
  const dt = dtypeInfo(dtype, op);
  if (!dt.isFloat) throw new DTypeError(op, `dequantizes to f32, f16 or bf16, not ${dt.name}`);
  const { lead, nb } = blocksInput(blocks, f, op);
  const out = Tensor._alloc([...lead, nb * BLOCK_WEIGHTS], dt, blocks._live(op).device, op);
  if (out._size === 0) return out;
  try {
    withContiguous(blocks, (bc) => {
      check(sym.bn_ternary_pack(2, FORMAT_CODE[f], dt.code, null, null, bc._ptr(op), out._ptr(op), out._size), op, `${f} ${fmtShape(blocks._shape)} to ${dt.name}`);
    });
  } catch (e) {
    out.dispose();
    throw e;
  }
  return out;
}
