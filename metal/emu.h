// The Metal Shading Language environment of the CPU emulator of the shim (metal/emu.cpp), which
// compiles metal/kernels.metal as C++ (clang, -std=c++20): the `metal` namespace (scalar and vector
// types, math, integer and simdgroup functions, simdgroup matrices, barriers, atomics) and the
// kernel conventions of kernels.metal (BN_KERNEL, BN_SHARED, the address-space qualifiers).
//
// Every thread of a threadgroup is a fiber on the CPU (emu.cpp); the groups of a dispatch run one
// after another, so a `static` array is the group's threadgroup memory. A barrier or a simdgroup
// function suspends the fiber until the threads it waits for have arrived.
//
// Only what MSL has is declared here (no erf, expm1, log1p, ...), so that what compiles here should
// compile on a Mac. Not supported (MSL has them):
// - casts between vector types written (float4)v or static_cast<float4>(v): clang BIT-CASTS vectors
//   of one size (int4 -> float4) silently; write float4(v), which converts value by value;
// - bool vectors (bool4): a vector comparison gives an integer mask (0 / -1) here; all(), any()
//   and select() of scalars work, select() of vectors does not;
// - the literal suffix h (1.0h): write half(1.0f); packed_*3 types; bfloat; double;
// - textures, samplers, imageblocks, raster order groups, function constants, [[attributes]];
// - simd_ballot returns a ulong (MSL: a simd_vote, explicitly convertible to one);
//   simdgroup_matrix's thread_elements(); quad_* functions; simd_shuffle_rotate_*;
// - uniform<T>, metal::array (write plain C arrays).
// simd_is_first() is a collective here (every lane of the simdgroup calls it together).
//
// This header includes no C or C++ library header that declares functions: the kernels must see
// metal::abs, metal::sqrt, ... alone (with `using namespace metal`, a global ::abs or ::sqrt from
// <stdlib.h> or <math.h> would make every call ambiguous). emu.cpp includes its system headers
// after the kernels, and #undefs the macros below first.
#ifndef BN_EMU_H
#define BN_EMU_H

#define BN_EMULATED 1

#include <stddef.h>
#include <stdint.h>

// ---- kernel conventions of kernels.metal -------------------------------------------------------

// `constant` memory is read-only in MSL: const here (so that `constant Layout& L` takes p.L, a
// member of the kernel's `const P& p`; `constant const T*` is a duplicate const, a warning that the
// build turns off: -Wno-duplicate-decl-specifier).
#define device
#define constant const
#define thread
#define threadgroup
#define BN_SHARED static
#define BN_KERNEL(name, P)                                                                              \
  void name(const P& p, uchar* b1, uchar* b2, uchar* b3, uchar* b4, uchar* b5, uint3 tg, uint3 ngroups, \
            uint lid, uint nthreads, uint lane, uint sg)

// ---- MSL constants (macros, as in <metal_stdlib>) ------------------------------------------------

#define INFINITY (__builtin_inff())
#define NAN (__builtin_nanf(""))
#define HUGE_VALF (__builtin_huge_valf())
#define MAXFLOAT 0x1.fffffep+127f
#define FLT_MAX 0x1.fffffep+127f
#define FLT_MIN 0x1p-126f
#define FLT_EPSILON 0x1p-23f
#define FLT_MANT_DIG 24
#define HALF_MAX ((half)65504.0f)
#define HALF_MIN ((half)0x1p-14f)
#define HALF_EPSILON ((half)0x1p-10f)
#define CHAR_BIT 8
#define SCHAR_MAX 127
#define SCHAR_MIN (-128)
#define UCHAR_MAX 255
#define CHAR_MAX SCHAR_MAX
#define CHAR_MIN SCHAR_MIN
#define SHRT_MAX 32767
#define SHRT_MIN (-32768)
#define USHRT_MAX 65535
#define INT_MAX 2147483647
#define INT_MIN (-2147483647 - 1)
#define UINT_MAX 4294967295u
#define LONG_MAX 9223372036854775807l
#define LONG_MIN (-9223372036854775807l - 1)
#define ULONG_MAX 18446744073709551615ul
#define M_E_F 2.71828182845904523536f
#define M_LOG2E_F 1.44269504088896340736f
#define M_LOG10E_F 0.434294481903251827651f
#define M_LN2_F 0.693147180559945309417f
#define M_LN10_F 2.30258509299404568402f
#define M_PI_F 3.14159265358979323846f
#define M_PI_2_F 1.57079632679489661923f
#define M_PI_4_F 0.785398163397448309616f
#define M_1_PI_F 0.318309886183790671538f
#define M_2_PI_F 0.636619772367581343076f
#define M_2_SQRTPI_F 1.12837916709551257390f
#define M_SQRT2_F 1.41421356237309504880f
#define M_SQRT1_2_F 0.707106781186547524401f

// ---- the scheduler's side (emu.cpp) --------------------------------------------------------------

namespace bn_emu {
enum : unsigned { SLOT = 32 };  // bytes a lane's value may take in a simdgroup exchange
// The values every lane of the caller's simdgroup passed to the same collective: lane l's bytes at
// data + l * SLOT; `width` lanes (the last simdgroup of a group may be partial).
struct Simd {
  const unsigned char* data;
  unsigned lane;
  unsigned width;
};
// Collective operation codes (a simdgroup whose lanes meet at different collectives is an error).
enum : unsigned {
  OP_SUM = 1, OP_PRODUCT, OP_MAX, OP_MIN, OP_AND, OP_OR, OP_XOR, OP_PREFIX_EXCL, OP_PREFIX_INCL,
  OP_SHUFFLE, OP_SHUFFLE_XOR, OP_SHUFFLE_DOWN, OP_SHUFFLE_UP, OP_BROADCAST, OP_BROADCAST_FIRST,
  OP_ALL, OP_ANY, OP_BARRIER, OP_BALLOT, OP_IS_FIRST
};
// Waits until every lane of the caller's simdgroup has called a collective, each with its value.
Simd simd_exchange(unsigned op, const void* value, unsigned size);
// Waits until every thread of the group has arrived.
void group_barrier();
}  // namespace bn_emu

