/**
 * The one door: the only file that imports bun:ffi. It finds and opens libbitnet, checks its ABI
 * version, maps this thread's mailbox, and turns status codes into typed errors.
 *
 * Library lookup, first match wins:
 *   1. `BITNET_BUN_LIB` (a path; if set and unusable, that is an error, no fallback),
 *   2. the prebuilt library shipped in the package for `process.platform`-`process.arch`
 *      (embedded into `bun build --compile` executables),
 *   3. the local build output `zig-out/lib/` (a development checkout after `zig build`).
 * @module
 */
import { dlopen, toArrayBuffer, type Library } from "bun:ffi";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ABI_VERSION, MB, STAGE_LEN, Status, symbols } from "./abi.gen.ts";
import {
  BitNetError,
  DeviceError,
  DTypeError,
  FormatError,
  LinAlgError,
  NativeError,
  OutOfMemoryError,
  ShapeError,
  ValueError,
} from "./errors.ts";

const platform = `${process.platform}-${process.arch}`;
const libFile = process.platform === "darwin" ? "libbitnet.dylib" : process.platform === "win32" ? "bitnet.dll" : "libbitnet.so";

/** The prebuilt library of this platform, as a file path (embedded by `bun build --compile`). */
async function prebuiltPath(): Promise<string | undefined> {
  try {
    switch (platform) {
      case "linux-x64":
        return (await import("../prebuilds/linux-x64/libbitnet.so", { with: { type: "file" } })).default;
      case "linux-arm64":
        return (await import("../prebuilds/linux-arm64/libbitnet.so", { with: { type: "file" } })).default;
      case "darwin-arm64":
        return (await import("../prebuilds/darwin-arm64/libbitnet.dylib", { with: { type: "file" } })).default;
      case "darwin-x64":
        return (await import("../prebuilds/darwin-x64/libbitnet.dylib", { with: { type: "file" } })).default;
    }
  } catch {
    // Not shipped in this checkout: fall through to the local build.
  }
  return undefined;
}

/** bun:ffi types by name, as this library passes them: pointers as plain numbers or typed arrays. */
type ArgOf<T> = T extends "ptr" ? number | ArrayBufferView | null : T extends "bool" ? boolean : number;
type RetOf<T> = T extends "void" ? void : T extends "ptr" ? number | null : T extends "bool" ? boolean : number;
type Symbols = {
  [K in keyof typeof symbols]: (typeof symbols)[K] extends { args: infer A extends readonly string[]; returns: infer R }
    ? (...args: { [I in keyof A]: ArgOf<A[I]> }) => RetOf<R>
    : never;
};

interface Opened {
  lib: Library<typeof symbols>;
  path: string;
  source: "BITNET_BUN_LIB" | "prebuilt" | "local build";
}

function open(path: string, source: Opened["source"]): Opened {
  let lib: Library<typeof symbols>;
  try {
    lib = dlopen(path, symbols);
  } catch (e) {
    throw new NativeError("load", `cannot open ${source} library ${path} for ${platform}: ${(e as Error).message}`);
  }
  const v = lib.symbols.bn_abi_version();
  if (v !== ABI_VERSION) {
    lib.close();
    throw new NativeError(
      "load",
      `${path} speaks ABI ${v} but this bitnet-bun expects ABI ${ABI_VERSION}: rebuild it (bun run build) or reinstall the package`,
    );
  }
  return { lib, path, source };
}

async function load(): Promise<Opened> {
  const env = process.env.BITNET_BUN_LIB;
  if (env) {
    if (!existsSync(env)) throw new NativeError("load", `BITNET_BUN_LIB=${env} does not exist (platform ${platform})`);
    return open(env, "BITNET_BUN_LIB");
  }
  const looked: string[] = [];
  const pre = await prebuiltPath();
  if (pre) return open(pre, "prebuilt");
  looked.push(join(import.meta.dir, "..", "prebuilds", platform, libFile));
  const local = join(import.meta.dir, "..", "zig-out", "lib", libFile);
  looked.push(local);
  if (existsSync(local)) return open(local, "local build");
  throw new NativeError(
    "load",
    `no bitnet-bun native library for platform ${platform}. Looked for: ${looked.join(", ")}. ` +
      `Prebuilt libraries ship for linux-x64, linux-arm64, darwin-x64 and darwin-arm64; ` +
      `elsewhere build one with \`bun run setup\` or point BITNET_BUN_LIB at it.`,
  );
}

