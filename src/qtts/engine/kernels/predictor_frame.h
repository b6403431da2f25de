// A whole code-predictor frame in one native call: the 15 residual codes of a frame, each
// one input projection, five layers (decoder_step.h), its own int8 head, sampling and
// embedding lookup, and the sum of the frame's code embeddings (the talker's next input).
//
// Why: with the layers native (decoder_step.h), the ~15 x 5 small calls per frame around them
// (head, sampling as ~10 torch ops, embedding, projection) still took ~10 ms of Python and
// dispatch per 1.7B frame.  Here they are loops over a few thousand floats.
//
// Sampling follows transformers' order (temperature, top-k, top-p, softmax) and draws with one
// uniform per code, given by the caller from its own generator; argmax when greedy.  It is
// the same distribution as torch.multinomial's, not the same draw.
#pragma once

#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <tuple>
#include <vector>

#include "decoder_step.h"

namespace qtts {

struct RowSampling {
  bool do_sample = true;
  int64_t top_k = 50;
  double top_p = 1.0;
  double temperature = 1.0;
};

// The index of the largest logit (the first of equals; a NaN counts as the largest, as torch.argmax).
inline int64_t argmax(const float* logits, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(logits[i])) return i;
    if (logits[i] > logits[best]) best = i;
  }
  return best;
}

// One code from fp32 logits (scratch: overwritten) with a uniform draw u in [0, 1).
inline int64_t sample_logits(float* logits, int64_t n, const RowSampling& p, float u) {
  if (!p.do_sample) return argmax(logits, n);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  if (p.temperature != 0.0 && p.temperature != 1.0) {
    const float t = static_cast<float>(p.temperature);
    for (int64_t i = 0; i < n; ++i) logits[i] /= t;
  }
  if (p.top_k > 0 && p.top_k < n) {  // keep the logits >= the k-th largest (ties kept)
    std::vector<float> copy(logits, logits + n);
    std::nth_element(copy.begin(), copy.begin() + (p.top_k - 1), copy.end(), std::greater<float>());
    const float threshold = copy[p.top_k - 1];
    for (int64_t i = 0; i < n; ++i)
      if (logits[i] < threshold) logits[i] = neg_inf;
  }
  float largest = neg_inf;
  for (int64_t i = 0; i < n; ++i) largest = std::max(largest, logits[i]);
  std::vector<float> weight(n);
  float total = 0.f;
  for (int64_t i = 0; i < n; ++i) {
    weight[i] = std::exp(logits[i] - largest);
    total += weight[i];
  }
  TORCH_CHECK(std::isfinite(total) && total > 0.f, "probability tensor contains either `inf`, `nan` or element < 0");
  if (p.top_p < 1.0) {  // drop the smallest whose cumulative probability stays <= 1 - top_p; never the largest
    std::vector<int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return logits[a] < logits[b]; });
    const float limit = static_cast<float>(1.0 - p.top_p);
    float cumulative = 0.f;
    for (int64_t j = 0; j + 1 < n; ++j) {
      cumulative += weight[order[j]] / total;
      if (cumulative > limit) break;
      weight[order[j]] = 0.f;
    }
    total = 0.f;
    for (int64_t i = 0; i < n; ++i) total += weight[i];
  }
  const float target = u * total;
  float cumulative = 0.f;
  int64_t last = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (weight[i] <= 0.f) continue;
    cumulative += weight[i];
    last = i;
    if (cumulative > target) return i;
  }
  return last;  // u * total rounded up to the whole sum
}