namespace metal {

// ---- scalar types --------------------------------------------------------------------------------

typedef unsigned char uchar;
typedef unsigned short ushort;
typedef unsigned int uint;
typedef unsigned long ulong;  // 64 bits (LP64), the same type as <sys/types.h>'s ulong
typedef _Float16 half;

// ---- vector types (clang ext_vector_type: .x .y .z .w / .r .g .b .a / swizzles, v[i]) ----------

template <class T>
struct vec_info {
  static constexpr bool is = false;
};
#define BN_EMU_VEC(T, N, name)                       \
  typedef T name __attribute__((ext_vector_type(N))); \
  template <>                                         \
  struct vec_info<name> {                             \
    static constexpr bool is = true;                  \
    typedef T elem;                                   \
    static constexpr int n = N;                       \
  };
#define BN_EMU_VECS(T, base) BN_EMU_VEC(T, 2, base##2) BN_EMU_VEC(T, 3, base##3) BN_EMU_VEC(T, 4, base##4)
BN_EMU_VECS(signed char, char)
BN_EMU_VECS(unsigned char, uchar)
BN_EMU_VECS(short, short)
BN_EMU_VECS(unsigned short, ushort)
BN_EMU_VECS(int, int)
BN_EMU_VECS(unsigned int, uint)
BN_EMU_VECS(long, long)
BN_EMU_VECS(unsigned long, ulong)
BN_EMU_VECS(_Float16, half)
BN_EMU_VECS(float, float)
#undef BN_EMU_VECS
#undef BN_EMU_VEC
// vec<T, N>: the same types (vec<float, 4> is float4).
template <class T, int N>
using vec = T __attribute__((ext_vector_type(N)));
// Packed vectors: the element's alignment (size still rounds 3 up to 4, unlike MSL: no packed_*3).
typedef float packed_float2 __attribute__((ext_vector_type(2), aligned(4)));
typedef float packed_float4 __attribute__((ext_vector_type(4), aligned(4)));
typedef _Float16 packed_half2 __attribute__((ext_vector_type(2), aligned(2)));
typedef _Float16 packed_half4 __attribute__((ext_vector_type(4), aligned(2)));
typedef signed char packed_char4 __attribute__((ext_vector_type(4), aligned(1)));
typedef unsigned char packed_uchar4 __attribute__((ext_vector_type(4), aligned(1)));
typedef short packed_short2 __attribute__((ext_vector_type(2), aligned(2)));
typedef unsigned short packed_ushort2 __attribute__((ext_vector_type(2), aligned(2)));

template <bool B, class T = void>
struct enable_if {};
template <class T>
struct enable_if<true, T> {
  typedef T type;
};
template <class T>
struct type_identity {
  typedef T type;
};
template <class A, class B>
struct is_same {
  static constexpr bool value = false;
};
template <class A>
struct is_same<A, A> {
  static constexpr bool value = true;
};
template <class T>
struct is_floating_point {
  static constexpr bool value = is_same<T, float>::value || is_same<T, half>::value;
};
#define BN_EMU_IF_VEC(V) class = typename enable_if<vec_info<V>::is>::type

// MSL's vector constructors: float4() zeros, float4(x) a scalar's splat or a 4-vector's conversion
// (value by value, as MSL: not a bit cast), float4(a, b, c, d), float4(xy, z, w), ... An ext vector
// type is no class, so `float4(a, b)` would not compile: each vector type's name is also a
// function-like macro (expanded only where `(` follows the name) that calls vec_make<float4>.
// (float4)x and static_cast<float4>(x) are clang's casts, which BIT-CAST between vectors of one
// size: write float4(x).
namespace vec_detail {
template <class A>
constexpr int count() {
  if constexpr (vec_info<A>::is) return vec_info<A>::n;
  else return 1;
}
template <class V, class A>
inline void put(V& r, int& i, const A& a) {
  typedef typename vec_info<V>::elem E;
  if constexpr (vec_info<A>::is) {
    for (int j = 0; j < vec_info<A>::n; j++) r[i++] = (E)a[j];
  } else {
    r[i++] = (E)a;
  }
}
}  // namespace vec_detail
template <class V, class... A>
inline V vec_make(const A&... a) {
  typedef typename vec_info<V>::elem E;
  constexpr int n = vec_info<V>::n;
  if constexpr (sizeof...(A) == 0) {
    return V(E(0));
  } else if constexpr (sizeof...(A) == 1 && (!vec_info<A>::is && ...)) {
    return V((E)(a, ...));
  } else {
    static_assert((vec_detail::count<A>() + ...) == n, "a vector constructor with the wrong number of components");
    V r = V(E(0));
    int i = 0;
    (vec_detail::put(r, i, a), ...);
    return r;
  }
}
#define char2(...) ::metal::vec_make<::metal::char2>(__VA_ARGS__)
#define char3(...) ::metal::vec_make<::metal::char3>(__VA_ARGS__)
#define char4(...) ::metal::vec_make<::metal::char4>(__VA_ARGS__)
#define uchar2(...) ::metal::vec_make<::metal::uchar2>(__VA_ARGS__)
#define uchar3(...) ::metal::vec_make<::metal::uchar3>(__VA_ARGS__)
#define uchar4(...) ::metal::vec_make<::metal::uchar4>(__VA_ARGS__)
#define short2(...) ::metal::vec_make<::metal::short2>(__VA_ARGS__)
#define short3(...) ::metal::vec_make<::metal::short3>(__VA_ARGS__)
#define short4(...) ::metal::vec_make<::metal::short4>(__VA_ARGS__)
#define ushort2(...) ::metal::vec_make<::metal::ushort2>(__VA_ARGS__)
#define ushort3(...) ::metal::vec_make<::metal::ushort3>(__VA_ARGS__)
#define ushort4(...) ::metal::vec_make<::metal::ushort4>(__VA_ARGS__)
#define int2(...) ::metal::vec_make<::metal::int2>(__VA_ARGS__)
#define int3(...) ::metal::vec_make<::metal::int3>(__VA_ARGS__)
#define int4(...) ::metal::vec_make<::metal::int4>(__VA_ARGS__)
#define uint2(...) ::metal::vec_make<::metal::uint2>(__VA_ARGS__)
#define uint3(...) ::metal::vec_make<::metal::uint3>(__VA_ARGS__)
#define uint4(...) ::metal::vec_make<::metal::uint4>(__VA_ARGS__)
#define long2(...) ::metal::vec_make<::metal::long2>(__VA_ARGS__)
#define long3(...) ::metal::vec_make<::metal::long3>(__VA_ARGS__)
#define long4(...) ::metal::vec_make<::metal::long4>(__VA_ARGS__)
#define ulong2(...) ::metal::vec_make<::metal::ulong2>(__VA_ARGS__)
#define ulong3(...) ::metal::vec_make<::metal::ulong3>(__VA_ARGS__)
#define ulong4(...) ::metal::vec_make<::metal::ulong4>(__VA_ARGS__)
#define half2(...) ::metal::vec_make<::metal::half2>(__VA_ARGS__)
#define half3(...) ::metal::vec_make<::metal::half3>(__VA_ARGS__)
#define half4(...) ::metal::vec_make<::metal::half4>(__VA_ARGS__)
#define float2(...) ::metal::vec_make<::metal::float2>(__VA_ARGS__)
#define float3(...) ::metal::vec_make<::metal::float3>(__VA_ARGS__)
#define float4(...) ::metal::vec_make<::metal::float4>(__VA_ARGS__)
#define packed_float2(...) ::metal::vec_make<::metal::packed_float2>(__VA_ARGS__)
#define packed_float4(...) ::metal::vec_make<::metal::packed_float4>(__VA_ARGS__)
#define packed_half2(...) ::metal::vec_make<::metal::packed_half2>(__VA_ARGS__)
#define packed_half4(...) ::metal::vec_make<::metal::packed_half4>(__VA_ARGS__)
#define packed_char4(...) ::metal::vec_make<::metal::packed_char4>(__VA_ARGS__)
#define packed_uchar4(...) ::metal::vec_make<::metal::packed_uchar4>(__VA_ARGS__)
#define packed_short2(...) ::metal::vec_make<::metal::packed_short2>(__VA_ARGS__)
#define packed_ushort2(...) ::metal::vec_make<::metal::packed_ushort2>(__VA_ARGS__)

// ---- bit casts ---------------------------------------------------------------------------------

template <class T, class U>
inline T as_type(U u) {
  static_assert(sizeof(T) == sizeof(U), "as_type: the two types differ in size");
  return __builtin_bit_cast(T, u);
}

// ---- float (and half) math ------------------------------------------------------------------------
// half versions compute in float and round once (the GPU's half functions are at least as loose).

#define BN_EMU_F1(name, e)                                 \
  inline float name(float x) { return e; }                 \
  inline half name(half x) { return (half)name((float)x); }
#define BN_EMU_F2(name, e)                                                     \
  inline float name(float x, float y) { return e; }                            \
  inline half name(half x, half y) { return (half)name((float)x, (float)y); }
#define BN_EMU_F3(name, e)                                                                         \
  inline float name(float x, float y, float z) { return e; }                                       \
  inline half name(half x, half y, half z) { return (half)name((float)x, (float)y, (float)z); }

BN_EMU_F1(fabs, __builtin_fabsf(x))
BN_EMU_F1(exp, __builtin_expf(x))
BN_EMU_F1(exp2, __builtin_exp2f(x))
BN_EMU_F1(exp10, __builtin_powf(10.0f, x))
BN_EMU_F1(log, __builtin_logf(x))
BN_EMU_F1(log2, __builtin_log2f(x))
BN_EMU_F1(log10, __builtin_log10f(x))
BN_EMU_F1(sqrt, __builtin_sqrtf(x))
BN_EMU_F1(rsqrt, 1.0f / __builtin_sqrtf(x))
BN_EMU_F1(sin, __builtin_sinf(x))
BN_EMU_F1(cos, __builtin_cosf(x))
BN_EMU_F1(tan, __builtin_tanf(x))
BN_EMU_F1(asin, __builtin_asinf(x))
BN_EMU_F1(acos, __builtin_acosf(x))
BN_EMU_F1(atan, __builtin_atanf(x))
BN_EMU_F1(sinh, __builtin_sinhf(x))
BN_EMU_F1(cosh, __builtin_coshf(x))
BN_EMU_F1(tanh, __builtin_tanhf(x))
BN_EMU_F1(asinh, __builtin_asinhf(x))
BN_EMU_F1(acosh, __builtin_acoshf(x))
BN_EMU_F1(atanh, __builtin_atanhf(x))
BN_EMU_F1(sinpi, __builtin_sinf(M_PI_F * x))
BN_EMU_F1(cospi, __builtin_cosf(M_PI_F * x))
BN_EMU_F1(tanpi, __builtin_tanf(M_PI_F * x))
BN_EMU_F1(floor, __builtin_floorf(x))
BN_EMU_F1(ceil, __builtin_ceilf(x))
BN_EMU_F1(rint, __builtin_rintf(x))
BN_EMU_F1(round, __builtin_roundf(x))
BN_EMU_F1(trunc, __builtin_truncf(x))
BN_EMU_F1(fract, __builtin_fminf(x - __builtin_floorf(x), 0x1.fffffep-1f))
BN_EMU_F1(saturate, __builtin_fminf(__builtin_fmaxf(x, 0.0f), 1.0f))
BN_EMU_F1(sign, x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : x == x ? 0.0f * x : 0.0f)
BN_EMU_F2(fmax, __builtin_fmaxf(x, y))
BN_EMU_F2(fmin, __builtin_fminf(x, y))
BN_EMU_F2(fmod, __builtin_fmodf(x, y))
BN_EMU_F2(pow, __builtin_powf(x, y))
BN_EMU_F2(powr, __builtin_powf(x, y))
BN_EMU_F2(atan2, __builtin_atan2f(x, y))
BN_EMU_F2(copysign, __builtin_copysignf(x, y))
BN_EMU_F2(fdim, __builtin_fdimf(x, y))
BN_EMU_F2(nextafter, __builtin_nextafterf(x, y))
BN_EMU_F2(step, y < x ? 0.0f : 1.0f)  // step(edge, x)
BN_EMU_F3(fma, __builtin_fmaf(x, y, z))
BN_EMU_F3(mix, x + (y - x) * z)
BN_EMU_F3(clamp, __builtin_fminf(__builtin_fmaxf(x, y), z))
BN_EMU_F3(fmax3, __builtin_fmaxf(__builtin_fmaxf(x, y), z))
BN_EMU_F3(fmin3, __builtin_fminf(__builtin_fminf(x, y), z))
BN_EMU_F3(smoothstep, (__builtin_fminf(__builtin_fmaxf((z - x) / (y - x), 0.0f), 1.0f)) *
                          (__builtin_fminf(__builtin_fmaxf((z - x) / (y - x), 0.0f), 1.0f)) *
                          (3.0f - 2.0f * __builtin_fminf(__builtin_fmaxf((z - x) / (y - x), 0.0f), 1.0f)))
inline float abs(float x) { return __builtin_fabsf(x); }
inline half abs(half x) { return (half)__builtin_fabsf((float)x); }
inline float max(float x, float y) { return __builtin_fmaxf(x, y); }
inline half max(half x, half y) { return (half)__builtin_fmaxf((float)x, (float)y); }
inline float min(float x, float y) { return __builtin_fminf(x, y); }
inline half min(half x, half y) { return (half)__builtin_fminf((float)x, (float)y); }
inline float max3(float x, float y, float z) { return fmax3(x, y, z); }
inline half max3(half x, half y, half z) { return fmax3(x, y, z); }
inline float min3(float x, float y, float z) { return fmin3(x, y, z); }
inline half min3(half x, half y, half z) { return fmin3(x, y, z); }
inline float median3(float x, float y, float z) { return fmax(fmin(x, y), fmin(fmax(x, y), z)); }
inline half median3(half x, half y, half z) { return (half)median3((float)x, (float)y, (float)z); }
inline float fmedian3(float x, float y, float z) { return median3(x, y, z); }
inline half fmedian3(half x, half y, half z) { return median3(x, y, z); }
inline float frexp(float x, int& e) { return __builtin_frexpf(x, &e); }
inline half frexp(half x, int& e) { return (half)__builtin_frexpf((float)x, &e); }
inline float ldexp(float x, int k) { return __builtin_ldexpf(x, k); }
inline half ldexp(half x, int k) { return (half)__builtin_ldexpf((float)x, k); }
inline float modf(float x, float& i) { return __builtin_modff(x, &i); }
inline int ilogb(float x) { return __builtin_ilogbf(x); }
inline float sincos(float x, float& c) {
  c = __builtin_cosf(x);
  return __builtin_sinf(x);
}
inline bool isnan(float x) { return __builtin_isnan(x); }
inline bool isnan(half x) { return __builtin_isnan((float)x); }
inline bool isinf(float x) { return __builtin_isinf(x); }
inline bool isinf(half x) { return __builtin_isinf((float)x); }
inline bool isfinite(float x) { return __builtin_isfinite(x); }
inline bool isfinite(half x) { return __builtin_isfinite((float)x); }
inline bool isnormal(float x) { return __builtin_isnormal(x); }
inline bool isnormal(half x) { return __builtin_isnormal((float)x); }
inline bool signbit(float x) { return __builtin_signbit(x); }
inline bool signbit(half x) { return __builtin_signbit((float)x); }
inline bool isordered(float x, float y) { return x == x && y == y; }
inline bool isunordered(float x, float y) { return !(x == x && y == y); }
#undef BN_EMU_F1
#undef BN_EMU_F2
#undef BN_EMU_F3

// ---- integer functions ---------------------------------------------------------------------------

#define BN_EMU_INT(T, U, BITS)                                                                      \
  inline T max(T x, T y) { return x > y ? x : y; }                                                  \
  inline T min(T x, T y) { return x < y ? x : y; }                                                  \
  inline T clamp(T x, T lo, T hi) { return min(max(x, lo), hi); }                                   \
  inline T max3(T x, T y, T z) { return max(max(x, y), z); }                                       \
  inline T min3(T x, T y, T z) { return min(min(x, y), z); }                                        \
  inline T median3(T x, T y, T z) { return max(min(x, y), min(max(x, y), z)); }                     \
  inline T popcount(T x) { return (T)__builtin_popcountll((unsigned long long)(U)x); }              \
  inline T clz(T x) { return (U)x == 0 ? (T)BITS : (T)(__builtin_clzll((unsigned long long)(U)x) - (64 - BITS)); } \
  inline T ctz(T x) { return (U)x == 0 ? (T)BITS : (T)__builtin_ctzll((unsigned long long)(U)x); }  \
  inline U absdiff(T x, T y) { return x > y ? (U)((U)x - (U)y) : (U)((U)y - (U)x); }                \
  inline T rotate(T x, T n) {                                                                       \
    const unsigned s = (unsigned)((U)n % BITS);                                                     \
    return s == 0 ? x : (T)((U)((U)x << s) | (U)((U)x >> (BITS - s)));                              \
  }
BN_EMU_INT(signed char, unsigned char, 8)
BN_EMU_INT(unsigned char, unsigned char, 8)
BN_EMU_INT(short, unsigned short, 16)
BN_EMU_INT(unsigned short, unsigned short, 16)
BN_EMU_INT(int, unsigned int, 32)
BN_EMU_INT(unsigned int, unsigned int, 32)
BN_EMU_INT(long, unsigned long, 64)
BN_EMU_INT(unsigned long, unsigned long, 64)
#undef BN_EMU_INT
inline signed char abs(signed char x) { return x < 0 ? (signed char)-x : x; }
inline short abs(short x) { return x < 0 ? (short)-x : x; }
inline int abs(int x) { return x < 0 ? (int)(0u - (unsigned)x) : x; }
inline long abs(long x) { return x < 0 ? (long)(0ul - (unsigned long)x) : x; }
inline uchar abs(uchar x) { return x; }
inline ushort abs(ushort x) { return x; }
inline uint abs(uint x) { return x; }
inline ulong abs(ulong x) { return x; }
inline int mulhi(int x, int y) { return (int)(((long)x * (long)y) >> 32); }
inline uint mulhi(uint x, uint y) { return (uint)(((ulong)x * (ulong)y) >> 32); }
inline long mulhi(long x, long y) { return (long)(((__int128)x * (__int128)y) >> 64); }
inline ulong mulhi(ulong x, ulong y) { return (ulong)(((unsigned __int128)x * (unsigned __int128)y) >> 64); }
inline uint reverse_bits(uint x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
  return __builtin_bswap32(x);
}
inline uint extract_bits(uint x, uint offset, uint bits) {
  return bits == 0 ? 0u : bits >= 32 ? x >> offset : (x >> offset) & ((1u << bits) - 1u);
}
inline int extract_bits(int x, uint offset, uint bits) {
  return bits == 0 ? 0 : (int)((uint)x << (32 - offset - bits)) >> (32 - bits);
}
inline uint insert_bits(uint base, uint insert, uint offset, uint bits) {
  const uint mask = (bits >= 32 ? ~0u : ((1u << bits) - 1u)) << offset;
  return (base & ~mask) | ((insert << offset) & mask);
}

// select(a, b, c): c ? b : a (scalars).
template <class T>
inline T select(T a, T b, bool c) {
  return c ? b : a;
}

// ---- vectors: the functions above component by component ------------------------------------------

#define BN_EMU_V1(name)                           \
  template <class V, BN_EMU_IF_VEC(V)>            \
  inline V name(V x) {                            \
    V r = x;                                      \
    for (int i = 0; i < vec_info<V>::n; i++) r[i] = name(x[i]); \
    return r;                                     \
  }
#define BN_EMU_V2(name)                           \
  template <class V, BN_EMU_IF_VEC(V)>            \
  inline V name(V x, V y) {                       \
    V r = x;                                      \
    for (int i = 0; i < vec_info<V>::n; i++) r[i] = name(x[i], y[i]); \
    return r;                                     \
  }
#define BN_EMU_V3(name)                           \
  template <class V, BN_EMU_IF_VEC(V)>            \
  inline V name(V x, V y, V z) {                  \
    V r = x;                                      \
    for (int i = 0; i < vec_info<V>::n; i++) r[i] = name(x[i], y[i], z[i]); \
    return r;                                     \
  }
BN_EMU_V1(abs) BN_EMU_V1(fabs) BN_EMU_V1(exp) BN_EMU_V1(exp2) BN_EMU_V1(exp10) BN_EMU_V1(log) BN_EMU_V1(log2)
BN_EMU_V1(log10) BN_EMU_V1(sqrt) BN_EMU_V1(rsqrt) BN_EMU_V1(sin) BN_EMU_V1(cos) BN_EMU_V1(tan) BN_EMU_V1(tanh)
BN_EMU_V1(sinh) BN_EMU_V1(cosh) BN_EMU_V1(asin) BN_EMU_V1(acos) BN_EMU_V1(atan) BN_EMU_V1(floor) BN_EMU_V1(ceil)
BN_EMU_V1(rint) BN_EMU_V1(round) BN_EMU_V1(trunc) BN_EMU_V1(fract) BN_EMU_V1(saturate) BN_EMU_V1(sign)
BN_EMU_V1(popcount) BN_EMU_V1(clz) BN_EMU_V1(ctz)
BN_EMU_V2(max) BN_EMU_V2(min) BN_EMU_V2(fmax) BN_EMU_V2(fmin) BN_EMU_V2(fmod) BN_EMU_V2(pow) BN_EMU_V2(powr)
BN_EMU_V2(atan2) BN_EMU_V2(copysign) BN_EMU_V2(step)
BN_EMU_V3(fma) BN_EMU_V3(mix) BN_EMU_V3(clamp)
#undef BN_EMU_V1
#undef BN_EMU_V2
#undef BN_EMU_V3
// dot, length, all/any (of comparison masks: clang's vector comparisons give 0/-1 integer vectors).
template <class V, BN_EMU_IF_VEC(V)>
inline typename vec_info<V>::elem dot(V x, V y) {
  typename vec_info<V>::elem s = 0;
  for (int i = 0; i < vec_info<V>::n; i++) s += x[i] * y[i];
  return s;
}
template <class V, BN_EMU_IF_VEC(V)>
inline typename vec_info<V>::elem length(V x) {
  return sqrt(dot(x, x));
}
template <class V, BN_EMU_IF_VEC(V)>
inline bool all(V x) {
  for (int i = 0; i < vec_info<V>::n; i++)
    if (!x[i]) return false;
  return true;
}
template <class V, BN_EMU_IF_VEC(V)>
inline bool any(V x) {
  for (int i = 0; i < vec_info<V>::n; i++)
    if (x[i]) return true;
  return false;
}
inline bool all(bool x) { return x; }
inline bool any(bool x) { return x; }

// ---- numeric_limits ------------------------------------------------------------------------------

template <class T>
struct numeric_limits;
template <>
struct numeric_limits<float> {
  static constexpr bool is_specialized = true;
  static constexpr float min() { return 0x1p-126f; }
  static constexpr float max() { return 0x1.fffffep+127f; }
  static constexpr float lowest() { return -0x1.fffffep+127f; }
  static constexpr float epsilon() { return 0x1p-23f; }
  static constexpr float infinity() { return __builtin_inff(); }
  static constexpr float quiet_NaN() { return __builtin_nanf(""); }
  static constexpr float denorm_min() { return 0x1p-149f; }
};
template <>
struct numeric_limits<half> {
  static constexpr bool is_specialized = true;
  static constexpr half min() { return (half)0x1p-14f; }
  static constexpr half max() { return (half)65504.0f; }
  static constexpr half lowest() { return (half)-65504.0f; }
  static constexpr half epsilon() { return (half)0x1p-10f; }
  static constexpr half infinity() { return (half)__builtin_inff(); }
  static constexpr half quiet_NaN() { return (half)__builtin_nanf(""); }
  static constexpr half denorm_min() { return (half)0x1p-24f; }
};
#define BN_EMU_ILIM(T, LO, HI)                                \
  template <>                                                 \
  struct numeric_limits<T> {                                  \
    static constexpr bool is_specialized = true;              \
    static constexpr T min() { return LO; }                   \
    static constexpr T max() { return HI; }                   \
    static constexpr T lowest() { return LO; }                \
  };
BN_EMU_ILIM(bool, false, true)
BN_EMU_ILIM(char, -128, 127)
BN_EMU_ILIM(signed char, -128, 127)
BN_EMU_ILIM(unsigned char, 0, 255)
BN_EMU_ILIM(short, -32768, 32767)
BN_EMU_ILIM(unsigned short, 0, 65535)
BN_EMU_ILIM(int, -2147483647 - 1, 2147483647)
BN_EMU_ILIM(unsigned int, 0u, 4294967295u)
BN_EMU_ILIM(long, -9223372036854775807l - 1, 9223372036854775807l)
BN_EMU_ILIM(unsigned long, 0ul, 18446744073709551615ul)
#undef BN_EMU_ILIM

// ---- barriers ------------------------------------------------------------------------------------

enum class mem_flags : unsigned { mem_none = 0, mem_device = 1, mem_threadgroup = 2, mem_texture = 4, mem_threadgroup_imageblock = 8 };
constexpr mem_flags operator|(mem_flags a, mem_flags b) { return (mem_flags)((unsigned)a | (unsigned)b); }
constexpr mem_flags operator&(mem_flags a, mem_flags b) { return (mem_flags)((unsigned)a & (unsigned)b); }
// Every thread of the group must reach it (one that returned first is an error, as is a lane of a
// simdgroup that waits in a simdgroup function meanwhile).
inline void threadgroup_barrier(mem_flags) { bn_emu::group_barrier(); }
// Every lane of the simdgroup must reach it (a collective of its own).
inline void simdgroup_barrier(mem_flags) {
  unsigned char none = 0;
  bn_emu::simd_exchange(bn_emu::OP_BARRIER, &none, 1);
}

// ---- simdgroup functions (32 lanes; called by every lane of the simdgroup together) ---------------

namespace simd_detail {
template <class T>
inline T lane_value(const bn_emu::Simd& s, unsigned l) {
  T v;
  __builtin_memcpy(&v, s.data + l * bn_emu::SLOT, sizeof(T));
  return v;
}
// What a lane reads from a lane that does not exist (beyond a partial simdgroup, or lane ≥ 32):
// undefined on the GPU; NaN or 0xdeadbeef.. here, so that a kernel that uses it shows it.
template <class T>
inline T poison() {
  if constexpr (vec_info<T>::is) {
    return T(poison<typename vec_info<T>::elem>());
  } else if constexpr (is_floating_point<T>::value) {
    return (T)__builtin_nanf("0x7ead");
  } else if constexpr (is_same<T, bool>::value) {
    return true;
  } else {
    return (T)0xdeadbeefdeadbeefull;
  }
}
template <class T>
inline bn_emu::Simd exchange(unsigned op, const T& x) {
  static_assert(sizeof(T) <= bn_emu::SLOT, "simdgroup function: the value is larger than 32 bytes");
  return bn_emu::simd_exchange(op, &x, sizeof(T));
}
template <class T>
inline T read(const bn_emu::Simd& s, unsigned src, T own) {
  (void)own;
  return src < s.width ? lane_value<T>(s, src) : poison<T>();
}
}  // namespace simd_detail

// The reductions: every lane's value combined from lane 0 up (the same order in every lane).
namespace simd_detail {
template <class T, class F>
inline T fold(unsigned op, T x, F f) {
  const bn_emu::Simd s = exchange(op, x);
  T r = lane_value<T>(s, 0);
  for (unsigned l = 1; l < s.width; l++) r = f(r, lane_value<T>(s, l));
  return r;
}
}  // namespace simd_detail
template <class T>
inline T simd_sum(T x) {
  return simd_detail::fold(bn_emu::OP_SUM, x, [](T r, T v) { return T(r + v); });
}
template <class T>
inline T simd_product(T x) {
  return simd_detail::fold(bn_emu::OP_PRODUCT, x, [](T r, T v) { return T(r * v); });
}
template <class T>
inline T simd_max(T x) {
  return simd_detail::fold(bn_emu::OP_MAX, x, [](T r, T v) { return T(max(r, v)); });
}
template <class T>
inline T simd_min(T x) {
  return simd_detail::fold(bn_emu::OP_MIN, x, [](T r, T v) { return T(min(r, v)); });
}
template <class T>
inline T simd_and(T x) {
  return simd_detail::fold(bn_emu::OP_AND, x, [](T r, T v) { return T(r & v); });
}
template <class T>
inline T simd_or(T x) {
  return simd_detail::fold(bn_emu::OP_OR, x, [](T r, T v) { return T(r | v); });
}
template <class T>
inline T simd_xor(T x) {
  return simd_detail::fold(bn_emu::OP_XOR, x, [](T r, T v) { return T(r ^ v); });
}
template <class T>
inline T simd_prefix_exclusive_sum(T x) {
  const bn_emu::Simd s = simd_detail::exchange(bn_emu::OP_PREFIX_EXCL, x);
  T r = T(0);
  for (unsigned l = 0; l < s.lane; l++) r += simd_detail::lane_value<T>(s, l);
  return r;
}
template <class T>
inline T simd_prefix_inclusive_sum(T x) {
  const bn_emu::Simd s = simd_detail::exchange(bn_emu::OP_PREFIX_INCL, x);
  T r = simd_detail::lane_value<T>(s, 0);
  for (unsigned l = 1; l <= s.lane; l++) r += simd_detail::lane_value<T>(s, l);
  return r;
}
template <class T>
inline T simd_prefix_exclusive_product(T x) {
  const bn_emu::Simd s = simd_detail::exchange(bn_emu::OP_PREFIX_EXCL, x);
  T r = T(1);
  for (unsigned l = 0; l < s.lane; l++) r *= simd_detail::lane_value<T>(s, l);
  return r;
}
// The value of lane `l` (a lane beyond the simdgroup: poison).
template <class T>
inline T simd_shuffle(T x, ushort l) {
  const bn_emu::Simd s = simd_detail::exchange(bn_emu::OP_SHUFFLE, x);
  return simd_detail::read<T>(s, l, x);
}
template <class T>
inline T simd_broadcast(T x, ushort l) {
  const bn_emu::Simd s = simd_detail::exchange(bn_emu::OP_BROADCAST, x);
  return simd_detail::read<T>(s, l, x);
}
template <class T>
inline T simd_shuffle_xor(T x, ushort mask) {
  const bn_emu::Simd s = simd_detail::exchange(bn_emu::OP_SHUFFLE_XOR, x);
  return simd_detail::read<T>(s, s.lane ^ mask, x);
}
// lane + d ≥ 32: the lane's own value (as on the GPU); a lane beyond a partial simdgroup: poison.
template <class T>
inline T simd_shuffle_down(T x, ushort d) {
  const bn_emu::Simd s = simd_detail::exchange(bn_emu::OP_SHUFFLE_DOWN, x);
  return s.lane + d >= 32 ? x : simd_detail::read<T>(s, s.lane + d, x);
}
template <class T>
inline T simd_shuffle_up(T x, ushort d) {
  const bn_emu::Simd s = simd_detail::exchange(bn_emu::OP_SHUFFLE_UP, x);
  return s.lane < d ? x : simd_detail::lane_value<T>(s, s.lane - d);
}
template <class T>
inline T simd_broadcast_first(T x) {
  const bn_emu::Simd s = simd_detail::exchange(bn_emu::OP_BROADCAST_FIRST, x);
  return simd_detail::lane_value<T>(s, 0);
}
inline bool simd_all(bool x) {
  const bn_emu::Simd s = simd_detail::exchange(bn_emu::OP_ALL, x);
  for (unsigned l = 0; l < s.width; l++)
    if (!simd_detail::lane_value<bool>(s, l)) return false;
  return true;
}
inline bool simd_any(bool x) {
  const bn_emu::Simd s = simd_detail::exchange(bn_emu::OP_ANY, x);
  for (unsigned l = 0; l < s.width; l++)
    if (simd_detail::lane_value<bool>(s, l)) return true;
  return false;
}
// simd_ballot as a 64-bit mask (MSL's simd_vote converts to simd_vote::vote_t, a ulong).
inline ulong simd_ballot(bool x) {
  const bn_emu::Simd s = simd_detail::exchange(bn_emu::OP_BALLOT, x);
  ulong m = 0;
  for (unsigned l = 0; l < s.width; l++)
    if (simd_detail::lane_value<bool>(s, l)) m |= 1ul << l;
  return m;
}
// Whether the caller is the first active lane: a collective here (every lane of the simdgroup calls
// it together, so lane 0), since the lanes run one after another and "active" has no meaning.
inline bool simd_is_first() {
  const bool none = false;
  return simd_detail::exchange(bn_emu::OP_IS_FIRST, none).lane == 0;
}

// ---- simdgroup matrices (8 × 8): every lane holds the whole matrix and does the whole product ----
// (the same results in all lanes; MSL's distribution of elements over lanes, thread_elements(), is
// not emulated). Products accumulate in float, rows by columns in increasing k.

template <class T, int R, int C>
struct simdgroup_matrix {
  T e[R][C];
  simdgroup_matrix() = default;
  // A diagonal matrix of d (as MSL's constructor from a scalar).
  explicit simdgroup_matrix(T d) {
    for (int i = 0; i < R; i++)
      for (int j = 0; j < C; j++) e[i][j] = i == j ? d : T(0);
  }
};
typedef simdgroup_matrix<float, 8, 8> simdgroup_float8x8;
typedef simdgroup_matrix<half, 8, 8> simdgroup_half8x8;
template <class T, int R, int C>
inline simdgroup_matrix<T, R, C> make_filled_simdgroup_matrix(T v) {
  simdgroup_matrix<T, R, C> m;
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++) m.e[i][j] = v;
  return m;
}
// Element (i, j) of d from src[(origin.y + i) · elements_per_row + origin.x + j] (transpose: from
// the element (j, i) of the block at origin).
template <class T, int R, int C, class U>
inline void simdgroup_load(thread simdgroup_matrix<T, R, C>& d, const U* src, ulong elements_per_row = C, ulong2 origin = ulong2(0),
                           bool transpose = false) {
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++) {
      const ulong r = transpose ? (ulong)j : (ulong)i, c = transpose ? (ulong)i : (ulong)j;
      d.e[i][j] = (T)src[(origin.y + r) * elements_per_row + origin.x + c];
    }
}
template <class T, int R, int C, class U>
inline void simdgroup_store(const thread simdgroup_matrix<T, R, C>& a, U* dst, ulong elements_per_row = C, ulong2 origin = ulong2(0),
                            bool transpose = false) {
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++) {
      const ulong r = transpose ? (ulong)j : (ulong)i, c = transpose ? (ulong)i : (ulong)j;
      dst[(origin.y + r) * elements_per_row + origin.x + c] = (U)a.e[i][j];
    }
}
template <class T, class TA, class TB, class TC, int M, int N, int K>
inline void simdgroup_multiply_accumulate(thread simdgroup_matrix<T, M, N>& d, const thread simdgroup_matrix<TA, M, K>& a,
                                          const thread simdgroup_matrix<TB, K, N>& b, const thread simdgroup_matrix<TC, M, N>& c) {
  simdgroup_matrix<T, M, N> r;
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      float s = (float)c.e[i][j];
      for (int k = 0; k < K; k++) s += (float)a.e[i][k] * (float)b.e[k][j];
      r.e[i][j] = (T)s;
    }
  d = r;
}
template <class T, class TA, class TB, int M, int N, int K>
inline void simdgroup_multiply(thread simdgroup_matrix<T, M, N>& d, const thread simdgroup_matrix<TA, M, K>& a,
                               const thread simdgroup_matrix<TB, K, N>& b) {
  simdgroup_multiply_accumulate(d, a, b, simdgroup_matrix<T, M, N>(T(0)));
}

