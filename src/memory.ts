/**
 * Storage: pool blocks seen from JS, and the rules that release each one exactly once.
 *
 * A {@link Storage} is a handle with a permanent slot in a table of plain numbers. The handle is
 * registered once with a FinalizationRegistry (holding its slot number) and watched by a WeakRef.
 * Storage is released
 *   - by `dispose()` when the last tensor over it is disposed and no `t.data` array was handed out
 *     (the handle then goes back to a free list and is reused without registering again: that is
 *     what keeps create + dispose under 100 ns), or
 *   - by the garbage collector when the handle becomes unreachable (the registry callback frees
 *     the block if the slot still holds one), or
 *   - by a synchronous collection when the pool refuses an allocation (WeakRef scan).
 * A slot is recycled only by the registry callback, so a late callback can never free a block that
 * a newer handle owns. `t.data` arrays keep their storage reachable (a property on the
 * ArrayBuffer), so freeing never races a live view.
 * @module
 */
import { MB, Status, check, errorFor, mb, sym } from "./native.ts";
import { deviceName, parseDevice } from "./device.ts";

/** A refcounted pool block. Internal: users see tensors. */
export class Storage {
  /** Address of the block (0 once released). */
  ptr = 0;
  nbytes = 0;
  /** Engine device index (0 = cpu). */
  device = 0;
  /** Live (not disposed) tensors over this storage. */
  refs = 0;
  /** A `t.data` array was handed out: only the garbage collector may free it now. */
  exported = false;
  /** What the block was created as (for memory.liveAllocations). */
  dtype = "";
  shape: readonly number[] = [];
  tag: string | undefined = undefined;
  /** Bumped by every in-place write through the library (autograd checks saved tensors against it). */
  version = 0;
  constructor(readonly slot: number) {}
}

// ---- slot table (plain numbers only: nothing here keeps a handle alive) -----------------------
// slotPtr[s] != 0 while the handle of slot s owns a block; the registry callback and the
// synchronous collection free through these entries once the handle itself is gone.
const slotPtr: number[] = [];
const slotDevice: number[] = [];
const slotBytes: number[] = [];
const slotWeak: (WeakRef<Storage> | undefined)[] = [];
const freeSlots: number[] = [];
const spare: Storage[] = [];
const MAX_SPARE = 4096;

/** Per-device counters kept on the JS side. */
const liveCount: number[] = new Array<number>(9).fill(0);
const liveBytes: number[] = new Array<number>(9).fill(0);

let currentTag: string | undefined;
let bytesSinceCollect = 0;
let collectThreshold = 256 * 1024 * 1024;
let lastCollect = 0;

const registry = new FinalizationRegistry<number>((slot) => {
  if (slotPtr[slot] !== 0) freeSlot(slot);
  slotWeak[slot] = undefined;
  freeSlots.push(slot);
});

function freeSlot(slot: number): void {
  const dev = slotDevice[slot]!;
  const st = sym.bn_free(dev, slotPtr[slot]!);
  // A failure would mean the table and the pool disagree: surface it, never ignore it.
  if (st !== 0) throw errorFor(st, "free");
  slotPtr[slot] = 0;
  liveCount[dev]!--;
  liveBytes[dev]! -= slotBytes[slot]!;
}

function newHandle(): Storage {
  const slot = freeSlots.length > 0 ? freeSlots.pop()! : slotPtr.length;
  const h = new Storage(slot);
  slotPtr[slot] = 0;
  slotDevice[slot] = 0;
  slotBytes[slot] = 0;
  registry.register(h, slot);
  slotWeak[slot] = new WeakRef(h);
  return h;
}

/**
 * A new storage of `nbytes` on engine device `device`, recorded with the dtype and shape it was
 * made for (for `memory.liveAllocations()`). Throws OutOfMemoryError past the limit after one
 * synchronous collection.
 */
export function allocate(nbytes: number, device: number, dtype: string, shape: readonly number[], op: string, zero = false): Storage {
  const z = zero ? 1 : 0;
  let st = sym.bn_alloc(device, nbytes, z);
  if (st !== 0) {
    if (st === Status.limit_exceeded && collectGarbage() > 0) st = sym.bn_alloc(device, nbytes, z);
    if (st !== 0) throw errorFor(st, op, `${nbytes} bytes for ${dtype} [${shape.join(", ")}]`);
  }
  const h = spare.length > 0 ? spare.pop()! : newHandle();
  const p = mb[MB.out]!;
  h.ptr = p;
  h.nbytes = nbytes;
  h.device = device;
  h.refs = 1;
  h.exported = false;
  h.version = 0;
  h.dtype = dtype;
  h.shape = shape;
  h.tag = currentTag;
  const s = h.slot;
  slotPtr[s] = p;
  slotDevice[s] = device;
  slotBytes[s] = nbytes;
  liveCount[device]!++;
  liveBytes[device]! += nbytes;
  bytesSinceCollect += nbytes;
  if (bytesSinceCollect > collectThreshold) backgroundPressure();
  return h;
}

/** Called when the last tensor over `h` is disposed. */
export function release(h: Storage): void {
  if (h.exported) return; // a t.data array may still be reachable: the collector frees it
  freeSlot(h.slot);
  h.ptr = 0;
  if (spare.length < MAX_SPARE) spare.push(h);
}