class PredictorFrame {
 public:
  // projection: the talker-width -> predictor-width input projection (n == 0: identity), with
  // an optional float32 bias; heads[i] and embeddings[i] (vocab, talker width; float32 or
  // bfloat16): code i+1's head and embedding table.
  PredictorFrame(DecoderStack stack, PackedLinear projection, torch::Tensor bias, std::vector<PackedLinear> heads,
                 std::vector<torch::Tensor> embeddings, int64_t kv_heads, int64_t head_dim)
      : stack_(std::move(stack)), projection_(std::move(projection)), bias_(std::move(bias)),
        heads_(std::move(heads)), embeddings_(std::move(embeddings)), kv_heads_(kv_heads), head_dim_(head_dim) {
    TORCH_CHECK(!heads_.empty() && heads_.size() == embeddings_.size(), "predictor frame: one embedding per head");
    hidden_ = stack_.hidden();
    outer_ = embeddings_[0].size(1);
    TORCH_CHECK(projection_.n == 0 ? outer_ == hidden_ : (projection_.n == hidden_ && projection_.k == outer_),
                "predictor frame: projection shape");
    TORCH_CHECK(!bias_.defined() || (bias_.scalar_type() == torch::kFloat && bias_.numel() == hidden_),
                "predictor frame: bias must be (hidden,) float32");
    for (size_t i = 0; i < heads_.size(); ++i) {
      TORCH_CHECK(heads_[i].k == hidden_ && heads_[i].n == heads_[0].n, "predictor frame: head shapes");
      const auto& e = embeddings_[i];
      TORCH_CHECK(e.dim() == 2 && e.size(1) == outer_ && e.is_contiguous() &&
                      (e.scalar_type() == torch::kFloat || e.scalar_type() == torch::kBFloat16),
                  "predictor frame: embeddings must be contiguous (vocab, width) float32 or bfloat16");
      TORCH_CHECK(heads_[i].n <= e.size(0), "predictor frame: a head has more codes than its embedding");
    }
  }

