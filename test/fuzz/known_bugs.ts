// The library bugs the API fuzzer found (see fuzzer.ts), matched against its failures.
import type { Failure } from "./common.ts";

/**
 * Library bugs this fuzzer found and reported (issue 8), counted apart from the failures so that
 * the short run keeps guarding everything else; `strict` makes them failures again. Delete an
 * entry once its bug is fixed in src/.
 */
export const KNOWN_BUGS: readonly { id: string; what: string; match: (f: Failure) => boolean }[] = [
  // Fixed (each had its entry here until then): non-array reshape/view targets, string or Symbol
  // clip bounds, BigInt and Symbol arguments in error messages, in-place writes to broadcast views.
];
