// Standalone check of qtts's int8 kernel core and the SnakeBeta pass (no torch): every
// variant against a scalar int64 reference, at the real shapes, with NaN/Inf/zero rows; sin^2
// against double precision.  Built by
// tests/unit/test_int8_kernel.py with the variant's flags; for aarch64, cross-compiled and run
// under qemu-user.  Prints "ok <variant> <cases>" or the first mismatch, exit 1.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "int8_gemv_core.h"
#include "snake.h"
#ifdef QTTS_AMX
#include <cstring>
#include <limits>

#include "conv_amx.h"
#endif

namespace {

int check(int64_t rows, int64_t k, int64_t n, std::mt19937& rng, bool extremes) {
  std::uniform_int_distribution<int> weight(-127, 127);
  std::normal_distribution<float> act(0.f, 1.f);
  std::vector<int8_t> w(n * k);
  std::vector<int32_t> sums(n, 0);
  std::vector<float> wscale(n);
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t i = 0; i < k; ++i) {
      // extremes: every weight at +-127, the worst case for the int32 accumulators
      const int v = extremes ? ((i + j) % 3 == 0 ? -127 : 127) : weight(rng);
      w[j * k + i] = static_cast<int8_t>(v);
      sums[j] += v;
    }
    wscale[j] = 0.01f + 0.001f * static_cast<float>(j % 7);
  }
  std::vector<float> x(rows * k);
  for (auto& v : x) v = act(rng);
  if (extremes)
    for (int64_t i = 0; i < k; ++i) x[i] = (i + 0) % 3 == 0 ? -1.f : 1.f;  // row 0 hits +-32767 everywhere
  if (rows > 1) x[1 * k + 5] = NAN;
  if (rows > 2) x[2 * k + 7] = INFINITY;
  if (rows > 3)
    for (int64_t i = 0; i < k; ++i) x[3 * k + i] = 0.f;
  std::vector<int16_t> q(rows * k);
  std::vector<float> xscale(rows, 0.f);
  std::vector<uint8_t> finite(rows);
  for (int64_t m = 0; m < rows; ++m) finite[m] = qtts::quantize_row(&x[m * k], k, &q[m * k], &xscale[m]);
  std::vector<uint8_t> hi(rows * k), lo(rows * k), tiles(qtts::tiles_size(rows, k));
  qtts::Planes planes{hi.data(), lo.data(), tiles.empty() ? nullptr : tiles.data()};
  qtts::prepare_rows(q.data(), rows, k, planes);
  std::vector<float> out(rows * n, -1.f);
  std::vector<int8_t> packed(qtts::packed_size(n, k));
  qtts::pack_weights(w.data(), n, k, packed.data());
  const qtts::Problem p{packed.data(), sums.data(), wscale.data(), q.data(), planes, xscale.data(), finite.data(),
                        rows, k, n, out.data()};
  const int64_t split = n < 5 ? n : 5;  // two ranges, as threads would split them
  qtts::compute(p, 0, split);
  qtts::compute(p, split, n);
  if (!tiles.empty()) {  // the AMX tiles give the bits of the vector loops (which run where AMX is refused)
    std::vector<float> tiled(rows * n, -1.f);  // over the whole range: blocks of 32, 16 and 8 rows
    qtts::Problem whole = p;
    whole.out = tiled.data();
    qtts::compute(whole, 0, n);
    qtts::Problem loops = p;
    loops.planes.tiles = nullptr;
    qtts::compute(loops, 0, n);
    for (int64_t j = 0; j < rows * n; ++j)
      if (!(tiled[j] == out[j] || (std::isnan(tiled[j]) && std::isnan(out[j])))) {
        std::printf("AMX tiles and vector loops differ at %lld (rows=%lld)\n", (long long)j, (long long)rows);
        return 1;
      }
  }
  if (rows == 1) {  // the streamed (non-temporally prefetched) read gives the same bits
    std::vector<float> first(out);
    qtts::Problem streamed = p;
    streamed.stream = true;
    qtts::compute(streamed, 0, n);
    for (int64_t j = 0; j < n; ++j)
      if (!(first[j] == out[j] || (std::isnan(first[j]) && std::isnan(out[j])))) {
        std::printf("streamed read differs at %lld\n", (long long)j);
        return 1;
      }
  }
  for (int64_t m = 0; m < rows; ++m) {
    for (int64_t j = 0; j < n; ++j) {
      const float got = out[m * n + j];
      if (!finite[m]) {
        if (!std::isnan(got)) {
          std::printf("row %lld (rows=%lld k=%lld n=%lld) col %lld with NaN/Inf gave %g, not NaN\n", (long long)m, (long long)rows, (long long)k, (long long)n, (long long)j, got);
          return 1;
        }
        continue;
      }
      int64_t dot = 0;
      for (int64_t i = 0; i < k; ++i) dot += static_cast<int64_t>(w[j * k + i]) * q[m * k + i];
      const float want = static_cast<float>(static_cast<double>(dot) * xscale[m] * wscale[j]);
      if (got != want) {
        std::printf("mismatch rows=%lld k=%lld n=%lld at (%lld, %lld): %.9g != %.9g\n", (long long)rows,
                    (long long)k, (long long)n, (long long)m, (long long)j, got, want);
        return 1;
      }
    }
  }
  return 0;
}