  // inputs: (B, 2, width) float32, the talker's last hidden state and code 0's embedding.
  // cos, sin_signed: (1, >= 1 + steps, head_dim) rotary tables of positions 0...  uniforms:
  // (B, steps) float32 in [0, 1).  forced: (B, steps) int64 codes to take instead of sampling
  // (teacher forcing), or an empty tensor.  logits: (B, steps, vocab) float32 to receive each
  // step's raw logits, or an empty tensor.  Returns (codes (B, steps) int64, the sum of code
  // 0's and the new codes' embeddings (B, 1, width) float32).
  std::tuple<torch::Tensor, torch::Tensor> run(const torch::Tensor& inputs, const torch::Tensor& cos,
                                               const torch::Tensor& sin_signed, const std::vector<RowSampling>& rows,
                                               const torch::Tensor& uniforms, const torch::Tensor& forced,
                                               torch::Tensor logits) const {
    TORCH_CHECK(inputs.dim() == 3 && inputs.size(1) == 2 && inputs.size(2) == outer_ &&
                    inputs.scalar_type() == torch::kFloat, "frame: inputs must be (B, 2, width) float32");
    const int64_t batch = inputs.size(0), steps = static_cast<int64_t>(heads_.size()), vocab = heads_[0].n;
    TORCH_CHECK(static_cast<int64_t>(rows.size()) == batch, "frame: one sampling setting per row");
    TORCH_CHECK(uniforms.scalar_type() == torch::kFloat && uniforms.dim() == 2 && uniforms.size(0) == batch &&
                    uniforms.size(1) == steps && uniforms.is_contiguous(), "frame: uniforms must be (B, steps) float32");
    TORCH_CHECK(!forced.defined() || forced.numel() == 0 ||
                    (forced.scalar_type() == torch::kLong && forced.is_contiguous() && forced.dim() == 2 &&
                     forced.size(0) == batch && forced.size(1) == steps), "frame: forced must be (B, steps) int64");
    const bool teacher = forced.defined() && forced.numel() > 0;
    const bool keep = logits.defined() && logits.numel() > 0;
    TORCH_CHECK(!keep || (logits.scalar_type() == torch::kFloat && logits.is_contiguous() && logits.dim() == 3 &&
                          logits.size(0) == batch && logits.size(1) == steps && logits.size(2) == vocab),
                "frame: logits must be (B, steps, vocab) float32");

    std::vector<torch::Tensor> keys, values;
    for (int64_t b = 0; b < batch; ++b) {
      keys.push_back(torch::empty({stack_.layers(), kv_heads_, steps + 1, head_dim_}, torch::kFloat));
      values.push_back(torch::empty_like(keys.back()));
    }
    const std::vector<int64_t> begins(batch, 0);
    auto codes = torch::empty({batch, steps}, torch::kLong);
    auto summed = inputs.narrow(1, 1, 1).contiguous().clone();  // code 0's embedding
    int64_t* code = codes.data_ptr<int64_t>();
    float* sum = summed.data_ptr<float>();

    torch::Tensor hidden = stack_.step(project(inputs.contiguous()), cos.narrow(1, 0, 2), sin_signed.narrow(1, 0, 2),
                                       keys, values, begins, std::vector<int64_t>(batch, 0));
    std::vector<float> last(batch * hidden_), scores(batch * vocab), embedded(batch * outer_);
    for (int64_t step = 0; step < steps; ++step) {
      const int64_t span = hidden.size(1);
      const float* h = hidden.data_ptr<float>();
      for (int64_t b = 0; b < batch; ++b)
        std::copy_n(h + (b * span + span - 1) * hidden_, hidden_, last.data() + b * hidden_);
      linear_into(heads_[step], last.data(), batch, scores.data());
      for (int64_t b = 0; b < batch; ++b) {
        float* row = scores.data() + b * vocab;
        if (keep) std::copy_n(row, vocab, logits.data_ptr<float>() + (b * steps + step) * vocab);
        const int64_t token = teacher ? forced.data_ptr<int64_t>()[b * steps + step]
                                      : sample_logits(row, vocab, rows[b], uniforms.data_ptr<float>()[b * steps + step]);
        TORCH_CHECK(0 <= token && token < embeddings_[step].size(0), "frame: a code outside the embedding table");
        code[b * steps + step] = token;
        embed(step, token, embedded.data() + b * outer_);
        for (int64_t i = 0; i < outer_; ++i) sum[b * outer_ + i] += embedded[b * outer_ + i];
      }
      if (step + 1 == steps) break;
      auto x = torch::from_blob(embedded.data(), {batch, 1, outer_}, torch::kFloat);
      const int64_t position = step + 2;
      hidden = stack_.step(project(x), cos.narrow(1, position, 1), sin_signed.narrow(1, position, 1), keys, values,
                           begins, std::vector<int64_t>(batch, position));
    }
    return {codes, summed};
  }

 private:
  torch::Tensor project(const torch::Tensor& x) const {
    if (projection_.n == 0) return x.contiguous().clone();
    const int64_t rows = x.size(0) * x.size(1);
    auto out = torch::empty({x.size(0), x.size(1), hidden_}, torch::kFloat);
    float* o = out.data_ptr<float>();
    linear_into(projection_, x.contiguous().data_ptr<float>(), rows, o);
    if (bias_.defined()) {
      const float* bias = bias_.data_ptr<float>();
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t i = 0; i < hidden_; ++i) o[r * hidden_ + i] += bias[i];
    }
    return out;
  }

  void embed(int64_t table, int64_t token, float* out) const {
    const auto& e = embeddings_[table];
    if (e.scalar_type() == torch::kFloat) {
      std::copy_n(e.data_ptr<float>() + token * outer_, outer_, out);
    } else {
      const at::BFloat16* row = e.data_ptr<at::BFloat16>() + token * outer_;
      for (int64_t i = 0; i < outer_; ++i) out[i] = static_cast<float>(row[i]);
    }
  }

  DecoderStack stack_;
  PackedLinear projection_;
  torch::Tensor bias_;
  std::vector<PackedLinear> heads_;
  std::vector<torch::Tensor> embeddings_;
  int64_t kv_heads_, head_dim_, hidden_ = 0, outer_ = 0;
};

}  // namespace qtts
