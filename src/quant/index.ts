/**
 * `bn.quant`: BitNet b1.58 quantization. {@link ternary} (absmean ternary weights in the "i2",
 * "tq2_0" or "tq1_0" packing), {@link int8} (absmax int8 activations, or affine uint8),
 * {@link ternaryMatmul} (int8 activations × packed ternary weights).
 * @module
 */
import { int8 } from "./int8.ts";
import { ternary, ternaryMatmul } from "./ternary.ts";

export { QuantizedTensor, type Int8Granularity, type Int8Options } from "./int8.ts";
export { TernaryTensor, TERNARY_EPS, type TernaryFormat, type TernaryGranularity, type TernaryOptions } from "./ternary.ts";

/** The quantization namespace (`bn.quant`). */
export const quant = { ternary, int8, ternaryMatmul } as const;
