// The speech decoder's SnakeBeta activation in one pass: y = x + inv_beta[c] * sin(alpha[c] * x)^2.
//
// Upstream computes it as five full-size tensor passes (torch: mul, sin, square, mul, add);
// at the decoder's 24 kHz stage each pass streams 96 channels x 1920 samples per frame
// through memory, and the SnakeBeta passes were ~13% of a decode (profiled on the 2-core
// EPYC after the convolutions were prepacked).  Here each element is read and written once.
//
// sin^2 without a library sin, in plain float arithmetic the compiler vectorizes for any ISA:
// z = j * pi/2 + r with |r| <= pi/4 (Cody-Waite, pi/2 in three parts), sin^2(z) = sin^2(r)
// for even j and 1 - sin^2(r) for odd j, sin(r) from Cephes' single-precision polynomial
// (absolute error < 2e-7 on |r| <= pi/4).  Accurate for |z| < 1e5; beyond that
// the reduction loses bits (the values stay in [0, 1]).  NaN and Inf give NaN, as sin does.
#pragma once

#include <cstdint>

namespace qtts {

inline float sin_squared(float z) {
  constexpr float kTwoOverPi = 0.636619772367581343f;
  constexpr float kPio2A = 1.5703125f, kPio2B = 4.837512969970703125e-4f, kPio2C = 7.54978995489188216e-8f;
  constexpr float kRound = 12582912.f;  // 1.5 * 2^23: adding and subtracting it rounds to an integer
  const float j = (z * kTwoOverPi + kRound) - kRound;
  const float r = ((z - j * kPio2A) - j * kPio2B) - j * kPio2C;
  const float r2 = r * r;
  const float s = r + r * r2 * (-1.6666654611e-1f + r2 * (8.3321608736e-3f + r2 * -1.9515295891e-4f));
  // odd j: cos^2(r) = 1 - sin^2(r); as arithmetic, not a branch, so that the loop vectorizes
  const float odd = static_cast<float>(static_cast<int32_t>(j) & 1);
  return odd + (1.f - 2.f * odd) * (s * s);
}

// A run of n elements that share (alpha, inv_beta), contiguous.
inline void snake_run(const float* x, float alpha, float inv_beta, int64_t n, float* y) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] + inv_beta * sin_squared(alpha * x[i]);
}

// A run of n channels at one time step, contiguous (time-major layout).
inline void snake_channels(const float* x, const float* alpha, const float* inv_beta, int64_t n, float* y) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] + inv_beta[i] * sin_squared(alpha[i] * x[i]);
}

}  // namespace qtts