// SnakeBeta's sin^2 against double precision, and its vectorized runs (odd lengths, both
// layouts) against a scalar loop; NaN and Inf give NaN.
int check_snake() {
  const double limits[] = {1.0, 100.0, 1e4, 1e5};
  for (double limit : limits) {
    for (long i = -100000; i <= 100000; ++i) {
      const float z = static_cast<float>(i * limit / 1e5);
      const double want = std::pow(std::sin(static_cast<double>(z)), 2);
      if (std::fabs(qtts::sin_squared(z) - want) > 2e-7) {
        std::printf("sin_squared(%.9g) = %.9g, want %.9g\n", z, qtts::sin_squared(z), want);
        return 1;
      }
    }
  }
  const int64_t n = 1003, channels = 13;
  std::vector<float> x(n * channels), y(n * channels), alpha(channels), inv_beta(channels);
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.f, 3.f);
  for (auto& v : x) v = normal(rng);
  for (int64_t c = 0; c < channels; ++c) alpha[c] = 0.2f + 0.3f * c, inv_beta[c] = 1.f / (1.f + c);
  x[5] = NAN;
  x[6] = INFINITY;
  for (int64_t c = 0; c < channels; ++c) qtts::snake_run(&x[c * n], alpha[c], inv_beta[c], n, &y[c * n]);
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t t = 0; t < n; ++t) {
      const float v = x[c * n + t], got = y[c * n + t];
      const float want = v + inv_beta[c] * qtts::sin_squared(alpha[c] * v);
      if (std::isfinite(v) ? std::fabs(got - want) > 1e-6f * (1.f + std::fabs(v)) : !std::isnan(got)) {
        std::printf("snake_run at (%lld, %lld): %g, want %g\n", (long long)c, (long long)t, got, want);
        return 1;
      }
    }
  std::vector<float> row(channels), out(channels);  // time-major: one time step's channels
  for (int64_t c = 0; c < channels; ++c) row[c] = x[c * n + 100];
  qtts::snake_channels(row.data(), alpha.data(), inv_beta.data(), channels, out.data());
  for (int64_t c = 0; c < channels; ++c)
    if (std::fabs(out[c] - y[c * n + 100]) > 1e-6f * (1.f + std::fabs(row[c]))) {
      std::printf("snake_channels at %lld: %g, want %g\n", (long long)c, out[c], y[c * n + 100]);
      return 1;
    }
  return 0;
}

}  // namespace

#ifdef QTTS_AMX
// The decoder convolution's split of x into bf16 hi and lo, 16 at a time, against the scalar
// rounding: random bits (NaNs, infinities, subnormals among them) and the rounding ties.
int check_bf16_split(std::mt19937& rng) {
  std::vector<uint32_t> bits = {0u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0x7f800001u, 0xffffffffu,
                                0x00000001u, 0x807fffffu, 0x7f7fffffu, 0x3f808000u, 0x3f818000u, 0x3f807fffu};
  for (int i = 0; i < 1 << 16; ++i) bits.push_back(static_cast<uint32_t>(rng()));
  while (bits.size() % 16) bits.push_back(static_cast<uint32_t>(rng()) & 0xffff8000u);
  for (size_t i = 0; i < bits.size(); i += 16) {
    float f[16];
    std::memcpy(f, &bits[i], sizeof(f));
    alignas(32) uint16_t got[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(got), qtts::conv_amx::to_bf16(_mm512_loadu_ps(f)));
    for (int j = 0; j < 16; ++j)
      if (got[j] != qtts::conv_amx::to_bf16(f[j])) {
        std::printf("bf16 split differs for %08x: %04x vs %04x\n", bits[i + j], got[j], qtts::conv_amx::to_bf16(f[j]));
        return 1;
      }
  }
  return 0;
}
#endif

int main() {
  if (check_snake()) return 1;
#ifdef QTTS_AMX
  {
    std::mt19937 split_rng(99);
    if (check_bf16_split(split_rng)) return 1;
  }
#endif
  std::mt19937 rng(1234);
  const int64_t shapes[][3] = {{1, 64, 9},    {1, 2048, 6144 / 64}, {3, 2048, 37}, {4, 6144, 21},
                               {7, 1024, 19}, {2, 8192, 11},        {70, 2048, 13}, {5, 65536, 3},
                               {8, 2048, 40}, {9, 6144, 24},        {16, 1024, 17}, {23, 4096, 33},
                               {8, 1024, 59}};
  int cases = 0;
  for (const auto& s : shapes) {
    for (bool extremes : {false, true}) {
      if (check(s[0], s[1], s[2], rng, extremes)) return 1;
      ++cases;
    }
  }
  std::printf("ok %s %d\n", qtts::variant_name(), cases);
  return 0;
}
