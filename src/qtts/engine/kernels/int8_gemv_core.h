// qtts's weight-only int8 matrix products for a few rows of activations, one variant per ISA.
//
// y[m, n] = wscale[n] * xscale[m] * sum_k w[n, k] * q[m, k], with w int8 (symmetric,
// per output channel) and q the activation row quantized to 16 bits (per row, symmetric:
// relative error 1.5e-5, finer than the bf16 activations of torch's int8 kernel).  Every
// variant computes the same exact integer sum, so all ISAs give bit-identical results:
//   - AVX-512 VNNI: q = 256 * hi + lo split into two bytes (hi offset to u8), two vpdpbusd
//     per 64 weights, the offset removed with the weight row sums;
//   - AVX2: weights widened to int16, vpmaddwd with q (16 products per instruction);
//   - aarch64 with the dot-product extension: q = 256 * hi + (lo' + 128) with both bytes
//     signed, two sdot per 16 weights, the offset removed with the row sums.
// int32 accumulators are flushed to int64 every kFlushK inputs, so any K is exact.
// Pure C++ (no torch): the torch binding is binding.cpp; tests/kernels/check_kernel.cpp
// checks each variant against a scalar reference (aarch64 under qemu-user).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
#define QTTS_VARIANT_AVX512VNNI 1
#include <immintrin.h>
#if defined(__AMX_TILE__) && defined(__AMX_INT8__) && defined(__AMX_BF16__)
#define QTTS_AMX 1  // its 2+-row path uses AMX tiles (int8_amx.h); the decoder's convolutions too (conv_amx.h)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#elif defined(__AVX2__)
#define QTTS_VARIANT_AVX2 1
#include <immintrin.h>
#elif defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD)
#define QTTS_VARIANT_NEON_DOT 1
#include <arm_neon.h>
#else
#error "qtts int8 kernel: compile with -mavx512vnni, -mavx2 or -march=armv8.2-a+dotprod"
#endif

