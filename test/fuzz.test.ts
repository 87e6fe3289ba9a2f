// A short run of the API fuzzer (issue 8): random call sequences from fixed seeds, checked
// against the float64 reference model of test/fuzz/ (reference.ts). The long run is `bun run fuzz`.
import { describe, expect, test } from "bun:test";
import * as bn from "../src/index.ts";
import { formatSummary, runFuzz, type FuzzSummary } from "./fuzz/fuzzer.ts";

const STEPS = 5000;
const SEEDS = [1, 20240607, 4_000_000_007];

/** Failures of one kind, 0 when none. */
const failures = (s: FuzzSummary, kind: string) => s.failuresByKind[kind] ?? 0;

describe("fuzz: random API call sequences", () => {
  for (const seed of SEEDS) {
    test(`seed ${seed}: ${STEPS} steps`, () => {
      const s = runFuzz({ seed, steps: STEPS });
      if (s.failureCount > 0) console.log(formatSummary(s)); // the replay: bun run fuzz --seed <seed>
      expect(s.steps).toBe(STEPS);
      // Both paths were exercised: calls that succeeded and calls that threw (bad arguments).
      expect(s.ok).toBeGreaterThan(STEPS / 2);
      expect(s.threw).toBeGreaterThan(STEPS / 20);
      for (const cls of ["ShapeError", "DTypeError", "DisposedTensorError", "ValueError"]) expect(s.errors[cls] ?? 0).toBeGreaterThan(0);
      // Every thrown error is a BitNetError (but for the library bugs listed in KNOWN_BUGS), of
      // the class the model predicts.
      expect(failures(s, "not-BitNetError")).toBe(0);
      expect(s.foreign).toBe(s.foreignKnown);
      const bitnet = Object.keys(s.errors).filter((k) => (bn as unknown as Record<string, { prototype?: unknown } | undefined>)[k]?.prototype instanceof bn.BitNetError);
      expect(bitnet.reduce((n, k) => n + s.errors[k]!, 0)).toBe(s.threw - s.foreign);
      expect(failures(s, "wrong-class")).toBe(0);
      expect(failures(s, "rejected-valid")).toBe(0);
      expect(failures(s, "accepted-invalid")).toBe(0);
      // Results match the float64 reference; operands are never changed by a call.
      expect(s.comparisons).toBeGreaterThan(STEPS / 3);
      expect(s.maxErrRatio).toBeLessThanOrEqual(1);
      expect(failures(s, "mismatch")).toBe(0);
      expect(failures(s, "not-a-view")).toBe(0);
      expect(failures(s, "operand-changed")).toBe(0);
      // No leaks: per call, at collections, and at the end.
      expect(failures(s, "leak-on-throw")).toBe(0);
      expect(failures(s, "leak-accounting")).toBe(0);
      expect(failures(s, "leak-collected")).toBe(0);
      expect(s.leakedAllocations).toBe(0);
      expect(s.liveTensorsDelta).toBe(0);
      expect(s.failureCount).toBe(0);
    });
  }
});