const opened = await load();

/** The raw exports of libbitnet (see zig/root.zig). */
export const sym = opened.lib.symbols as unknown as Symbols;

/** Where the library came from (reported by deviceCapabilities). */
export const libraryInfo = { path: opened.path, source: opened.source, abi: ABI_VERSION } as const;

/** Address of the no-op deallocator passed to toArrayBuffer (memory is owned by the pool). */
const borrowedRelease: number = (opened.lib.symbols.bn_borrowed_release as unknown as { ptr: number }).ptr;

const toArrayBufferWithDeallocator = toArrayBuffer as unknown as (
  ptr: number,
  byteOffset: number,
  byteLength: number,
  context: number,
  deallocator: number,
) => ArrayBuffer;

/**
 * A zero-copy ArrayBuffer over `byteLength` bytes of engine memory at `ptr + byteOffset`. It
 * borrows: collecting it frees nothing (an explicit no-op deallocator), so the caller must keep
 * the memory alive for as long as the buffer is reachable.
 */
export function borrowedArrayBuffer(ptr: number, byteOffset: number, byteLength: number): ArrayBuffer {
  return toArrayBufferWithDeallocator(ptr, byteOffset, byteLength, ptr, borrowedRelease);
}

// ------------------------------------------------------------------------------------------------
// Mailbox: this thread's scratch area for array arguments and outputs.
// ------------------------------------------------------------------------------------------------

const mbPtr = sym.bn_mailbox();
if (!mbPtr) throw new NativeError("load", "the engine could not allocate its thread mailbox");
/** f64 slots of the mailbox (indices in `MB`). */
export const mb = new Float64Array(borrowedArrayBuffer(mbPtr, 0, 256 * 8));
const mbMsg = new Uint8Array(borrowedArrayBuffer(mbPtr, 256 * 8, 1024));
/** Address of this thread's staging area: up to STAGE_LEN f64 values handed to one native call. */
export const stagePtr: number = mbPtr + 256 * 8 + 1024;
/** The staging area as f64 (write, then pass `stagePtr` as a bn_copy source with dtype f64). */
export const stage = new Float64Array(borrowedArrayBuffer(mbPtr, 256 * 8 + 1024, STAGE_LEN * 8));
export { STAGE_LEN };
const decoder = new TextDecoder();

export { MB };

/** The message the engine left for the last failure on this thread. */
export function lastMessage(): string {
  const n = mb[MB.msg_len] ?? 0;
  return decoder.decode(mbMsg.subarray(0, Math.min(n, mbMsg.length)));
}

/** Builds the BitNetError subclass matching a status code. */
export function errorFor(status: number, op: string, context = ""): BitNetError {
  // Native messages name the engine entry point ("matmul: ..."); the error adds `op` itself.
  const raw = lastMessage();
  const msg = (raw.startsWith(`${op}: `) ? raw.slice(op.length + 2) : raw) + (context ? ` (${context})` : "");
  switch (status) {
    case Status.shape:
      return new ShapeError(op, msg);
    case Status.dtype:
      return new DTypeError(op, msg);
    case Status.device:
      return new DeviceError(op, msg);
    case Status.out_of_memory:
    case Status.limit_exceeded:
      return new OutOfMemoryError(op, msg);
    case Status.linalg:
      return new LinAlgError(op, msg);
    case Status.format:
      return new FormatError(op, msg);
    case Status.invalid_argument:
      return new ValueError(op, msg);
    default:
      return new NativeError(op, `${msg} [status ${status}]`);
  }
}

/** Throws the typed error for a non-zero status. */
export function check(status: number, op: string, context?: string): void {
  if (status !== 0) throw errorFor(status, op, context);
}

/** Writes a shape and up to four stride vectors into the mailbox's array slots. */
export function putLayout(shape: readonly number[], s0?: readonly number[], s1?: readonly number[], s2?: readonly number[], s3?: readonly number[]): void {
  const n = shape.length;
  for (let i = 0; i < n; i++) {
    mb[MB.shape + i] = shape[i]!;
    if (s0) mb[MB.strides0 + i] = s0[i]!;
    if (s1) mb[MB.strides1 + i] = s1[i]!;
    if (s2) mb[MB.strides2 + i] = s2[i]!;
    if (s3) mb[MB.strides3 + i] = s3[i]!;
  }
}

export { Status };

check(sym.bn_init(), "load");