namespace qtts {

constexpr int64_t kKMultiple = 64;     // K must be a multiple of this
constexpr int64_t kFlushK = 4096;      // inputs per int32 accumulation (|sum| < 2^31 proven below)
constexpr int32_t kQMax = 32767;
constexpr int64_t kRowBlock = 8;  // output rows per block of the packed layout (and per task)
// The weights are packed so that a block of 8 output rows is one sequential stream: for each
// step of kPackWidth inputs, the 8 rows' kPackWidth bytes follow each other.  One stream per
// block, instead of 8 short ones, keeps the hardware prefetchers ahead (measured on AVX2:
// see engine/kernels/__init__.py).  N is padded to a multiple of 8.
#if defined(QTTS_VARIANT_AVX512VNNI)
constexpr int64_t kPackWidth = 64;
#else
constexpr int64_t kPackWidth = 16;
#endif
// Largest |partial sum| per int32 lane before a flush, per variant:
//   VNNI hi: 4 products/lane/instr * 255 * 127 * (4096 / 64 instrs)  = 8.3e6
//   AVX2:    2 products/lane/instr * 32767 * 127 * (4096 / 16 instrs) = 2.13e9 < 2^31 - 1
//   NEON:    4 products/lane/instr * 128 * 127 * (4096 / 16 instrs)   = 1.7e7
//   AMX:     64 products/element/tile product * 255 * 127 * (4096 / 64) = 1.3e8 (int8_amx.h)

namespace detail {
inline bool amx_permitted();
}

inline const char* variant_name() {
#if QTTS_VARIANT_AVX512VNNI
  return detail::amx_permitted() ? "avx512vnni-amx" : "avx512vnni";
#elif QTTS_VARIANT_AVX2
  return "avx2";
#else
  return "neon-dotprod";
#endif
}

// Quantize one row to int16; returns false (and leaves q undefined) when the row holds NaN
// or Inf, whose products the caller then sets to NaN, as a float product would propagate.
// The largest magnitude is found on the bits: for |x| they order as the floats do, NaN and Inf
// above every finite value; an integer maximum vectorizes (a float one with NaN rules did not:
// a 4-cycle chain per element, 9% of an 8-row 1024x3072 product on the Xeon).
inline bool quantize_row(const float* x, int64_t k, int16_t* q, float* scale) {
  uint32_t largest_bits = 0;
  for (int64_t i = 0; i < k; ++i) {
    uint32_t bits;
    std::memcpy(&bits, x + i, 4);
    bits &= 0x7fffffffu;
    largest_bits = bits > largest_bits ? bits : largest_bits;
  }
  if (largest_bits > 0x7f7fffffu) return false;  // NaN or Inf
  float largest;
  std::memcpy(&largest, &largest_bits, 4);
  const float s = largest > 0.f ? largest / static_cast<float>(kQMax) : 1.f;
  const float inv = 1.f / s;
  *scale = s;
  for (int64_t i = 0; i < k; ++i) {
    float v = std::nearbyint(x[i] * inv);
    v = v > kQMax ? kQMax : (v < -kQMax ? -kQMax : v);
    q[i] = static_cast<int16_t>(v);
  }
  return true;
}

inline int64_t packed_size(int64_t n, int64_t k) { return (n + kRowBlock - 1) / kRowBlock * kRowBlock * k; }

// Row-major (n, k) weights to the packed layout (padding rows are zero).
inline void pack_weights(const int8_t* w, int64_t n, int64_t k, int8_t* out) {
  std::memset(out, 0, static_cast<size_t>(packed_size(n, k)));
  for (int64_t row = 0; row < n; ++row)
    for (int64_t i = 0; i < k; i += kPackWidth)
      std::memcpy(out + ((row / kRowBlock) * (k / kPackWidth) + i / kPackWidth) * (kRowBlock * kPackWidth) +
                      (row % kRowBlock) * kPackWidth,
                  w + row * k + i, kPackWidth);
}

// Byte planes some variants multiply instead of q (filled once per call by prepare_rows).
struct Planes {
  uint8_t* hi = nullptr;     // rows * k
  uint8_t* lo = nullptr;     // rows * k
  uint8_t* tiles = nullptr;  // tiles_size(rows, k) bytes: the planes as AMX tiles, or null
};

inline bool needs_planes() {
#if QTTS_VARIANT_AVX2
  return false;
#else
  return true;
#endif
}

namespace detail {
inline int64_t amx_tiles_size(int64_t rows, int64_t k);
inline void amx_fill_tiles(const uint8_t* hi, const uint8_t* lo, int64_t rows, int64_t k, uint8_t* tiles);
}  // namespace detail

// Bytes of Planes::tiles for these rows: 0 where the rows go through the vector loops.
inline int64_t tiles_size(int64_t rows, int64_t k) { return detail::amx_tiles_size(rows, k); }

inline void prepare_rows(const int16_t* q, int64_t rows, int64_t k, Planes planes) {
  if (!needs_planes()) return;
  for (int64_t i = 0; i < rows * k; ++i) {
    const int32_t v = q[i];
    const int32_t h = v >> 8;            // floor(v / 256), in [-128, 127]
    const int32_t l = v - h * 256;       // in [0, 255]
#if QTTS_VARIANT_AVX512VNNI
    planes.hi[i] = static_cast<uint8_t>(h + 128);  // u8 operand of vpdpbusd
    planes.lo[i] = static_cast<uint8_t>(l);
#else
    planes.hi[i] = static_cast<uint8_t>(static_cast<int8_t>(h));        // s8 for sdot
    planes.lo[i] = static_cast<uint8_t>(static_cast<int8_t>(l - 128));  // s8 for sdot
#endif
  }
  if (planes.tiles != nullptr) detail::amx_fill_tiles(planes.hi, planes.lo, rows, k, planes.tiles);
}

struct Problem {
  const int8_t* w;          // packed (see kPackWidth): (ceil(n / 8), k / kPackWidth, 8, kPackWidth)
  const int32_t* row_sums;  // (n,) sum of each weight row (VNNI, NEON)
  const float* wscale;      // (n,)
  const int16_t* q;         // (rows, k)
  Planes planes;            // (rows, k) each, when needs_planes()
  const float* xscale;      // (rows,)
  const uint8_t* finite;    // (rows,) 0 = the row had NaN/Inf
  int64_t rows, k, n;
  float* out;               // (rows, n)
  // Weights read once per step and not again soon: prefetched with the non-temporal hint
  // (AVX2 only), so that they do not evict weights that can stay in the last-level cache
  // between steps (the code predictor's first layer, read 15 times per frame).  Measured on
  // the 2-core EPYC (L3 32 MB), 6 interleaved runs: talker 107 -> 92 ms, code predictor
  // 123 -> 111 ms per frame, with the predictor's first layer (15.7 MB) read normally.
  bool stream = false;
};

namespace detail {

// Address of weight (row n, input i), i a multiple of kPackWidth.
inline const int8_t* weight_at(const Problem& p, int64_t n, int64_t i) {
  return p.w + ((n / kRowBlock) * (p.k / kPackWidth) + i / kPackWidth) * (kRowBlock * kPackWidth) +
         (n % kRowBlock) * kPackWidth;
}

inline void store(const Problem& p, int64_t m, int64_t n, int64_t dot) {
  p.out[m * p.n + n] = p.finite[m]
      ? static_cast<float>(static_cast<double>(dot) * p.xscale[m] * p.wscale[n])
      : std::numeric_limits<float>::quiet_NaN();
}

#if QTTS_VARIANT_AVX2
inline int64_t hsum_epi32(__m256i v) {
  const __m256i wide = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)),
                                        _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1)));
  alignas(32) int64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), wide);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

