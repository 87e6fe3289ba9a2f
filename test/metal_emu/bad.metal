// Must not compile (test/metal_emu.test.ts): a vector constructor with the wrong number of
// components, which clang would otherwise take (a float4 from 3 values). emu.h refuses it at compile
// time with a message that names the mistake, as the Metal compiler does.
struct P { uint n; };
BN_KERNEL(k1, P) { float4 v = float4(float2(1.0f), 2.0f); ((device float*)b1)[0] = v.x; }
#define BN_KERNEL_LIST(X) X(k1, P)
