/**
 * The float layers: {@link Linear}, {@link RMSNorm}, {@link LayerNorm}, {@link Embedding}, and
 * the container {@link Sequential}. (BitLinear, the ternary layer, is in bitlinear.ts.)
 * @module
 */
import { ones, rand, randn, zeros } from "../creation.ts";
import { DTypeError, ValueError, fmtShape } from "../errors.ts";
import { take } from "../ops/gather.ts";
import { add } from "../ops/elementwise.ts";
import { matmul } from "../ops/matmul.ts";
import { layerNorm, rmsNorm } from "../ops/nn.ts";
import { Tensor } from "../tensor.ts";
import { type Layer, Module, checkInput, checkSize } from "./module.ts";

function checkSeed(seed: unknown, op: string): number | undefined {
  if (seed === undefined) return undefined;
  if (typeof seed !== "number" || !Number.isSafeInteger(seed) || seed < 0) throw new ValueError(op, `seed must be an integer in [0, 2^53), got ${String(seed)}`);
  return seed;
}

/** Options of {@link Linear}. */
export interface LinearOptions {
  /** Add a learnable bias (default true, as PyTorch). */
  bias?: boolean;
  /** Seed of the initial weights (the bias uses seed + 1); default: the global generator. */
  seed?: number;
}

/**
 * `y = x @ weightᵀ + bias`: weight f32 `[out, in]` and bias `[out]`, both uniform in
 * [-1/√in, 1/√in) at first (PyTorch's `nn.Linear` rule). Any leading shape of `x`.
 */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** f32 `[out, in]` (owned by the layer). */
  readonly weight: Tensor;
  /** f32 `[out]`, or null. */
  readonly bias: Tensor | null;

  constructor(inFeatures: number, outFeatures: number, opts: LinearOptions = {}) {
    super();
    const op = "Linear";
    this.inFeatures = checkSize(inFeatures, "inFeatures", op);
    this.outFeatures = checkSize(outFeatures, "outFeatures", op);
    const seed = checkSeed(opts.seed, op);
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = this._param("weight", rand([outFeatures, inFeatures], { low: -bound, high: bound, seed }));
    this.bias = opts.bias ?? true ? this._param("bias", rand([outFeatures], { low: -bound, high: bound, seed: seed === undefined ? undefined : seed + 1 })) : null;
  }

  /** `[..., in]` → `[..., out]`. */
  forward(x: Tensor): Tensor {
    const op = "Linear.forward";
    this._live(op);
    checkInput(x, this.inFeatures, op, `Linear(in=${this.inFeatures}, out=${this.outFeatures})`);
    const wt = this.weight.T;
    try {
      const y = matmul(x, wt);
      if (this.bias === null) return y;
      try {
        return add(y, this.bias);
      } finally {
        y.dispose();
      }
    } finally {
      wt.dispose();
    }
  }

  override toString(): string {
    return `Linear(in=${this.inFeatures}, out=${this.outFeatures}, bias=${this.bias !== null})`;
  }
}

/** Options of {@link RMSNorm} and {@link LayerNorm}. */
export interface NormOptions {
  /** Added to the variance / mean square (default 1e-5 for LayerNorm, 1e-6 for RMSNorm). */
  eps?: number;
  /** Learnable per-feature weight (ones) and, for LayerNorm, bias (zeros); default true. */
  elementwiseAffine?: boolean;
  /** LayerNorm only: whether the affine part has a bias (default true). */
  bias?: boolean;
}

abstract class NormLayer extends Module {
  readonly dim: number;
  readonly eps: number;
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  constructor(dim: number, opts: NormOptions, dflt: number, withBias: boolean, op: string) {
    super();
    this.dim = checkSize(dim, "dim", op);
    this.eps = opts.eps ?? dflt;
    if (typeof this.eps !== "number" || !(this.eps >= 0)) throw new ValueError(op, `eps must be a number >= 0, got ${String(opts.eps)}`);
    const affine = opts.elementwiseAffine ?? true;
    this.weight = affine ? this._param("weight", ones([dim])) : null;
    this.bias = affine && withBias && (opts.bias ?? true) ? this._param("bias", zeros([dim])) : null;
  }
}

/** RMS normalisation over the last axis with a learnable scale (`bn.rmsNorm`). */
export class RMSNorm extends NormLayer {
  constructor(dim: number, opts: NormOptions = {}) {
    super(dim, opts, 1e-6, false, "RMSNorm");
  }
  forward(x: Tensor): Tensor {
    this._live("RMSNorm.forward");
    checkInput(x, this.dim, "RMSNorm.forward", `RMSNorm(${this.dim})`);
    return rmsNorm(x, { weight: this.weight, eps: this.eps });
  }
}

/** Layer normalisation over the last axis with a learnable scale and shift (`bn.layerNorm`). */
export class LayerNorm extends NormLayer {
  constructor(dim: number, opts: NormOptions = {}) {
    super(dim, opts, 1e-5, true, "LayerNorm");
  }
  forward(x: Tensor): Tensor {
    this._live("LayerNorm.forward");
    checkInput(x, this.dim, "LayerNorm.forward", `LayerNorm(${this.dim})`);
    return layerNorm(x, { weight: this.weight, bias: this.bias, eps: this.eps });
  }
}

/** Options of {@link Embedding}. */
export interface EmbeddingOptions {
  /** Seed of the initial table (standard normal, as PyTorch); default: the global generator. */
  seed?: number;
}

/** A lookup table: integer ids `[...]` → rows `[..., dim]` of `weight` f32 `[num, dim]`. */
export class Embedding extends Module {
  readonly numEmbeddings: number;
  readonly dim: number;
  /** f32 `[num, dim]` (owned by the layer). */
  readonly weight: Tensor;
  constructor(numEmbeddings: number, dim: number, opts: EmbeddingOptions = {}) {
    super();
    const op = "Embedding";
    this.numEmbeddings = checkSize(numEmbeddings, "numEmbeddings", op);
    this.dim = checkSize(dim, "dim", op);
    this.weight = this._param("weight", randn([numEmbeddings, dim], { seed: checkSeed(opts.seed, op) }));
  }
  /** @throws DTypeError (ids not integers), ShapeError (an id outside [-num, num)). */
  forward(ids: Tensor): Tensor {
    const op = "Embedding.forward";
    this._live(op);
    if (!(ids instanceof Tensor)) throw new DTypeError(op, `ids must be an integer Tensor, got ${ids === null ? "null" : typeof ids}`);
    if (ids._dt.isFloat || ids._dt.name === "bool") throw new DTypeError(op, `ids must be an integer tensor, got ${ids.dtype} ${fmtShape(ids.shape)}`);
    return take(this.weight, ids, 0);
  }
}

/**
 * Runs layers in order. Modules become children named "0", "1", ...; plain functions (`bn.relu`,
 * `(x) => x.gelu()`) run between them. Intermediate results are released as soon as the next
 * layer has consumed them (the graph keeps what backward needs).
 */
export class Sequential extends Module {
  readonly layers: readonly Layer[];
  constructor(...layers: Layer[]) {
    super();
    layers.forEach((l, i) => {
      if (l instanceof Module) this._child(String(i), l);
      else if (typeof l !== "function") throw new ValueError("Sequential", `layer ${i} must be a Module or a function, got ${l === null ? "null" : typeof l}`);
    });
    this.layers = layers;
  }
  forward(x: Tensor): Tensor {
    this._live("Sequential.forward");
    let h = x;
    for (const l of this.layers) {
      const next = l instanceof Module ? l.forward(h) : l(h);
      if (h !== x && next !== h) h.dispose();
      h = next;
    }
    return h;
  }
}