// ---- atomics (memory_order_relaxed; fibers run one at a time, so plain reads and writes) ----------

enum memory_order { memory_order_relaxed = 0 };
template <class T>
struct atomic {
  T v;
};
typedef atomic<int> atomic_int;
typedef atomic<uint> atomic_uint;
typedef atomic<bool> atomic_bool;
typedef atomic<float> atomic_float;
typedef atomic<ulong> atomic_ulong;
// atomic_fetch_<name>_explicit: the old value, the new one `expr` of it (o) and v.
#define BN_EMU_FETCH(Q, name, expr)                                                                           \
  template <class T>                                                                                          \
  inline T atomic_fetch_##name##_explicit(Q atomic<T>* a, typename type_identity<T>::type v, memory_order) { \
    const T o = a->v;                                                                                         \
    a->v = expr;                                                                                              \
    return o;                                                                                                 \
  }
#define BN_EMU_ATOMIC(Q)                                                                                           \
  template <class T>                                                                                               \
  inline void atomic_store_explicit(Q atomic<T>* a, typename type_identity<T>::type v, memory_order) { a->v = v; } \
  template <class T>                                                                                               \
  inline T atomic_load_explicit(Q atomic<T>* a, memory_order) { return a->v; }                                     \
  template <class T>                                                                                               \
  inline T atomic_exchange_explicit(Q atomic<T>* a, typename type_identity<T>::type v, memory_order) {             \
    T o = a->v;                                                                                                    \
    a->v = v;                                                                                                      \
    return o;                                                                                                      \
  }                                                                                                                \
  template <class T>                                                                                               \
  inline bool atomic_compare_exchange_weak_explicit(Q atomic<T>* a, T* expected, typename type_identity<T>::type v, \
                                                    memory_order, memory_order) {                                  \
    if (a->v == *expected) {                                                                                       \
      a->v = v;                                                                                                    \
      return true;                                                                                                 \
    }                                                                                                              \
    *expected = a->v;                                                                                              \
    return false;                                                                                                  \
  }                                                                                                                \
  BN_EMU_FETCH(Q, add, o + v)                                                                                      \
  BN_EMU_FETCH(Q, sub, o - v)                                                                                      \
  BN_EMU_FETCH(Q, max, max(o, v))                                                                                  \
  BN_EMU_FETCH(Q, min, min(o, v))                                                                                  \
  BN_EMU_FETCH(Q, and, o & v)                                                                                      \
  BN_EMU_FETCH(Q, or, o | v)                                                                                       \
  BN_EMU_FETCH(Q, xor, o ^ v)
BN_EMU_ATOMIC()
BN_EMU_ATOMIC(volatile)
#undef BN_EMU_ATOMIC
#undef BN_EMU_FETCH

// metal::precise:: and metal::fast:: name the same functions (the emulator computes in IEEE float).
namespace precise {
using namespace ::metal;
}
namespace fast {
using namespace ::metal;
}

}  // namespace metal

using namespace metal;

#undef BN_EMU_IF_VEC

#endif