// R output rows x MB activation rows; the weight block (R * k bytes) stays in L1 while
// the activation rows pass, so the weights are read from memory once per call.  The R rows
// lie in one packed block of 8: their bytes for each step of 16 inputs are at a running
// pointer, 128 bytes further each step (no address arithmetic in the inner loop).
template <int R, int MB>
inline void block(const Problem& p, int64_t n0, int64_t m0) {
  int64_t dot[MB][R] = {};
  const int16_t* xrow[MB];
  for (int mb = 0; mb < MB; ++mb) xrow[mb] = p.q + (m0 + mb) * p.k;
  for (int64_t k0 = 0; k0 < p.k; k0 += kFlushK) {
    const int64_t k1 = k0 + kFlushK < p.k ? k0 + kFlushK : p.k;
    __m256i acc[MB][R];
    for (int mb = 0; mb < MB; ++mb)
      for (int r = 0; r < R; ++r) acc[mb][r] = _mm256_setzero_si256();
    const int8_t* wp = weight_at(p, n0, k0);
    for (int64_t i = k0; i < k1; i += 16, wp += kRowBlock * kPackWidth) {
      if (R == kRowBlock && p.stream) {  // this block's bytes 1 KB ahead, non-temporally (see Problem::stream)
        __builtin_prefetch(wp + 1024, 0, 0);
        __builtin_prefetch(wp + 1024 + 64, 0, 0);
      }
      __m256i xv[MB];
      for (int mb = 0; mb < MB; ++mb) xv[mb] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xrow[mb] + i));
      for (int r = 0; r < R; ++r) {
        const __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wp + r * kPackWidth)));
        for (int mb = 0; mb < MB; ++mb) acc[mb][r] = _mm256_add_epi32(acc[mb][r], _mm256_madd_epi16(wv, xv[mb]));
      }
    }
    for (int mb = 0; mb < MB; ++mb)
      for (int r = 0; r < R; ++r) dot[mb][r] += hsum_epi32(acc[mb][r]);
  }
  for (int mb = 0; mb < MB; ++mb)
    for (int r = 0; r < R; ++r) store(p, m0 + mb, n0 + r, dot[mb][r]);
}
#endif

#if QTTS_VARIANT_AVX512VNNI
template <int R, int MB>
inline void block(const Problem& p, int64_t n0, int64_t m0) {
  int64_t dot[MB][R] = {};
  for (int64_t k0 = 0; k0 < p.k; k0 += kFlushK) {
    const int64_t k1 = k0 + kFlushK < p.k ? k0 + kFlushK : p.k;
    __m512i acc_hi[MB][R], acc_lo[MB][R];
    for (int mb = 0; mb < MB; ++mb)
      for (int r = 0; r < R; ++r) acc_hi[mb][r] = acc_lo[mb][r] = _mm512_setzero_si512();
    // the R rows lie in one packed block: their bytes for each step at a running pointer
    // (clang does not hoist weight_at's arithmetic out of this loop; g++ does)
    const int8_t* wp = weight_at(p, n0, k0);
    for (int64_t i = k0; i < k1; i += 64, wp += kRowBlock * kPackWidth) {
      __m512i vh[MB], vl[MB];
      for (int mb = 0; mb < MB; ++mb) {
        vh[mb] = _mm512_loadu_si512(p.planes.hi + (m0 + mb) * p.k + i);
        vl[mb] = _mm512_loadu_si512(p.planes.lo + (m0 + mb) * p.k + i);
      }
      for (int r = 0; r < R; ++r) {
        const __m512i vw = _mm512_loadu_si512(wp + r * kPackWidth);
        for (int mb = 0; mb < MB; ++mb) {
          acc_hi[mb][r] = _mm512_dpbusd_epi32(acc_hi[mb][r], vh[mb], vw);
          acc_lo[mb][r] = _mm512_dpbusd_epi32(acc_lo[mb][r], vl[mb], vw);
        }
      }
    }
    for (int mb = 0; mb < MB; ++mb)
      for (int r = 0; r < R; ++r)
        dot[mb][r] += 256LL * _mm512_reduce_add_epi32(acc_hi[mb][r]) + _mm512_reduce_add_epi32(acc_lo[mb][r]);
  }
  for (int mb = 0; mb < MB; ++mb)
    for (int r = 0; r < R; ++r)  // sum w * (hi + 128) * 256 overcounts 128 * 256 * sum w
      store(p, m0 + mb, n0 + r, dot[mb][r] - 32768LL * p.row_sums[n0 + r]);
}
#endif