/**
 * Runs a full garbage collection and frees, right now, every block whose storage became
 * unreachable (without waiting for the registry callbacks). Returns the number freed.
 */
export function collectGarbage(): number {
  Bun.gc(true);
  lastCollect = performance.now();
  bytesSinceCollect = 0;
  let freed = 0;
  for (let slot = 0; slot < slotPtr.length; slot++) {
    if (slotPtr[slot] !== 0 && slotWeak[slot] !== undefined && slotWeak[slot]!.deref() === undefined) {
      freeSlot(slot);
      freed++;
    }
  }
  let total = 0;
  for (const b of liveBytes) total += b;
  collectThreshold = Math.max(limitBytes > 0 ? limitBytes / 4 : 256 * 1024 * 1024, limitBytes > 0 ? 0 : 2 * total);
  return freed;
}

/** Native memory grows unseen by the JS heap: collect at a bounded rate when a lot was allocated. */
function backgroundPressure(): void {
  if (performance.now() - lastCollect < 50) {
    bytesSinceCollect = 0;
    return;
  }
  collectGarbage();
}

// ------------------------------------------------------------------------------------------------
// Public memory API (bn.memory)
// ------------------------------------------------------------------------------------------------

/** Pool counters of one device. */
export interface MemoryStats {
  /** Bytes in blocks handed out (block sizes, rounded up to the pool's size classes). */
  bytesInUse: number;
  /** Bytes the pool holds from the system (in use + cached). */
  bytesReserved: number;
  /** Highest `bytesInUse` since start (or `memory.resetPeak()`). */
  peakBytes: number;
  allocations: number;
  frees: number;
  /** Allocations served from cached memory. */
  poolHits: number;
  /** Allocations that needed new memory from the system. */
  poolMisses: number;
  /** Storages still held (views share one storage). */
  liveTensors: number;
  /** The limit set by `memory.setLimit` (0 = none). */
  limit: number;
}

/** One entry of `memory.liveAllocations()`. */
export interface LiveAllocation {
  id: number;
  device: string;
  bytes: number;
  dtype: string;
  shape: number[];
  tag?: string;
  /** A `t.data` array was handed out: freed by the garbage collector, not by dispose. */
  heldByData: boolean;
}

let limitBytes = 0;

/** Maps a device string to the engine's device index (0 = cpu, 1 + k = cuda:k). */
export function deviceIndex(device: string | undefined, op: string): number {
  return parseDevice(device, op);
}

export const memory = {
  /** Pool counters for a device (default "cpu"). */
  stats(device?: string): MemoryStats {
    const d = deviceIndex(device, "memory.stats");
    check(sym.bn_pool_stats(d), "memory.stats");
    const i = MB.info;
    return {
      bytesInUse: mb[i]!,
      bytesReserved: mb[i + 1]!,
      peakBytes: mb[i + 2]!,
      allocations: mb[i + 3]!,
      frees: mb[i + 4]!,
      poolHits: mb[i + 5]!,
      poolMisses: mb[i + 6]!,
      liveTensors: liveCount[d]!,
      limit: mb[i + 8]!,
    };
  },
  /** Returns cached, unused blocks to the system; `bytesReserved` drops toward `bytesInUse`. */
  trim(device?: string): void {
    check(sym.bn_pool_trim(deviceIndex(device, "memory.trim")), "memory.trim");
  },
  /**
   * Caps `bytesInUse`. An allocation past the cap first triggers one garbage collection (freeing
   * unreachable tensors), then throws OutOfMemoryError. 0 removes the cap.
   */
  setLimit(bytes: number, device?: string): void {
    check(sym.bn_pool_set_limit(deviceIndex(device, "memory.setLimit"), bytes), "memory.setLimit");
    limitBytes = bytes;
    collectThreshold = bytes > 0 ? bytes / 4 : 256 * 1024 * 1024;
  },
  /** Restarts `peakBytes` from the current `bytesInUse`. */
  resetPeak(device?: string): void {
    check(sym.bn_pool_reset_peak(deviceIndex(device, "memory.resetPeak")), "memory.resetPeak");
  },
  /** Every storage still held, with what it was created as (leak hunting). */
  liveAllocations(device?: string): LiveAllocation[] {
    const want = device === undefined ? -1 : deviceIndex(device, "memory.liveAllocations");
    const out: LiveAllocation[] = [];
    for (let s = 0; s < slotPtr.length; s++) {
      if (slotPtr[s] === 0 || (want >= 0 && slotDevice[s] !== want)) continue;
      const h = slotWeak[s]?.deref();
      if (h === undefined) continue; // unreachable: freed by the next collection
      const e: LiveAllocation = { id: s, device: deviceName(slotDevice[s]!), bytes: slotBytes[s]!, dtype: h.dtype, shape: [...h.shape], heldByData: h.exported };
      if (h.tag !== undefined) e.tag = h.tag;
      out.push(e);
    }
    return out;
  },
  /** Tags every allocation made while `fn` runs (shown by `liveAllocations`). */
  withTag<T>(tag: string, fn: () => T): T {
    const prev = currentTag;
    currentTag = tag;
    try {
      return fn();
    } finally {
      currentTag = prev;
    }
  },
  /** Runs a full collection now and frees unreachable tensors; returns how many were freed. */
  collect(): number {
    return collectGarbage();
  },
};
