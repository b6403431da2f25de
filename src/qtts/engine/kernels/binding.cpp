// torch binding of qtts's native code: the int8 kernel (int8_gemv_core.h), the fused
// decoder step built on it (decoder_step.h), the code predictor's frame (predictor_frame.h)
// and SnakeBeta (snake.h).  One module per ISA variant, built by torch's
// extension loader with that variant's flags (see __init__.py).
#include <torch/extension.h>

#include <string>
#include <tuple>
#include <vector>

#include "decoder_step.h"
#if QTTS_AMX
#include "conv_amx.h"
#endif
#include "int8_gemv_core.h"
#include "predictor_frame.h"
#include "snake.h"
#include "thread_pool.h"

// w: (N, K) int8 row-major -> the 1-D packed layout the kernel reads (int8_gemv_core.h).
torch::Tensor pack(torch::Tensor w) {
  TORCH_CHECK(w.dim() == 2 && w.scalar_type() == torch::kChar, "pack: w must be (N, K) int8");
  TORCH_CHECK(w.size(1) > 0 && w.size(1) % qtts::kKMultiple == 0, "pack: K must be a positive multiple of 64");
  const auto wc = w.contiguous();
  auto out = torch::empty({qtts::packed_size(w.size(0), w.size(1))}, torch::kChar);
  qtts::pack_weights(wc.data_ptr<int8_t>(), w.size(0), w.size(1), out.data_ptr<int8_t>());
  return out;
}

// x: (M, K) float32 or bfloat16; w: packed (by pack()) int8 weights of shape (N, K); row_sums: (N,) int32 (sum of each weight
// row); scale: (N,) float32.  Returns (M, N) in x's dtype.  Rows of x holding NaN or Inf
// give NaN outputs.
torch::Tensor int8_gemv(torch::Tensor x, torch::Tensor w, torch::Tensor row_sums, torch::Tensor scale) {
  TORCH_CHECK(x.dim() == 2, "int8_gemv: x must be 2-D");
  TORCH_CHECK(x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kBFloat16,
              "int8_gemv: x must be float32 or bfloat16");
  const auto linear = qtts::packed_linear(w, row_sums, scale, x.size(1));
  const auto xf = x.to(torch::kFloat).contiguous();
  auto out = torch::empty({x.size(0), linear.n}, torch::kFloat);
  qtts::linear_into(linear, xf.data_ptr<float>(), x.size(0), out.data_ptr<float>());
  return x.scalar_type() == torch::kFloat ? out : out.to(x.scalar_type());
}

// layers: per layer [input_norm, post_norm, q_norm, k_norm, then (packed, row_sums, scale) of
// q/k/v fused, o_proj, gate/up fused, down_proj] (16 tensors).
qtts::DecoderStack make_stack(const std::vector<std::vector<torch::Tensor>>& layers, torch::Tensor final_norm,
                              double eps, int64_t q_heads, int64_t kv_heads, int64_t head_dim, double scaling,
                              int64_t resident_layers) {
  TORCH_CHECK(final_norm.scalar_type() == torch::kFloat && final_norm.is_contiguous(), "final norm must be float32");
  const int64_t hidden = final_norm.numel();
  std::vector<qtts::StackLayer> out;
  for (const auto& t : layers) {
    TORCH_CHECK(t.size() == 16, "decoder stack: 16 tensors per layer");
    const int64_t inter = t[12].numel() / 2;  // gate/up scales: 2 * intermediate
    out.push_back({t[0], t[1], t[2], t[3], qtts::packed_linear(t[4], t[5], t[6], hidden),
                   qtts::packed_linear(t[7], t[8], t[9], q_heads * head_dim),
                   qtts::packed_linear(t[10], t[11], t[12], hidden), qtts::packed_linear(t[13], t[14], t[15], inter)});
  }
  return qtts::DecoderStack(std::move(out), final_norm, eps, q_heads, kv_heads, head_dim, scaling, resident_layers);
}

std::vector<qtts::RowSampling> row_sampling(const std::vector<bool>& do_sample, const std::vector<int64_t>& top_k,
                                             const std::vector<double>& top_p, const std::vector<double>& temperature) {
  TORCH_CHECK(top_k.size() == do_sample.size() && top_p.size() == do_sample.size() &&
                  temperature.size() == do_sample.size(), "sampling: one setting of each kind per row");
  std::vector<qtts::RowSampling> rows;
  for (size_t i = 0; i < do_sample.size(); ++i) rows.push_back({do_sample[i], top_k[i], top_p[i], temperature[i]});
  return rows;
}

