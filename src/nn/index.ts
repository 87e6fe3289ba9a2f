/**
 * `bn.nn`: neural-network layers. {@link BitLinear} (the BitNet b1.58 linear layer: norm, int8
 * activations, ternary weights, rescale).
 * @module
 */
import { BitLinear } from "./bitlinear.ts";

export { BitLinear, type BitLinearNorm, type BitLinearOptions } from "./bitlinear.ts";

/** The layers namespace (`bn.nn`). */
export const nn = { BitLinear } as const;
