/**
 * Devices present and what they can do. The CPU is always present; GPU backends are found at
 * run time (never required) and appear here when they load.
 * @module
 */
import { MB, SimdLevel } from "./abi.gen.ts";
import { DeviceError, show } from "./errors.ts";
import { check, lastMessage, libraryInfo, mb, sym } from "./native.ts";

/** What `deviceCapabilities()` reports for the CPU. */
export interface CpuCapabilities {
  device: "cpu";
  /** SIMD level the kernels run at: "avx512" | "avx2" | "sse" | "neon" | "scalar". */
  simd: string;
  /** Best level this processor supports. */
  simdDetected: string;
  /** Levels compiled into this library. */
  simdCompiled: string[];
  /** True when BITNET_SIMD (or setSimdLevel) chose a lower level than detected. */
  simdForced: boolean;
  /** Vector register width the chosen kernels use, in bits (0 for scalar). */
  vectorBits: number;
  /** Processor features relevant to the kernels (e.g. "avx512_vnni"). */
  features: string[];
  cores: number;
  /** Threads in the engine's pool (BITNET_THREADS, default one per core). */
  threads: number;
  caches: { l1d: number; l2: number; l3: number };
  arch: string;
  platform: string;
  library: { path: string; source: string; abi: number };
}

const FEATURE_BITS = [
  "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd",
  "avx512_vnni", "avx512_bf16", "avx_vnni", "neon", "dotprod",
];

const levelName = (code: number) => Object.entries(SimdLevel).find(([, v]) => v === code)?.[0] ?? `level${code}`;

/** What `deviceCapabilities("cuda")` reports for an NVIDIA GPU. */
export interface CudaCapabilities {
  device: string;
  kind: "cuda";
  name: string;
  /** e.g. "9.0" for an H100. */
  computeCapability: string;
  multiprocessors: number;
  /** Bytes of device memory in total and free now. */
  memory: { total: number; free: number };
  l2Bytes: number;
  /** SM clock, memory clock (kHz) and memory bus width (bits), as the driver reports them. */
  clockKHz: number;
  memoryClockKHz: number;
  memoryBusBits: number;
  /** CUDA driver version, e.g. 13000 for 13.0. */
  driverVersion: number;
  /**
   * Where this device's kernels came from: "not built" (no GPU op ran yet), "compiled" (NVRTC,
   * this process) or "cache" (the CUBIN a previous process wrote to the disk cache:
   * `$BITNET_CACHE_DIR`, else `$XDG_CACHE_HOME/bitnet-bun`, else `~/.cache/bitnet-bun`;
   * `BITNET_NO_KERNEL_CACHE=1` turns it off).
   */
  kernels: "not built" | "compiled" | "cache";
}

/**
 * What `deviceCapabilities("metal")` reports for a Mac's GPU (through the Metal shim, metal/). On
 * Metal run the same ops as on CUDA (elementwise, reductions, activations, softmax and norms, the
 * ternary matmul and BitLinear inference; the engine's kernels in metal/kernels.metal) and
 * `matmul` in f32/f16 on MPS (bf16 products are DTypeErrors there). `name` is the shim's CPU
 * emulator's ("bitnet Metal emulator (CPU)") where the tests run it on Linux.
 */
export interface MetalCapabilities {
  device: "metal";
  kind: "metal";
  name: string;
  /** recommendedMaxWorkingSetSize and maxBufferLength, in bytes. */
  memory: { recommendedWorkingSet: number; maxBuffer: number };
  /** Whether the GPU shares memory with the CPU (Apple silicon). */
  unifiedMemory: boolean;
}

let cudaCache: { count: number; driver: number; reason: string } | undefined;
let metalCache: { present: boolean; index: number; reason: string } | undefined;

/** The Metal device (macOS, the shim opened on first use, never required) and the engine's index for it. */
export function metalState(): { present: boolean; index: number; reason: string } {
  if (metalCache === undefined) {
    check(sym.bn_metal_info(-1), "devices");
    metalCache = { present: mb[MB.info] === 1, index: mb[MB.info + 1]!, reason: lastMessage() };
  }
  return metalCache;
}

/** Whether engine device index `i` is the Metal device. */
export function isMetalIndex(i: number): boolean {
  return i !== 0 && i === metalState().index;
}

/** CUDA devices found at run time (the driver is opened on first use, never required). */
export function cudaState(): { count: number; driver: number; reason: string } {
  if (cudaCache === undefined) {
    check(sym.bn_cuda_info(-1), "devices");
    cudaCache = { count: mb[MB.info]!, driver: mb[MB.info + 1]!, reason: lastMessage() };
  }
  return cudaCache;
}

/** The device string of engine device index `i`: 0 "cpu", 1 "cuda", 1 + k "cuda:k", the Metal index "metal". */
export function deviceName(i: number): string {
  return i === 0 ? "cpu" : i === 1 ? "cuda" : isMetalIndex(i) ? "metal" : `cuda:${i - 1}`;
}

/**
 * The engine device index of a device string ("cpu", "cuda" = "cuda:0", "cuda:1", ..., "metal").
 * @throws DeviceError naming the devices present, and why CUDA or Metal is absent when it is.
 */
