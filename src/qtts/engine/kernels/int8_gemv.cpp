// torch binding of qtts's int8 kernel (int8_gemv_core.h): one module per ISA variant, built by
// torch's extension loader with that variant's flags (see __init__.py).
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <vector>

#include "int8_gemv_core.h"

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
  TORCH_CHECK(w.scalar_type() == torch::kChar && w.is_contiguous(), "int8_gemv: w must be contiguous int8");
  TORCH_CHECK(row_sums.scalar_type() == torch::kInt && scale.scalar_type() == torch::kFloat, "int8_gemv: dtypes");
  TORCH_CHECK(row_sums.is_contiguous() && scale.is_contiguous(), "int8_gemv: row_sums/scale must be contiguous");
  const int64_t rows = x.size(0), k = x.size(1), n = scale.numel();
  TORCH_CHECK(row_sums.numel() == n, "int8_gemv: one sum and scale per row");
  TORCH_CHECK(w.numel() == qtts::packed_size(n, k), "int8_gemv: w is not the packed (N, K) weight");
  TORCH_CHECK(k > 0 && k % qtts::kKMultiple == 0, "int8_gemv: K must be a positive multiple of 64");
  TORCH_CHECK(x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kBFloat16,
              "int8_gemv: x must be float32 or bfloat16");
  const auto xf = x.to(torch::kFloat).contiguous();
  auto q = torch::empty({rows, k}, torch::kShort);
  auto xscale = torch::empty({rows}, torch::kFloat);
  std::vector<uint8_t> finite(rows);
  for (int64_t m = 0; m < rows; ++m)
    finite[m] = qtts::quantize_row(xf.data_ptr<float>() + m * k, k, q.data_ptr<int16_t>() + m * k,
                                   xscale.data_ptr<float>() + m);
  torch::Tensor hi, lo;
  qtts::Planes planes;
  if (qtts::needs_planes()) {
    hi = torch::empty({rows, k}, torch::kByte);
    lo = torch::empty({rows, k}, torch::kByte);
    planes = {hi.data_ptr<uint8_t>(), lo.data_ptr<uint8_t>()};
    qtts::prepare_rows(q.data_ptr<int16_t>(), rows, k, planes);
  }
  auto out = torch::empty({rows, n}, torch::kFloat);
  const qtts::Problem problem{w.data_ptr<int8_t>(), row_sums.data_ptr<int32_t>(), scale.data_ptr<float>(),
                              q.data_ptr<int16_t>(), planes, xscale.data_ptr<float>(), finite.data(),
                              rows, k, n, out.data_ptr<float>()};
  const int64_t blocks = (n + qtts::kRowBlock - 1) / qtts::kRowBlock;
  at::parallel_for(0, blocks, 8, [&](int64_t begin, int64_t end) {
    qtts::compute(problem, begin * qtts::kRowBlock, std::min(end * qtts::kRowBlock, n));
  });
  return x.scalar_type() == torch::kFloat ? out : out.to(x.scalar_type());
}

std::string variant() { return qtts::variant_name(); }

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("int8_gemv", &int8_gemv, "weight-only int8 matrix product with 16-bit activations");
  m.def("pack", &pack, "pack (N, K) int8 weights for int8_gemv");
  m.def("pack_width", []() { return qtts::kPackWidth; }, "inputs per packed step");
  m.def("variant", &variant, "the ISA variant this module was built for");
}
