/**
 * bitnet-bun: tensors and BitNet b1.58 networks for Bun, on a Zig engine behind bun:ffi.
 *
 * ```ts
 * import * as bn from "bitnet-bun";
 * using x = bn.randn([2, 3], { seed: 0 });
 * console.log(String(x.T));
 * ```
 * @module
 */
export { Tensor, isTensor, type NestedArray, type SliceSpec } from "./tensor.ts";
import "./tensor_device.ts"; // t.to / toCpu / toGpu
export {
  tensor,
  zeros,
  ones,
  empty,
  full,
  arange,
  linspace,
  eye,
  rand,
  randn,
  manualSeed,
  type CreateOptions,
  type TensorOptions,
  type RandOptions,
  type RandnOptions,
  type NestedInput,
} from "./creation.ts";
export { concat, stack, split } from "./ops/join.ts";
export { take } from "./ops/gather.ts";
export { type DType, type DataArray, DTYPES, promoteTypes } from "./dtype.ts";
export { memory, type MemoryStats, type LiveAllocation } from "./memory.ts";
export { devices, autoSelectDevice, deviceCapabilities, setSimdLevel, synchronize, type CpuCapabilities, type CudaCapabilities, type MetalCapabilities } from "./device.ts";
export {
  BitNetError,
  ShapeError,
  DTypeError,
  DeviceError,
  OutOfMemoryError,
  DisposedTensorError,
  LinAlgError,
  FormatError,
  NativeError,
  ValueError,
  AutogradError,
} from "./errors.ts";
export * from "./ops/reduce.ts";
export * from "./ops/nn.ts";
export * from "./ops/elementwise.ts";
export { linalg, type QrOptions, type SvdOptions, type QrResult, type SvdResult, type EighResult, type NormOrder } from "./ops/linalg.ts";
export * from "./ops/matmul.ts";
export { gguf, type GGUFContents, type GGUFFile, type GGUFValue, type GGUFType } from "./io/gguf.ts";
export { save, load } from "./io/npy.ts";
export { quant, QuantizedTensor, TernaryTensor, TERNARY_EPS, type Int8Granularity, type Int8Options, type TernaryFormat, type TernaryGranularity, type TernaryOptions } from "./quant/index.ts";
export { backward, noGrad, enableGrad, isGradEnabled, type BackwardOptions } from "./autograd/index.ts";
export {
  nn,
  BitLinear,
  Linear,
  RMSNorm,
  LayerNorm,
  Embedding,
  Sequential,
  Module,
  type BitLinearNorm,
  type BitLinearOptions,
  type LinearOptions,
  type NormOptions,
  type EmbeddingOptions,
  type Layer,
  type LossOptions,
  type Reduction,
} from "./nn/index.ts";
export { optim, Optimizer, SGD, AdamW, type SGDOptions, type AdamWOptions } from "./optim/index.ts";
