// One generation step of a Qwen3 decoder stack (the talker's 28 layers, or the code
// predictor's 5) in one native call: for a few rows of new positions, every layer's RMS
// norms, fused q/k/v, per-head q/k norms, rotary embedding, the write into the caller's KV
// cache, grouped-query attention over the cached positions, o_proj, the gated SiLU MLP, and
// the final norm, with the int8 products of int8_gemv_core.h.
//
// Why: with int8 weights a 1.7B frame spent ~60 ms (of ~290) in Python and ~25 small torch
// ops per layer around the kernels (measured with the kernels stubbed out).  Here a layer is
// four kernel calls plus loops over a few thousand floats.
//
// The arithmetic is upstream's, in fp32, in the same order per element; sums (norms, dot
// products, softmax) are accumulated in another order than torch's, so results agree with
// the Python path to float rounding, not to the bit (tests/integration/test_native_stack.py).
// Every row is computed on its own (a row's bits never depend on the others in the call),
// which the continuous batcher relies on.
#pragma once

#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "int8_gemv_core.h"
#include "thread_pool.h"

namespace qtts {

// An Int8Linear's packed weight, row sums and scales (kept alive by the tensors).
struct PackedLinear {
  torch::Tensor packed, row_sums, scale;
  int64_t n = 0, k = 0;
};

inline PackedLinear packed_linear(const torch::Tensor& packed, const torch::Tensor& row_sums,
                                  const torch::Tensor& scale, int64_t k) {
  TORCH_CHECK(packed.scalar_type() == torch::kChar && packed.is_contiguous(), "packed weights must be contiguous int8");
  TORCH_CHECK(row_sums.scalar_type() == torch::kInt && row_sums.is_contiguous(), "row sums must be contiguous int32");
  TORCH_CHECK(scale.scalar_type() == torch::kFloat && scale.is_contiguous(), "scales must be contiguous float32");
  const int64_t n = scale.numel();
  TORCH_CHECK(row_sums.numel() == n && packed.numel() == packed_size(n, k), "not a packed (N, K) weight");
  TORCH_CHECK(k > 0 && k % kKMultiple == 0, "K must be a positive multiple of 64");
  return {packed, row_sums, scale, n, k};
}

// out (rows, w.n) = x (rows, w.k) times the weight, on torch's threads.
inline void linear_into(const PackedLinear& w, const float* x, int64_t rows, float* out, bool stream = false) {
  const int64_t k = w.k, n = w.n;
  std::vector<int16_t> q(static_cast<size_t>(rows * k));
  std::vector<float> xscale(static_cast<size_t>(rows), 0.f);
  std::vector<uint8_t> finite(static_cast<size_t>(rows));
  for (int64_t m = 0; m < rows; ++m) finite[m] = quantize_row(x + m * k, k, q.data() + m * k, xscale.data() + m);
  std::vector<uint8_t> hi, lo, tiles;
  Planes planes;
  if (needs_planes()) {
    hi.resize(static_cast<size_t>(rows * k));
    lo.resize(static_cast<size_t>(rows * k));
    tiles.resize(static_cast<size_t>(tiles_size(rows, k)));
    planes = {hi.data(), lo.data(), tiles.empty() ? nullptr : tiles.data()};
    prepare_rows(q.data(), rows, k, planes);
  }
  const Problem problem{w.packed.data_ptr<int8_t>(), w.row_sums.data_ptr<int32_t>(), w.scale.data_ptr<float>(),
                        q.data(), planes, xscale.data(), finite.data(), rows, k, n, out, stream};
  const int64_t blocks = (n + kRowBlock - 1) / kRowBlock;
  qtts::parallel_for(0, blocks, 8, [&](int64_t begin, int64_t end) {
    compute(problem, begin * kRowBlock, std::min(end * kRowBlock, n));
  });
}

namespace step_detail {

inline float dot(const float* a, const float* b, int64_t n) {
  float acc = 0.f;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; ++i) acc += a[i] * b[i];
  return acc;
}

// upstream's Qwen3TTSRMSNorm in fp32: weight * (x * rsqrt(mean(x^2) + eps)).
inline void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  const float inv = 1.f / std::sqrt(dot(x, x, n) / static_cast<float>(n) + eps);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = weight[i] * (x[i] * inv);
}

}  // namespace step_detail

