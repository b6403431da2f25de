// The decoder's convolutions on AMX bf16 tiles at near-fp32 accuracy ("bf16x3").
//
// A float x is split into hi = bf16(x) and lo = bf16(x - hi) (16 significant bits between
// them); a product x * w is hi_x * hi_w + hi_x * lo_w + lo_x * hi_w (the dropped lo_x * lo_w
// is ~2^-16 of it), each term multiplied by a tdpbf16ps and summed in fp32 in the tile.
// Measured on the 2-core Xeon: a 192-channel, 7-tap convolution over 10,246 samples takes
// 23 ms in fp32 (oneDNN, 228 GFLOP/s); see engine/codec/decoder.py for this one.
//
// Layout: time-major (time, channels), as the decoder's time-major forwards hold it.  Output
// row t is  bias + sum over taps k and input channels c of w[o, c, k] * x[t + k * dilation, c]
// (the caller puts the causal left context in front of x).  Each output row is computed from
// its own inputs in a fixed order, whatever the length: a sequence decoded group by group
// gives the bits of one decode of it all.
//
// Only compiled into the avx512vnni-amx variant (QTTS_AMX); elsewhere the decoder keeps
// oneDNN's fp32 convolutions.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

#include "int8_gemv_core.h"
#include "thread_pool.h"