// projection: [packed, row_sums, scale] or [] (identity); bias: (hidden,) float32 or None;
// heads: per code [packed, row_sums, scale]; embeddings: per code (vocab, width).
qtts::PredictorFrame make_frame(const qtts::DecoderStack& stack, const std::vector<torch::Tensor>& projection,
                                c10::optional<torch::Tensor> bias, const std::vector<std::vector<torch::Tensor>>& heads,
                                const std::vector<torch::Tensor>& embeddings, int64_t kv_heads, int64_t head_dim) {
  TORCH_CHECK(projection.empty() || projection.size() == 3, "frame: projection as [packed, row_sums, scale] or []");
  TORCH_CHECK(!embeddings.empty(), "frame: no embeddings");
  const int64_t width = embeddings[0].size(1);
  const auto project = projection.empty() ? qtts::PackedLinear{}
                                          : qtts::packed_linear(projection[0], projection[1], projection[2], width);
  std::vector<qtts::PackedLinear> packed_heads;
  for (const auto& t : heads) {
    TORCH_CHECK(t.size() == 3, "frame: a head as [packed, row_sums, scale]");
    packed_heads.push_back(qtts::packed_linear(t[0], t[1], t[2], stack.hidden()));
  }
  return qtts::PredictorFrame(stack, project, bias.has_value() ? bias->contiguous() : torch::Tensor(),
                              std::move(packed_heads), embeddings, kv_heads, head_dim);
}

std::tuple<torch::Tensor, torch::Tensor> run_frame(const qtts::PredictorFrame& frame, const torch::Tensor& inputs,
                                                   const torch::Tensor& cos, const torch::Tensor& sin_signed,
                                                   const std::vector<bool>& do_sample, const std::vector<int64_t>& top_k,
                                                   const std::vector<double>& top_p,
                                                   const std::vector<double>& temperature, const torch::Tensor& uniforms,
                                                   const torch::Tensor& forced, const torch::Tensor& logits) {
  return frame.run(inputs, cos, sin_signed, row_sampling(do_sample, top_k, top_p, temperature), uniforms, forced, logits);
}

// One code from (n,) float32 logits, as a frame samples (for tests).
int64_t sample(torch::Tensor logits, bool do_sample, int64_t top_k, double top_p, double temperature, double u) {
  TORCH_CHECK(logits.dim() == 1 && logits.scalar_type() == torch::kFloat, "sample: logits must be (n,) float32");
  auto scratch = logits.contiguous().clone();
  return qtts::sample_logits(scratch.data_ptr<float>(), scratch.numel(), {do_sample, top_k, top_p, temperature},
                             static_cast<float>(u));
}

// x: (B, C, T) float32, channels-first (time contiguous) or time-major (channels contiguous);
// alpha, inv_beta: (C,) float32.  Returns x + inv_beta * sin(alpha * x)^2 in x's layout.
torch::Tensor snake(torch::Tensor x, torch::Tensor alpha, torch::Tensor inv_beta) {
  TORCH_CHECK(x.dim() == 3 && x.scalar_type() == torch::kFloat, "snake: x must be (B, C, T) float32");
  const int64_t batch = x.size(0), channels = x.size(1), time = x.size(2);
  TORCH_CHECK(alpha.scalar_type() == torch::kFloat && inv_beta.scalar_type() == torch::kFloat &&
                  alpha.is_contiguous() && inv_beta.is_contiguous() && alpha.numel() == channels &&
                  inv_beta.numel() == channels, "snake: alpha and inv_beta must be (C,) float32");
  const bool time_major = x.stride(1) == 1 && x.stride(2) == channels && x.stride(0) == channels * time;
  const auto input = time_major ? x : x.contiguous();
  auto out = torch::empty_like(input);  // the same strides
  const float* xp = input.data_ptr<float>();
  float* yp = out.data_ptr<float>();
  const float* a = alpha.data_ptr<float>();
  const float* b = inv_beta.data_ptr<float>();
  if (time_major) {
    qtts::parallel_for(0, batch * time, 256, [&](int64_t first, int64_t last) {
      for (int64_t row = first; row < last; ++row) qtts::snake_channels(xp + row * channels, a, b, channels, yp + row * channels);
    });
  } else {
    qtts::parallel_for(0, batch * channels, 1, [&](int64_t first, int64_t last) {
      for (int64_t row = first; row < last; ++row)
        qtts::snake_run(xp + row * time, a[row % channels], b[row % channels], time, yp + row * time);
    });
  }
  return out;
}

// The decoder's convolutions on AMX bf16 tiles (conv_amx.h), where this variant has them.
bool conv_amx_available() {
#if QTTS_AMX
  return qtts::detail::amx_permitted();
#else
  return false;
#endif
}

