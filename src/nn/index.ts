/**
 * `bn.nn`: neural-network layers and losses. {@link BitLinear} (the BitNet b1.58 linear layer:
 * norm, int8 activations, ternary weights, rescale; trains with straight-through gradients),
 * {@link Linear}, {@link RMSNorm}, {@link LayerNorm}, {@link Embedding}, {@link Sequential}, the
 * base {@link Module}, and the losses {@link crossEntropy} and {@link mse}.
 * @module
 */
import { BitLinear } from "./bitlinear.ts";
import { Embedding, LayerNorm, Linear, RMSNorm, Sequential } from "./layers.ts";
import { crossEntropy, mse } from "./loss.ts";
import { Module } from "./module.ts";

export { BitLinear, type BitLinearNorm, type BitLinearOptions } from "./bitlinear.ts";
export { Embedding, LayerNorm, Linear, RMSNorm, Sequential, type EmbeddingOptions, type LinearOptions, type NormOptions } from "./layers.ts";
export { crossEntropy, mse, type LossOptions, type Reduction } from "./loss.ts";
export { Module, type Layer, type LoadStateDictOptions } from "./module.ts";

/** The layers namespace (`bn.nn`). */
export const nn = { BitLinear, Linear, RMSNorm, LayerNorm, Embedding, Sequential, Module, crossEntropy, mse } as const;