namespace qtts {
namespace conv_amx {

constexpr int64_t kTime = 16;      // output rows per tile
constexpr int64_t kChannels = 32;  // input channels per tile step (16 bf16 pairs)
constexpr int64_t kOut = 16;       // output channels per C tile
constexpr int64_t kGroupOut = 64;  // the packed weights pad output channels to a multiple of this
constexpr int64_t kTileHalves = 16 * 32;  // bf16 values in one B tile
// A task is one group of 64 output channels over this many blocks of 16 rows, its weights one
// contiguous run (taps x in x 64 x 4 bytes: 1.4 MB for 768 -> 768, kernel 7) read in order.
// Blocks taken in time order instead, each over all groups with the weights laid out tap by
// tap, read every weight of a large convolution for each 16 rows: 768 -> 768, kernel 7, 538
// rows 10.5 ms against 5.2-5.4 here (the 2-core Xeon; spans of 1 to 8 blocks within noise).
constexpr int64_t kSpanBlocks = 8;

inline uint16_t to_bf16(float f) {  // round to nearest even; NaN stays NaN
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

inline float from_bf16(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// to_bf16 of 16 floats at once (the same bits).
inline __m256i to_bf16(__m512 f) {
  const __m512i u = _mm512_castps_si512(f);
  const __m512i one = _mm512_set1_epi32(1);
  __m512i rounded = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff),
                                                         _mm512_and_si512(_mm512_srli_epi32(u, 16), one)));
  const __mmask16 nan = _mm512_cmp_ps_mask(f, f, _CMP_UNORD_Q);
  rounded = _mm512_mask_mov_epi32(rounded, nan, _mm512_or_si512(u, _mm512_set1_epi32(0x400000)));
  return _mm512_cvtepi32_epi16(_mm512_srli_epi32(rounded, 16));
}

inline __m512 from_bf16(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }

inline int64_t padded_out(int64_t out) { return (out + kGroupOut - 1) / kGroupOut * kGroupOut; }

// Values of the packed weights: [padded out / 64][tap][in / 32][hi, lo][4 blocks of 16 outputs]
// tiles of 16 rows (input channel pairs) x 32 (16 output channels x the pair), as tdpbf16ps
// reads B: one group's products read its weights in the order they lie.
inline int64_t packed_size(int64_t out, int64_t in, int64_t taps) {
  return 2 * taps * (in / kChannels) * (padded_out(out) / kOut) * kTileHalves;
}

// w: (out, in, taps) fp32 row-major.
inline void pack(const float* w, int64_t out, int64_t in, int64_t taps, uint16_t* packed) {
  const int64_t blocks_in = in / kChannels;
  std::memset(packed, 0, static_cast<size_t>(packed_size(out, in, taps)) * sizeof(uint16_t));
  for (int64_t o = 0; o < out; ++o)
    for (int64_t c = 0; c < in; ++c)
      for (int64_t k = 0; k < taps; ++k) {
        const float v = w[(o * in + c) * taps + k];
        const uint16_t hi = to_bf16(v), lo = to_bf16(v - from_bf16(hi));
        const int64_t step = ((o / kGroupOut) * taps + k) * blocks_in + c / kChannels;
        const int64_t at = (step * 8 + (o % kGroupOut) / kOut) * kTileHalves + ((c % kChannels) / 2) * 32 +
                           (o % kOut) * 2 + (c % 2);
        packed[at] = hi;
        packed[at + 4 * kTileHalves] = lo;
      }
}

// Tiles 0-3: C (16 rows x 16 fp32) of four blocks of 16 output channels; 4, 5: A (16 rows x
// 32 bf16), the input's hi and lo; 6: B.  On the 2-core Xeon a 1 KB tile load takes ~17 ns
// (from L1 or L2 alike) and a product ~5.4 ns, so the loads (10 per 12 products) bound the
// loop.  (Two blocks of 16 rows per B tile instead, 4 A loads per 6 products, measured slower:
// 192 -> 192 channels, kernel 7, 2 x 10,246 samples 16.3 -> 25.2 ms; two B tiles taking turns
// so that no two products in a row add into one C tile: within noise.)
inline void configure() {
  detail::amx::TileConfig config;  // the int8 kernel's (int8_amx.h)
  for (int t = 0; t < 7; ++t) config.rows[t] = 16, config.colsb[t] = 64;
  _tile_loadconfig(&config);
}

// g++'s tile intrinsics are macros that paste the tile number: it must be a literal.
#define QTTS_CONV_AMX_MULTIPLY(J, b_hi, b_lo) \
  do {                                        \
    _tile_loadd(6, (b_hi), 64);               \
    _tile_dpbf16ps(J, 4, 6);                  \
    _tile_dpbf16ps(J, 5, 6);                  \
    _tile_loadd(6, (b_lo), 64);               \
    _tile_dpbf16ps(J, 4, 6);                  \
  } while (0)

struct Problem {
  const uint16_t* x_hi;  // (rows_in + kTime, in): the split input, zero rows after the end
  const uint16_t* x_lo;
  const uint16_t* w;     // packed (pack())
  const float* bias;     // (out,) or null
  int64_t in, out, taps, dilation, rows_out;
  float* y;              // (rows_out, out)
};

// Output rows [t0, t0 + 16) x output channels [o0, o0 + 64).
inline void block(const Problem& p, int64_t t0, int64_t o0) {
  const int64_t blocks_in = p.in / kChannels, half = 4 * kTileHalves;
  const int64_t live = std::min<int64_t>(4, (p.out - o0 + kOut - 1) / kOut);  // blocks not all padding (96 = 64 + 32)
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  const int64_t stride = p.in * 2;  // bytes per input row
  for (int64_t k = 0; k < p.taps; ++k) {
    const int64_t row = t0 + k * p.dilation;
    for (int64_t c = 0; c < blocks_in; ++c) {
      _tile_loadd(4, p.x_hi + row * p.in + c * kChannels, stride);
      _tile_loadd(5, p.x_lo + row * p.in + c * kChannels, stride);
      const uint16_t* b = p.w + (((o0 / kGroupOut) * p.taps + k) * blocks_in + c) * 8 * kTileHalves;
      QTTS_CONV_AMX_MULTIPLY(0, b, b + half);
      if (live > 1) QTTS_CONV_AMX_MULTIPLY(1, b + kTileHalves, b + half + kTileHalves);
      if (live > 2) QTTS_CONV_AMX_MULTIPLY(2, b + 2 * kTileHalves, b + half + 2 * kTileHalves);
      if (live > 3) QTTS_CONV_AMX_MULTIPLY(3, b + 3 * kTileHalves, b + half + 3 * kTileHalves);
    }
  }
  alignas(64) float c[4][kTime][kOut];
  _tile_stored(0, &c[0][0][0], 64);
  if (live > 1) _tile_stored(1, &c[1][0][0], 64);
  if (live > 2) _tile_stored(2, &c[2][0][0], 64);
  if (live > 3) _tile_stored(3, &c[3][0][0], 64);
  const int64_t rows = std::min<int64_t>(kTime, p.rows_out - t0);
  for (int64_t j = 0; j < 4 && o0 + j * kOut < p.out; ++j) {
    const int64_t channel = o0 + j * kOut;
    const __mmask16 mask = static_cast<__mmask16>((1u << std::min<int64_t>(kOut, p.out - channel)) - 1u);
    const __m512 bias = p.bias ? _mm512_maskz_loadu_ps(mask, p.bias + channel) : _mm512_setzero_ps();
    for (int64_t r = 0; r < rows; ++r)
      _mm512_mask_storeu_ps(p.y + (t0 + r) * p.out + channel, mask, _mm512_add_ps(_mm512_load_ps(c[j][r]), bias));
  }
}

// y (rows_in - (taps - 1) * dilation, out) from the input rows: ``head_rows`` rows of
// ``head`` (the causal left context a stream carries), then the rows of ``x``; all
// time-major fp32 (in channels each).  Taking the two apart saves the caller a copy.
inline void run(const float* head, int64_t head_rows, const float* x, int64_t rows, int64_t in, const uint16_t* w,
                const float* bias, int64_t out, int64_t taps, int64_t dilation, float* y) {
  const int64_t rows_in = head_rows + rows, rows_out = rows_in - (taps - 1) * dilation;
  if (rows_out <= 0) return;
  const size_t size = static_cast<size_t>((rows_in + kTime) * in);
  std::unique_ptr<uint16_t[]> hi(new uint16_t[size]), lo(new uint16_t[size]);  // written below, not zeroed first
  std::memset(hi.get() + rows_in * in, 0, static_cast<size_t>(kTime * in) * sizeof(uint16_t));
  std::memset(lo.get() + rows_in * in, 0, static_cast<size_t>(kTime * in) * sizeof(uint16_t));
  parallel_for(0, rows_in, 64, [&](int64_t first, int64_t last) {
    for (int64_t r = first; r < last; ++r) {
      const float* from = r < head_rows ? head + r * in : x + (r - head_rows) * in;
      uint16_t* to_hi = hi.get() + r * in;
      uint16_t* to_lo = lo.get() + r * in;
      for (int64_t i = 0; i < in; i += 16) {  // in is a multiple of 32
        const __m512 f = _mm512_loadu_ps(from + i);
        const __m256i h = to_bf16(f);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(to_hi + i), h);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(to_lo + i), to_bf16(_mm512_sub_ps(f, from_bf16(h))));
      }
    }
  });
  const Problem p{hi.get(), lo.get(), w, bias, in, out, taps, dilation, rows_out, y};
  const int64_t blocks_t = (rows_out + kTime - 1) / kTime, groups = padded_out(out) / kGroupOut;
  const int64_t spans = (blocks_t + kSpanBlocks - 1) / kSpanBlocks;
  parallel_for(0, groups * spans, 1, [&](int64_t first, int64_t last) {
    configure();
    for (int64_t task = first; task < last; ++task) {
      const int64_t group = task / spans, span = task % spans;
      for (int64_t b = span * kSpanBlocks; b < std::min(blocks_t, (span + 1) * kSpanBlocks); ++b)
        block(p, b * kTime, group * kGroupOut);
    }
    _tile_release();
  });
}

}  // namespace conv_amx
}  // namespace qtts