// w: (out, in, taps) float32, in a multiple of 32 -> the packed hi/lo tiles (int16).
torch::Tensor conv_amx_pack(torch::Tensor w) {
  TORCH_CHECK(conv_amx_available(), "conv_amx: not in this variant");
  TORCH_CHECK(w.dim() == 3 && w.scalar_type() == torch::kFloat && w.size(1) % 32 == 0,
              "conv_amx: w must be (out, in, taps) float32 with in a multiple of 32");
#if QTTS_AMX
  const auto wc = w.contiguous();
  auto out = torch::empty({qtts::conv_amx::packed_size(w.size(0), w.size(1), w.size(2))}, torch::kShort);
  qtts::conv_amx::pack(wc.data_ptr<float>(), w.size(0), w.size(1), w.size(2),
                       reinterpret_cast<uint16_t*>(out.data_ptr<int16_t>()));
  return out;
#else
  return torch::Tensor();
#endif
}

// x: (batch, rows, in) float32 time-major, after head: (batch, head rows, in) or None (the
// causal left context) -> (batch, head rows + rows - (taps - 1) * dilation, out).
torch::Tensor conv_amx_run(torch::Tensor x, c10::optional<torch::Tensor> head, torch::Tensor packed,
                           c10::optional<torch::Tensor> bias, int64_t out, int64_t taps, int64_t dilation) {
  TORCH_CHECK(conv_amx_available(), "conv_amx: not in this variant");
  TORCH_CHECK(x.dim() == 3 && x.scalar_type() == torch::kFloat, "conv_amx: x must be (batch, rows, in) float32");
  const int64_t batch = x.size(0), rows = x.size(1), in = x.size(2);
  TORCH_CHECK(packed.numel() > 0 && in % 32 == 0, "conv_amx: in must be a multiple of 32");
  torch::Tensor h = head.has_value() ? head->contiguous() : torch::Tensor();
  TORCH_CHECK(!h.defined() || (h.dim() == 3 && h.scalar_type() == torch::kFloat && h.size(0) == batch &&
                               h.size(2) == in), "conv_amx: head must be (batch, rows, in) float32 like x");
  const int64_t head_rows = h.defined() ? h.size(1) : 0;
  const int64_t rows_out = head_rows + rows - (taps - 1) * dilation;
  TORCH_CHECK(rows_out > 0, "conv_amx: input shorter than the kernel's reach");
  const auto xc = x.contiguous();
  auto y = torch::empty({batch, rows_out, out}, torch::kFloat);
  torch::Tensor b = bias.has_value() ? bias->to(torch::kFloat).contiguous() : torch::Tensor();
#if QTTS_AMX
  for (int64_t i = 0; i < batch; ++i)
    qtts::conv_amx::run(h.defined() ? h.data_ptr<float>() + i * head_rows * in : nullptr, head_rows,
                        xc.data_ptr<float>() + i * rows * in, rows, in,
                        reinterpret_cast<const uint16_t*>(packed.data_ptr<int16_t>()),
                        b.defined() ? b.data_ptr<float>() : nullptr, out, taps, dilation,
                        y.data_ptr<float>() + i * rows_out * out);
#endif
  return y;
}

std::string variant() { return qtts::variant_name(); }

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("int8_gemv", &int8_gemv, "weight-only int8 matrix product with 16-bit activations");
  m.def("pack", &pack, "pack (N, K) int8 weights for int8_gemv");
  m.def("pack_width", []() { return qtts::kPackWidth; }, "inputs per packed step");
  m.def("variant", &variant, "the ISA variant this module was built for");
  pybind11::class_<qtts::DecoderStack>(m, "DecoderStack")
      .def("step", &qtts::DecoderStack::step, "one generation step through every layer and the final norm",
           pybind11::call_guard<pybind11::gil_scoped_release>());
  m.def("decoder_stack", &make_stack, "a DecoderStack over int8 layers (see decoder_step.h)");
  pybind11::class_<qtts::PredictorFrame>(m, "PredictorFrame")
      .def("run", &run_frame, "a code-predictor frame: (codes, summed embeddings); see predictor_frame.h",
           pybind11::call_guard<pybind11::gil_scoped_release>());
  m.def("predictor_frame", &make_frame, "a PredictorFrame over a DecoderStack, heads and embeddings");
  m.def("sample", &sample, "one code from logits as a PredictorFrame samples");
  m.def("snake", &snake, "SnakeBeta in one pass (see snake.h)");
  m.def("conv_amx_available", &conv_amx_available, "whether the decoder's convolutions can run on AMX tiles");
  m.def("conv_amx_pack", &conv_amx_pack, "pack (out, in, taps) float32 weights for conv_amx_run");
  m.def("conv_amx_run", &conv_amx_run, "a time-major convolution on AMX bf16x3 tiles (conv_amx.h)",
        pybind11::call_guard<pybind11::gil_scoped_release>());
  m.def("set_threads", [](int threads) { qtts::ThreadPool::instance().set_threads(threads); },
        "threads of qtts's pool, the caller included (thread_pool.h)", pybind11::call_guard<pybind11::gil_scoped_release>());
  m.def("threads", []() { return qtts::ThreadPool::instance().threads(); }, "threads of qtts's pool");
}
