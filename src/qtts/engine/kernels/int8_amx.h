// The AVX-512 VNNI variant's path for 2+ activation rows on CPUs with AMX (Intel Sapphire
// Rapids and later): the same exact integer sums as the VNNI loops, so the same bits, with
// a tile instruction doing what 256 vpdpbusd do.
//
// Part of int8_gemv_core.h: included there inside namespace qtts::detail, after Problem.
//
// Why: at 8 rows the VNNI loops are bound by their instruction count (2 vpdpbusd per 64
// weights per row), ~3x the cost of one row, while one row is bound by reading the weights.
// A TDPBSUD multiplies 8 output rows x 64 inputs of weights (tile A, signed) by 64 inputs x
// 16 columns of activation bytes (tile B, unsigned): columns 0-7 hold the high byte planes of
// up to 8 activation rows, columns 8-15 their low byte planes, so one instruction gives both
// partial sums of 8 x 8 products of length 64.  Weights are read from the VNNI packed layout
// as they are (a block of 8 output rows is 8 x 64 contiguous bytes per step of 64 inputs).
//
// Linux gives a process AMX only on request (arch_prctl ARCH_REQ_XCOMP_PERM); where that is
// refused, the VNNI loops run instead (amx_permitted()).
#pragma once

namespace amx {

constexpr int64_t kGroup = 8;          // activation rows per B tile (hi and lo planes side by side)
constexpr int64_t kStep = 64;          // inputs per tile product
constexpr int64_t kTileBytes = 1024;   // one B tile: 16 rows x 64 bytes
constexpr int64_t kMinRows = 2;        // from here on the tiles beat the VNNI loops (1 row: reading-bound)

inline bool permitted() {
  static const bool ok = [] {
    constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return ok;
}

// Bytes of the B tiles for ``rows`` activation rows of ``k`` inputs (0: not worth tiles).
inline int64_t tiles_size(int64_t rows, int64_t k) {
  return rows >= kMinRows && permitted() ? (rows + kGroup - 1) / kGroup * (k / kStep) * kTileBytes : 0;
}

// The planes of each group of 8 rows as B tiles: tile (g, s) byte [kk][c * 4 + j] is
// plane(c < 8 ? hi : lo)[row g * 8 + c % 8][s * 64 + 4 * kk + j]; missing rows are zero.
inline void fill_tiles(const uint8_t* hi, const uint8_t* lo, int64_t rows, int64_t k, uint8_t* tiles) {
  const int64_t steps = k / kStep, groups = (rows + kGroup - 1) / kGroup;
  std::memset(tiles, 0, static_cast<size_t>(groups * steps * kTileBytes));
  for (int64_t m = 0; m < rows; ++m) {
    const int64_t g = m / kGroup, c = m % kGroup;
    for (int64_t s = 0; s < steps; ++s) {
      uint8_t* tile = tiles + (g * steps + s) * kTileBytes;
      for (int64_t kk = 0; kk < 16; ++kk) {
        std::memcpy(tile + kk * 64 + c * 4, hi + m * k + s * kStep + kk * 4, 4);
        std::memcpy(tile + kk * 64 + (c + kGroup) * 4, lo + m * k + s * kStep + kk * 4, 4);
      }
    }
  }
}

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Tiles 0-3: C (8 output rows x 16 int32) of up to four blocks; 4-5: A (8 x 64 int8
// weights), taking turns; 6: B (16 x 64 activation bytes).  On the 2-core Xeon a tile load
// costs ~17 ns per KB and a product ~5 ns, so four weight blocks share each B load (3 KB
// loaded per 2 KB of weights; two blocks: 2 KB per 1 KB): 1.7B's 8-row frame (predictor
// frame + talker step), alternating runs, 201-218 -> 185-202 ms.
inline void configure() {
  TileConfig config;
  for (int t : {0, 1, 2, 3, 4, 5}) config.rows[t] = 8, config.colsb[t] = 64;
  config.rows[6] = 16, config.colsb[6] = 64;
  _tile_loadconfig(&config);
}

// The weight block's bytes kPrefetchSteps steps ahead: tile loads from memory leave the
// hardware prefetchers behind (8 rows of a 12288x2048 weight streamed from memory on the
// 2-core Xeon: 1.76-1.79 ms without, 1.51-1.67 with 4 steps ahead; 1 row takes 1.31-1.44).
constexpr int64_t kPrefetchSteps = 4;
inline void prefetch_ahead(const int8_t* block) {
  for (int line = 0; line < 8; ++line)
    _mm_prefetch(reinterpret_cast<const char*>(block + kPrefetchSteps * 8 * kStep + line * 64), _MM_HINT_T0);
}

// Output rows [n0, min(n0 + 8 * NB, n1)) (NB packed blocks of 8) for activation group g.
template <int NB>
inline void blocks(const Problem& p, int64_t n0, int64_t n1, int64_t g) {
  const int64_t steps = p.k / kStep, flush = kFlushK / kStep;
  const int64_t m0 = g * kGroup, rows = p.rows - m0 < kGroup ? p.rows - m0 : kGroup;
  const uint8_t* b = p.planes.tiles + g * steps * kTileBytes;
  int64_t hi[NB * 8][kGroup] = {}, lo[NB * 8][kGroup] = {};
  alignas(64) int32_t c[8][16];
  for (int64_t s0 = 0; s0 < steps; s0 += flush) {
    const int64_t s1 = s0 + flush < steps ? s0 + flush : steps;
    _tile_zero(0);
    if constexpr (NB >= 2) _tile_zero(1);
    if constexpr (NB == 4) {
      _tile_zero(2);
      _tile_zero(3);
    }
    const int8_t* w[NB];
    for (int nb = 0; nb < NB; ++nb) w[nb] = weight_at(p, n0 + 8 * nb, s0 * kStep);
    for (int64_t s = s0; s < s1; ++s) {
      for (int nb = 0; nb < NB; ++nb) prefetch_ahead(w[nb]);
      _tile_loadd(6, b + s * kTileBytes, 64);
      _tile_loadd(4, w[0], 64);
      _tile_dpbsud(0, 4, 6);
      if constexpr (NB >= 2) {
        _tile_loadd(5, w[1], 64);
        _tile_dpbsud(1, 5, 6);
      }
      if constexpr (NB == 4) {
        _tile_loadd(4, w[2], 64);
        _tile_dpbsud(2, 4, 6);
        _tile_loadd(5, w[3], 64);
        _tile_dpbsud(3, 5, 6);
      }
      for (int nb = 0; nb < NB; ++nb) w[nb] += 8 * kStep;
    }
    for (int nb = 0; nb < NB; ++nb) {
      if (nb == 0) _tile_stored(0, c, 64);
      else if (nb == 1) _tile_stored(1, c, 64);
      else if (nb == 2) _tile_stored(2, c, 64);
      else _tile_stored(3, c, 64);
      for (int r = 0; r < 8; ++r)
        for (int64_t mb = 0; mb < rows; ++mb) hi[nb * 8 + r][mb] += c[r][mb], lo[nb * 8 + r][mb] += c[r][mb + kGroup];
    }
  }
  for (int r = 0; r < NB * 8 && n0 + r < n1; ++r)
    for (int64_t mb = 0; mb < rows; ++mb)  // sum w * (hi + 128) * 256 overcounts 128 * 256 * sum w
      store(p, m0 + mb, n0 + r, 256LL * hi[r][mb] + lo[r][mb] - 32768LL * p.row_sums[n0 + r]);
}

// Output rows [n0, n1), n0 a multiple of 8 (the last block may be partial: its padding rows
// are zero in the packed layout and are not stored).
inline void compute(const Problem& p, int64_t n0, int64_t n1) {
  configure();
  const int64_t groups = (p.rows + kGroup - 1) / kGroup;
  int64_t n = n0;
  for (; n + 24 < n1; n += 32)
    for (int64_t g = 0; g < groups; ++g) blocks<4>(p, n, n1, g);
  for (; n + 8 < n1; n += 16)
    for (int64_t g = 0; g < groups; ++g) blocks<2>(p, n, n1, g);
  for (; n < n1; n += 8)
    for (int64_t g = 0; g < groups; ++g) blocks<1>(p, n, n1, g);
  _tile_release();
}

}  // namespace amx