#if QTTS_VARIANT_NEON_DOT
template <int R, int MB>
inline void block(const Problem& p, int64_t n0, int64_t m0) {
  int64_t dot[MB][R] = {};
  for (int64_t k0 = 0; k0 < p.k; k0 += kFlushK) {
    const int64_t k1 = k0 + kFlushK < p.k ? k0 + kFlushK : p.k;
    int32x4_t acc_hi[MB][R], acc_lo[MB][R];
    for (int mb = 0; mb < MB; ++mb)
      for (int r = 0; r < R; ++r) acc_hi[mb][r] = acc_lo[mb][r] = vdupq_n_s32(0);
    const int8_t* wp = weight_at(p, n0, k0);  // a running pointer, as above
    for (int64_t i = k0; i < k1; i += 16, wp += kRowBlock * kPackWidth) {
      int8x16_t vh[MB], vl[MB];
      for (int mb = 0; mb < MB; ++mb) {
        vh[mb] = vld1q_s8(reinterpret_cast<const int8_t*>(p.planes.hi + (m0 + mb) * p.k + i));
        vl[mb] = vld1q_s8(reinterpret_cast<const int8_t*>(p.planes.lo + (m0 + mb) * p.k + i));
      }
      for (int r = 0; r < R; ++r) {
        const int8x16_t vw = vld1q_s8(wp + r * kPackWidth);
        for (int mb = 0; mb < MB; ++mb) {
          acc_hi[mb][r] = vdotq_s32(acc_hi[mb][r], vh[mb], vw);
          acc_lo[mb][r] = vdotq_s32(acc_lo[mb][r], vl[mb], vw);
        }
      }
    }
    for (int mb = 0; mb < MB; ++mb)
      for (int r = 0; r < R; ++r)
        dot[mb][r] += 256LL * vaddlvq_s32(acc_hi[mb][r]) + vaddlvq_s32(acc_lo[mb][r]);
  }
  for (int mb = 0; mb < MB; ++mb)
    for (int r = 0; r < R; ++r)  // lo' = lo - 128 undercounts 128 * sum w
      store(p, m0 + mb, n0 + r, dot[mb][r] + 128LL * p.row_sums[n0 + r]);
}
#endif

#if QTTS_AMX
#include "int8_amx.h"
inline bool amx_permitted() { return amx::permitted(); }
inline int64_t amx_tiles_size(int64_t rows, int64_t k) { return amx::tiles_size(rows, k); }
inline void amx_fill_tiles(const uint8_t* hi, const uint8_t* lo, int64_t rows, int64_t k, uint8_t* tiles) {
  amx::fill_tiles(hi, lo, rows, k, tiles);
}
#else
inline bool amx_permitted() { return false; }
inline int64_t amx_tiles_size(int64_t, int64_t) { return 0; }
inline void amx_fill_tiles(const uint8_t*, const uint8_t*, int64_t, int64_t, uint8_t*) {}
#endif

// Output rows [n0, n0 + R) for all activation rows, in groups of 4, 2 and 1 rows; each
// group keeps MB * R = 8 accumulator sets in registers.  AVX2 has 16 ymm registers: groups of
// 4 rows spill there, and pairs measured 20% faster for 4 and 70 rows (C++ harness, EPYC).
#if QTTS_VARIANT_AVX2
constexpr bool kGroupsOf4 = false;
#else
constexpr bool kGroupsOf4 = true;  // 32 vector registers (AVX-512, NEON)
#endif

template <int R>
inline void rows_block(const Problem& p, int64_t n0) {
  constexpr int R4 = R < 2 ? R : 2, R2 = R < 4 ? R : 4;
  int64_t m = 0;
  for (; kGroupsOf4 && m + 4 <= p.rows; m += 4)
    for (int r = 0; r < R; r += R4) block<R4, 4>(p, n0 + r, m);
  for (; m + 2 <= p.rows; m += 2)
    for (int r = 0; r < R; r += R2) block<R2, 2>(p, n0 + r, m);
  for (; m < p.rows; ++m) block<R, 1>(p, n0, m);
}

}  // namespace detail

// Output rows [n0, n1) of every activation row; callers split n over threads.  Groups of
// rows never straddle two packed blocks of 8 (rows before the first block start go singly).
inline void compute(const Problem& p, int64_t n0, int64_t n1) {
#if QTTS_AMX
  if (p.planes.tiles != nullptr && n0 % kRowBlock == 0) return detail::amx::compute(p, n0, n1);
#endif
  int64_t n = n0;
  for (; n < n1 && n % kRowBlock != 0; ++n) detail::rows_block<1>(p, n);
  for (; n + kRowBlock <= n1; n += kRowBlock) detail::rows_block<kRowBlock>(p, n);
  for (; n < n1; ++n) detail::rows_block<1>(p, n);
}

}  // namespace qtts