export function parseDevice(device: string | undefined, op: string): number {
  if (device === undefined || device === "cpu") return 0;
  if (device === "metal" || device === "metal:0") {
    const { present, index, reason } = metalState();
    if (present) return index;
    throw new DeviceError(op, `device ${show(device)} is not available: ${reason}`);
  }
  const m = typeof device === "string" ? /^cuda(?::(\d+))?$/.exec(device) : null;
  if (m) {
    const k = m[1] === undefined ? 0 : Number(m[1]);
    const { count, reason } = cudaState();
    if (k < count) return 1 + k;
    throw new DeviceError(op, count === 0 ? `device ${show(device)} is not available: ${reason}` : `device ${show(device)} does not exist (present: ${devices().join(", ")})`);
  }
  throw new DeviceError(op, `unknown device ${show(device)} (present: ${devices().join(", ")}; devices are "cpu", "cuda", "cuda:N", "metal")`);
}

/**
 * Devices present: "cpu", then "cuda", "cuda:1", ... for each NVIDIA GPU the driver reports, then
 * "metal" on a Mac whose Metal shim loads.
 */
export function devices(): string[] {
  const { count } = cudaState();
  return ["cpu", ...Array.from({ length: count }, (_, k) => deviceName(1 + k)), ...(metalState().present ? ["metal"] : [])];
}

/**
 * The device to run on: the first CUDA GPU when one is present ("cuda"), else the Mac's GPU when
 * the Metal shim loads ("metal"), else "cpu". On a GPU run elementwise ops, reductions,
 * activations, norms, matmul (cuBLAS; MPS on Metal), ternary matmul and BitLinear inference; an
 * op without a GPU kernel (linear algebra, cumsum, gradients' kernels, optimizer updates,
 * quantizer packing) throws DeviceError naming itself, so move such work with `toCpu()`.
 */
export function autoSelectDevice(): string {
  if (cudaState().count > 0) return deviceName(1);
  return metalState().present ? "metal" : "cpu";
}

/**
 * Waits until the work queued on a GPU (default "cuda") has finished; a no-op for "cpu". Reading
 * a GPU tensor's values (`toArray`, `item`, `toCpu`) waits by itself: this is for timing.
 * @throws DeviceError (device not present), NativeError (a kernel failed: the CUDA error name).
 */
export function synchronize(device = "cuda"): void {
  const idx = parseDevice(device, "synchronize");
  if (isMetalIndex(idx)) check(sym.bn_metal_synchronize(), "synchronize");
  else if (idx > 0) check(sym.bn_cuda_synchronize(idx), "synchronize");
}

/** SIMD level, cores, caches (CPU) or the GPU's facts for a device (default "cpu"). */
export function deviceCapabilities(device?: "cpu"): CpuCapabilities;
export function deviceCapabilities(device: "metal"): MetalCapabilities;
export function deviceCapabilities(device: string): CpuCapabilities | CudaCapabilities | MetalCapabilities;
export function deviceCapabilities(device = "cpu"): CpuCapabilities | CudaCapabilities | MetalCapabilities {
  const idx = parseDevice(device, "deviceCapabilities");
  if (isMetalIndex(idx)) {
    check(sym.bn_metal_info(0), "deviceCapabilities");
    const i = MB.info;
    return {
      device: "metal",
      kind: "metal",
      name: lastMessage(),
      memory: { recommendedWorkingSet: mb[i]!, maxBuffer: mb[i + 1]! },
      unifiedMemory: mb[i + 2] === 1,
    };
  }
  if (idx > 0) {
    check(sym.bn_cuda_info(idx - 1), "deviceCapabilities");
    const i = MB.info;
    return {
      device: deviceName(idx),
      kind: "cuda",
      name: lastMessage(),
      computeCapability: `${mb[i]}.${mb[i + 1]}`,
      multiprocessors: mb[i + 2]!,
      l2Bytes: mb[i + 3]!,
      clockKHz: mb[i + 4]!,
      memoryBusBits: mb[i + 5]!,
      memoryClockKHz: mb[i + 6]!,
      memory: { total: mb[i + 7]!, free: mb[i + 8]! },
      driverVersion: cudaState().driver,
      kernels: (["not built", "compiled", "cache"] as const)[mb[i + 9]!] ?? "not built",
    };
  }
  check(sym.bn_capabilities(), "deviceCapabilities");
  const i = MB.info;
  const bits = mb[i + 3]!;
  const compiledMask = mb[i + 9]!;
  return {
    device: "cpu",
    simd: levelName(mb[i]!),
    simdDetected: levelName(mb[i + 1]!),
    simdCompiled: Object.entries(SimdLevel).filter(([, v]) => (compiledMask >> v) & 1).map(([k]) => k),
    simdForced: mb[i + 2] === 1 || mb[i] !== mb[i + 1],
    vectorBits: mb[i + 8]!,
    features: FEATURE_BITS.filter((_, k) => (bits >> k) & 1),
    cores: mb[i + 4]!,
    threads: mb[i + 10]!,
    caches: { l1d: mb[i + 5]!, l2: mb[i + 6]!, l3: mb[i + 7]! },
    arch: process.arch,
    platform: process.platform,
    library: { ...libraryInfo },
  };
}

/**
 * Switches the CPU kernels to another SIMD level at run time (tests and benchmarks compare
 * levels this way; `BITNET_SIMD` does the same at load). Levels above what the CPU supports throw.
 */
export function setSimdLevel(level: string): void {
  const code = (SimdLevel as Record<string, number>)[level];
  if (code === undefined) throw new DeviceError("setSimdLevel", `unknown SIMD level ${show(level)} (known: ${Object.keys(SimdLevel).join(", ")})`);
  check(sym.bn_set_simd(code), "setSimdLevel");
}
