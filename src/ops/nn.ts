/**
 * softmax, logSoftmax, layerNorm, rmsNorm.
 * (Being written.)
 * @module
 */
export {};