struct StackLayer {
  torch::Tensor input_norm, post_norm, q_norm, k_norm;  // float32 (hidden,), (hidden,), (head_dim,), (head_dim,)
  PackedLinear qkv, o, gate_up, down;
};

class DecoderStack {
 public:
  // The first resident_layers layers' weights are read with ordinary loads (they may stay in
  // the last-level cache until the next step); the others are prefetched non-temporally, so
  // that streaming them does not evict those.
  DecoderStack(std::vector<StackLayer> layers, torch::Tensor final_norm, double eps, int64_t q_heads, int64_t kv_heads,
               int64_t head_dim, double scaling, int64_t resident_layers)
      : layers_(std::move(layers)), final_norm_(std::move(final_norm)), eps_(static_cast<float>(eps)),
        q_heads_(q_heads), kv_heads_(kv_heads), head_dim_(head_dim), scaling_(static_cast<float>(scaling)),
        resident_layers_(resident_layers) {
    TORCH_CHECK(!layers_.empty() && q_heads > 0 && kv_heads > 0 && q_heads % kv_heads == 0 && head_dim % 2 == 0,
                "decoder stack: bad head layout");
    hidden_ = final_norm_.numel();
    for (const auto& l : layers_) {
      TORCH_CHECK(l.qkv.k == hidden_ && l.qkv.n == (q_heads + 2 * kv_heads) * head_dim, "decoder stack: q/k/v shape");
      TORCH_CHECK(l.o.k == q_heads * head_dim && l.o.n == hidden_, "decoder stack: o_proj shape");
      TORCH_CHECK(l.gate_up.k == hidden_ && l.gate_up.n % 2 == 0, "decoder stack: gate/up shape");
      TORCH_CHECK(l.down.k == l.gate_up.n / 2 && l.down.n == hidden_, "decoder stack: down_proj shape");
      for (const auto* t : {&l.input_norm, &l.post_norm, &l.q_norm, &l.k_norm})
        TORCH_CHECK(t->scalar_type() == torch::kFloat && t->is_contiguous(), "decoder stack: norms must be float32");
      TORCH_CHECK(l.input_norm.numel() == hidden_ && l.post_norm.numel() == hidden_ &&
                      l.q_norm.numel() == head_dim && l.k_norm.numel() == head_dim, "decoder stack: norm sizes");
    }
  }

  int64_t hidden() const { return hidden_; }
  int64_t layers() const { return static_cast<int64_t>(layers_.size()); }

