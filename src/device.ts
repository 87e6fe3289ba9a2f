/**
 * Devices present and what they can do. The CPU is always present; GPU backends are found at
 * run time (never required) and appear here when they load.
 * @module
 */
import { MB, SimdLevel } from "./abi.gen.ts";
import { DeviceError } from "./errors.ts";
import { check, libraryInfo, mb, sym } from "./native.ts";

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

/** Devices present, best last: always "cpu". */
export function devices(): string[] {
  return ["cpu"];
}

/** The best device present (a GPU when one is found, else "cpu"). */
export function autoSelectDevice(): string {
  const d = devices();
  return d[d.length - 1]!;
}

/** SIMD level, cores, caches (CPU) for a device (default "cpu"). */
export function deviceCapabilities(device = "cpu"): CpuCapabilities {
  if (device !== "cpu") throw new DeviceError("deviceCapabilities", `device ${JSON.stringify(device)} is not present (present: ${devices().join(", ")})`);
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
  if (code === undefined) throw new DeviceError("setSimdLevel", `unknown SIMD level ${JSON.stringify(level)} (known: ${Object.keys(SimdLevel).join(", ")})`);
  check(sym.bn_set_simd(code), "setSimdLevel");
}
