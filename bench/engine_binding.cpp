// convbridge_bench: a small Python binding for bench/engine_vs_torch.py that times the reference engine and
// nothing else. A layer holds its plan and its random input, weight and bias as engine tensors (exported once to
// numpy for PyTorch to run on the same values), so that run() is reference_torch_conv alone: no copy of the input
// or the weight across the binding, as Plan.reference_forward makes. Built with -DCONVBRIDGE_BUILD_BENCHMARKS=ON
// -DCONVBRIDGE_BUILD_PYTHON=ON; never part of the package.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <random>

#if CONVBRIDGE_BENCH_OPENBLAS
#include <cblas.h>  // openblas_get_config, openblas_get_corename, openblas_get_num_threads
#endif

#include "convbridge/checked_math.hpp"
#include "convbridge/engine.hpp"
#include "convbridge/frontends.hpp"
#include "convbridge/planner.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using namespace convbridge;
using Array = nb::ndarray<nb::numpy, double>;

Array to_numpy(std::vector<double> values, const std::vector<int64_t>& shape) {
  auto* owned = new std::vector<double>(std::move(values));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<double>*>(p); });
  std::vector<size_t> dims(shape.begin(), shape.end());
  return Array(owned->data(), dims.size(), dims.data(), owner);
}

Tensor random_tensor(std::vector<int64_t> shape, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  Tensor t{std::move(shape), {}};
  t.data.resize(static_cast<size_t>(*checked_product(t.shape)));
  for (double& v : t.data) v = uniform(rng);
  return t;
}

struct EngineLayer {
  Plan plan;
  Tensor input, weight;
  std::vector<double> bias;

  EngineLayer(const std::string& text, const std::vector<int64_t>& input_shape, uint64_t seed) {
    auto layer = parse_pytorch_layer(text);
    if (!layer) throw nb::value_error(layer.error().message.c_str());
    auto planned = plan_torch_to_tf(*layer, input_shape);
    if (!planned) throw nb::value_error(planned.error().message.c_str());
    plan = std::move(*planned);
    std::mt19937_64 rng(seed);
    input = random_tensor(input_shape, rng);
    weight = random_tensor(torch_weight_shape(plan.source), rng);
    if (plan.source.bias) bias = random_tensor({plan.source.out_channels}, rng).data;
  }
};

}  // namespace

NB_MODULE(convbridge_bench, m) {
  m.doc() = "The reference engine on held tensors, for bench/engine_vs_torch.py.";
  m.def("blas_config", [] {
#if CONVBRIDGE_BENCH_OPENBLAS
    return std::string(openblas_get_config()) + ", core " + openblas_get_corename() + ", " +
           std::to_string(openblas_get_num_threads()) + " threads";
#else
    return std::string(CONVBRIDGE_BLAS_NAME);
#endif
  }, "The BLAS the engine runs on, as it describes itself.");
  nb::class_<EngineLayer>(m, "EngineLayer")
      .def(nb::init<const std::string&, const std::vector<int64_t>&, uint64_t>(), "layer"_a, "input_shape"_a,
           "seed"_a = 0)
      // Copies, for PyTorch to compute on the same values.
      .def("input", [](const EngineLayer& l) { return to_numpy(l.input.data, l.input.shape); })
      .def("weight", [](const EngineLayer& l) { return to_numpy(l.weight.data, l.weight.shape); })
      .def("bias", [](const EngineLayer& l) -> nb::object {
        if (l.bias.empty()) return nb::none();
        return nb::cast(to_numpy(l.bias, {static_cast<int64_t>(l.bias.size())}));
      })
      .def(
          "run",
          [](const EngineLayer& l) {
            auto out = reference_torch_conv(l.plan.source, l.input, l.weight, l.bias);
            if (!out) throw nb::value_error(out.error().message.c_str());
            return to_numpy(std::move(out->data), out->shape);
          },
          "reference_torch_conv (GEMM path) on the held tensors; the output as numpy, not copied.")
      .def(
          "verify",
          [](const EngineLayer& l) {
            auto report = verify_plan(l.plan, 0);
            if (!report) throw nb::value_error(report.error().message.c_str());
            return report->passed();
          },
          "verify_plan at the layer's input shape (what the CLI runs); whether it passed.");
}