  // x: (B, S, hidden) float32, S new positions per row.  cos, sin_signed: (1 or B, S, head_dim),
  // the rotary tables of the new positions (sin_signed = [-sin, sin] by halves).  keys[b],
  // values[b]: row b's cache, (layers, kv_heads, capacity, head_dim) with the last dimension
  // contiguous; the new keys/values go to positions start[b] .. start[b] + S - 1, and new
  // position s attends to begin[b] .. start[b] + s.  Returns (B, S, hidden) after every layer
  // and the final norm.
  torch::Tensor step(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin_signed,
                     const std::vector<torch::Tensor>& keys, const std::vector<torch::Tensor>& values,
                     const std::vector<int64_t>& begin, const std::vector<int64_t>& start) const {
    TORCH_CHECK(x.dim() == 3 && x.size(2) == hidden_ && x.scalar_type() == torch::kFloat, "step: x must be (B, S, hidden) float32");
    const int64_t batch = x.size(0), span = x.size(1), rows = batch * span, d = head_dim_;
    TORCH_CHECK(static_cast<int64_t>(keys.size()) == batch && static_cast<int64_t>(values.size()) == batch &&
                    static_cast<int64_t>(begin.size()) == batch && static_cast<int64_t>(start.size()) == batch,
                "step: one cache, begin and start per row");
    for (const auto* table : {&cos, &sin_signed})
      TORCH_CHECK(table->dim() == 3 && (table->size(0) == 1 || table->size(0) == batch) && table->size(1) == span &&
                      table->size(2) == d && table->scalar_type() == torch::kFloat && table->is_contiguous(),
                  "step: rotary tables must be contiguous (1 or B, S, head_dim) float32");
    for (int64_t b = 0; b < batch; ++b) {
      for (const auto* cache : {&keys[b], &values[b]})
        TORCH_CHECK(cache->dim() == 4 && cache->size(0) == static_cast<int64_t>(layers_.size()) &&
                        cache->size(1) == kv_heads_ && cache->size(3) == d && cache->stride(3) == 1 &&
                        cache->scalar_type() == torch::kFloat, "step: caches must be (layers, kv_heads, capacity, head_dim) float32");
      TORCH_CHECK(0 <= begin[b] && begin[b] <= start[b] && start[b] + span <= keys[b].size(2) &&
                      start[b] + span <= values[b].size(2), "step: positions outside the cache");
    }
    torch::Tensor out = x.contiguous().clone();
    float* h = out.data_ptr<float>();
    const int64_t hid = hidden_, qkv_width = (q_heads_ + 2 * kv_heads_) * d, attn_width = q_heads_ * d;
    std::vector<float> normed(rows * hid), qkv(rows * qkv_width), attended(rows * attn_width), projected(rows * hid);
    std::vector<float> gate_up, act;
    const float* cos_p = cos.data_ptr<float>();
    const float* sin_p = sin_signed.data_ptr<float>();
    const int64_t table_rows = cos.size(0);

    for (size_t li = 0; li < layers_.size(); ++li) {
      const StackLayer& l = layers_[li];
      for (int64_t r = 0; r < rows; ++r)
        step_detail::rms_norm(h + r * hid, l.input_norm.data_ptr<float>(), hid, eps_, normed.data() + r * hid);
      const bool stream = static_cast<int64_t>(li) >= resident_layers_;
      linear_into(l.qkv, normed.data(), rows, qkv.data(), stream);
      // q/k head norms and rotary in place; new keys and values into the cache.
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t b = r / span, s = r % span, t = r % span + (table_rows == 1 ? 0 : b * span);
        const float* c = cos_p + t * d;
        const float* sn = sin_p + t * d;
        float* row = qkv.data() + r * qkv_width;
        for (int64_t head = 0; head < q_heads_ + kv_heads_; ++head) {
          float* v = row + head * d;
          const float* weight = (head < q_heads_ ? l.q_norm : l.k_norm).data_ptr<float>();
          step_detail::rms_norm(v, weight, d, eps_, v);
          rotate(v, c, sn, d);
        }
        for (int64_t kv = 0; kv < kv_heads_; ++kv) {
          float* kdst = cache_at(keys[b], li, kv, start[b] + s);
          float* vdst = cache_at(values[b], li, kv, start[b] + s);
          std::memcpy(kdst, row + (q_heads_ + kv) * d, sizeof(float) * d);
          std::memcpy(vdst, row + (q_heads_ + kv_heads_ + kv) * d, sizeof(float) * d);
        }
      }
      attend(li, qkv.data(), qkv_width, keys, values, begin, start, batch, span, attended.data());
      linear_into(l.o, attended.data(), rows, projected.data(), stream);
      for (int64_t i = 0; i < rows * hid; ++i) h[i] += projected[i];
      for (int64_t r = 0; r < rows; ++r)
        step_detail::rms_norm(h + r * hid, l.post_norm.data_ptr<float>(), hid, eps_, normed.data() + r * hid);
      const int64_t inter = l.down.k;
      gate_up.resize(rows * 2 * inter);
      act.resize(rows * inter);
      linear_into(l.gate_up, normed.data(), rows, gate_up.data(), stream);
      for (int64_t r = 0; r < rows; ++r) {
        const float* g = gate_up.data() + r * 2 * inter;
        const float* u = g + inter;
        float* a = act.data() + r * inter;
        for (int64_t i = 0; i < inter; ++i) a[i] = g[i] / (1.f + std::exp(-g[i])) * u[i];  // silu(gate) * up
      }
      linear_into(l.down, act.data(), rows, projected.data(), stream);
      for (int64_t i = 0; i < rows * hid; ++i) h[i] += projected[i];
    }
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<float> row(h + r * hid, h + (r + 1) * hid);
      step_detail::rms_norm(row.data(), final_norm_.data_ptr<float>(), hid, eps_, h + r * hid);
    }
    return out;
  }

 private:
  // x * cos + roll(x, d / 2) * sin_signed, i.e. upstream's x * cos + rotate_half(x) * sin.
  static void rotate(float* v, const float* c, const float* s, int64_t d) {
    const int64_t half = d / 2;
    for (int64_t i = 0; i < half; ++i) {
      const float a = v[i], b = v[i + half];
      v[i] = a * c[i] + b * s[i];
      v[i + half] = b * c[i + half] + a * s[i + half];
    }
  }

  float* cache_at(const torch::Tensor& cache, size_t layer, int64_t head, int64_t position) const {
    return cache.data_ptr<float>() + static_cast<int64_t>(layer) * cache.stride(0) + head * cache.stride(1) +
           position * cache.stride(2);
  }

  // Softmax attention of every (row, query head) over its row's cached positions; query head
  // h reads key/value head h / (q_heads / kv_heads), as sdpa's enable_gqa.
  void attend(size_t layer, const float* qkv, int64_t qkv_width, const std::vector<torch::Tensor>& keys,
              const std::vector<torch::Tensor>& values, const std::vector<int64_t>& begin,
              const std::vector<int64_t>& start, int64_t batch, int64_t span, float* out) const {
    const int64_t d = head_dim_, group = q_heads_ / kv_heads_;
    qtts::parallel_for(0, batch * span * q_heads_, 1, [&](int64_t first, int64_t last) {
      std::vector<float> scores;
      for (int64_t task = first; task < last; ++task) {
        const int64_t r = task / q_heads_, head = task % q_heads_, b = r / span, s = r % span;
        const int64_t from = begin[b], to = start[b] + s + 1;
        const float* q = qkv + r * qkv_width + head * d;
        const float* k = cache_at(keys[b], layer, head / group, 0);
        const float* v = cache_at(values[b], layer, head / group, 0);
        const int64_t kstride = keys[b].stride(2), vstride = values[b].stride(2);
        scores.resize(to - from);
        float largest = -std::numeric_limits<float>::infinity();
        for (int64_t p = from; p < to; ++p) {
          const float score = step_detail::dot(q, k + p * kstride, d) * scaling_;
          scores[p - from] = score;
          largest = score > largest ? score : largest;
        }
        float total = 0.f;
        for (auto& score : scores) {
          score = std::exp(score - largest);
          total += score;
        }
        float* o = out + r * q_heads_ * d + head * d;
        std::fill(o, o + d, 0.f);
        for (int64_t p = from; p < to; ++p) {
          const float weight = scores[p - from] / total;
          const float* vp = v + p * vstride;
#pragma omp simd
          for (int64_t i = 0; i < d; ++i) o[i] += weight * vp[i];
        }
      }
    });
  }

  std::vector<StackLayer> layers_;
  torch::Tensor final_norm_;
  float eps_;
  int64_t q_heads_, kv_heads_, head_dim_, hidden_ = 0;
  float scaling_;
  int64_t resident_layers_;
};

}  // namespace qtts
