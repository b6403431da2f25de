// Weight-only int8 matrix-vector products for a few rows of activations (AVX-512 VNNI).
//
// y[m, n] = scale[n] * sum_k w[n, k] * x[m, k], with w int8 (per-output-channel scale) and
// x in float.  Each activation row is quantized to 16 bits (per row, symmetric: relative
// error 1.5e-5, finer than the bf16 activations of torch's int8 kernel) and split into a
// high and a low byte, x_q = 256 * hi + lo, so that two VNNI dot products (u8 x s8, 64
// weights per instruction) give the exact integer sum.  The weights are read once per
// call for all rows; the work is split over torch's threads by blocks of output rows.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <cmath>
#include <cstdint>

namespace {

#ifndef QTTS_BLOCK
#define QTTS_BLOCK 4
#endif
constexpr int64_t kBlock = QTTS_BLOCK;  // output rows per inner kernel

void quantize_rows(const float* x, int64_t rows, int64_t k, uint8_t* hi, uint8_t* lo, float* row_scale) {
  for (int64_t m = 0; m < rows; ++m) {
    const float* xr = x + m * k;
    float max_abs = 0.f;
    for (int64_t i = 0; i < k; ++i) max_abs = std::max(max_abs, std::fabs(xr[i]));
    const float s = max_abs > 0.f ? max_abs / 32767.f : 1.f;
    const float inv = 1.f / s;
    row_scale[m] = s;
    for (int64_t i = 0; i < k; ++i) {
      int32_t q = static_cast<int32_t>(std::nearbyint(xr[i] * inv));
      q = std::min(32767, std::max(-32767, q));
      const int32_t h = q >> 8;  // floor division by 256, in [-128, 127]
      hi[m * k + i] = static_cast<uint8_t>(h + 128);
      lo[m * k + i] = static_cast<uint8_t>(q - h * 256);
    }
  }
}

template <int64_t Count>
inline void block_rows(const int8_t* w, const int32_t* row_sums, const float* scale, const uint8_t* hi,
                       const uint8_t* lo, const float* row_scale, int64_t rows, int64_t k, int64_t n_total,
                       int64_t n0, float* out) {
  for (int64_t m = 0; m < rows; ++m) {
    const uint8_t* h = hi + m * k;
    const uint8_t* l = lo + m * k;
    __m512i acc_hi[Count], acc_lo[Count];
#pragma GCC unroll 8
    for (int64_t r = 0; r < Count; ++r) acc_hi[r] = acc_lo[r] = _mm512_setzero_si512();
    for (int64_t i = 0; i < k; i += 64) {
      const __m512i vh = _mm512_loadu_si512(h + i);
      const __m512i vl = _mm512_loadu_si512(l + i);
#pragma GCC unroll 8
      for (int64_t r = 0; r < Count; ++r) {
        const __m512i vw = _mm512_loadu_si512(w + (n0 + r) * k + i);
        acc_hi[r] = _mm512_dpbusd_epi32(acc_hi[r], vh, vw);
        acc_lo[r] = _mm512_dpbusd_epi32(acc_lo[r], vl, vw);
      }
    }
#pragma GCC unroll 8
    for (int64_t r = 0; r < Count; ++r) {
      const int64_t n = n0 + r;
      // sum w * hi = sum w * (hi + 128) - 128 * sum w
      const int64_t dot_hi = static_cast<int64_t>(_mm512_reduce_add_epi32(acc_hi[r])) - 128LL * row_sums[n];
      const int64_t dot_lo = _mm512_reduce_add_epi32(acc_lo[r]);
      const double dot = static_cast<double>(dot_hi * 256 + dot_lo);
      out[m * n_total + n] = static_cast<float>(dot * row_scale[m] * scale[n]);
    }
  }
}

}  // namespace

// x: (M, K) float32; w: (N, K) int8; row_sums: (N,) int32 (sum of each weight row);
// scale: (N,) float32.  Returns (M, N) float32.
torch::Tensor int8_gemv(torch::Tensor x, torch::Tensor w, torch::Tensor row_sums, torch::Tensor scale) {
  TORCH_CHECK(x.dim() == 2 && w.dim() == 2 && x.size(1) == w.size(1), "shapes");
  TORCH_CHECK(x.scalar_type() == torch::kFloat && w.scalar_type() == torch::kChar, "dtypes");
  TORCH_CHECK(row_sums.scalar_type() == torch::kInt && scale.scalar_type() == torch::kFloat, "dtypes");
  TORCH_CHECK(w.size(1) % 64 == 0, "K must be a multiple of 64");
  x = x.contiguous();
  const int64_t rows = x.size(0), k = x.size(1), n_total = w.size(0);
  auto hi = torch::empty({rows, k}, torch::kByte);
  auto lo = torch::empty({rows, k}, torch::kByte);
  auto row_scale = torch::empty({rows}, torch::kFloat);
  quantize_rows(x.data_ptr<float>(), rows, k, hi.data_ptr<uint8_t>(), lo.data_ptr<uint8_t>(), row_scale.data_ptr<float>());
  auto out = torch::empty({rows, n_total}, torch::kFloat);
  const int8_t* wp = w.data_ptr<int8_t>();
  const int32_t* sp = row_sums.data_ptr<int32_t>();
  const float* cp = scale.data_ptr<float>();
  const uint8_t* hp = hi.data_ptr<uint8_t>();
  const uint8_t* lp = lo.data_ptr<uint8_t>();
  const float* rp = row_scale.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const int64_t blocks = (n_total + kBlock - 1) / kBlock;
  at::parallel_for(0, blocks, 8, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const int64_t n0 = b * kBlock;
      if (n0 + kBlock <= n_total) {
        block_rows<kBlock>(wp, sp, cp, hp, lp, rp, rows, k, n_total, n0, op);
      } else {
        for (int64_t n = n0; n < n_total; ++n) block_rows<1>(wp, sp, cp, hp, lp, rp, rows, k, n_total, n, op);
      }
    }
  });
  return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("int8_gemv", &int8_gemv, "weight-only int8 GEMV with 16-bit activations (AVX-512 VNNI)");
}
