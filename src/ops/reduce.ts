/**
 * Reductions: sum mean prod min max argmin argmax std var logsumexp cumsum.
 * (Being written.)
 * @module
 */
export {};
