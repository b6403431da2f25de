// torch binding of qtts's native code: the int8 kernel (int8_gemv_core.h) and the fused
// decoder step built on it (decoder_step.h).  One module per ISA variant, built by torch's
// extension loader with that variant's flags (see __init__.py).
#include <torch/extension.h>

#include <string>
#include <vector>

#include "decoder_step.h"
#include "int8_gemv_core.h"
#include "snake.h"

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
    at::parallel_for(0, batch * time, 256, [&](int64_t first, int64_t last) {
      for (int64_t row = first; row < last; ++row) qtts::snake_channels(xp + row * channels, a, b, channels, yp + row * channels);
    });
  } else {
    at::parallel_for(0, batch * channels, 1, [&](int64_t first, int64_t last) {
      for (int64_t row = first; row < last; ++row)
        qtts::snake_run(xp + row * time, a[row % channels], b[row % channels], time, yp + row * time);
    });
  }
  return out;
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
  m.def("snake", &snake, "SnakeBeta in one pass (see snake.h)");
}
