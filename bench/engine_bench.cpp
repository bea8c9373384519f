// The reference engine on the real-model layers of layer_shapes.json (Google Benchmark), per layer:
//   Gemm/<model>/<layer>    reference_torch_conv with ConvAlgorithm::gemm (PyTorch semantics, batch 1, float64)
//   Naive/<model>/<layer>   the same with ConvAlgorithm::naive: the baseline, measured in the same run
//   Verify/<model>/<layer>  verify_plan at the layer's input shape: what `convbridge translate` spends checking it
// Counters: multiply_adds per second (the layer's MACs, as items), gemm_speedup on the Naive rows is not computed
// here: compare the two rows' times (bench/README.md). Naive rows run only for layers up to kNaiveMultiplyAdds,
// since the naive loops take seconds per GMAC. Rows marked "bench" in the table by default; all with
// CONVBRIDGE_BENCH_ALL=1.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "convbridge/checked_math.hpp"
#include "convbridge/engine.hpp"
#include "convbridge/frontends.hpp"
#include "convbridge/planner.hpp"

namespace {

using namespace convbridge;

constexpr int64_t kNaiveMultiplyAdds = 400'000'000;

Tensor random_tensor(std::vector<int64_t> shape, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  Tensor t{std::move(shape), {}};
  t.data.resize(static_cast<size_t>(*checked_product(t.shape)));
  for (double& v : t.data) v = uniform(rng);
  return t;
}

struct Layer {
  std::string label;  // model/name
  Plan plan;
  Tensor input, weight;
  std::vector<double> bias;
  int64_t multiply_adds = 0;
};

int64_t multiply_adds_of(const ConvSpec& spec, const std::vector<int64_t>& input, const std::vector<int64_t>& out) {
  const int64_t taps = *checked_product(spec.kernel);
  if (spec.transposed) return *checked_product(input) * taps * (spec.out_channels / spec.groups);
  return *checked_product(out) * taps * (spec.in_channels / spec.groups);
}

void run_gemm(benchmark::State& state, const Layer* layer, ConvAlgorithm algorithm) {
  for (auto _ : state) {
    auto out = reference_torch_conv(layer->plan.source, layer->input, layer->weight, layer->bias, algorithm);
    if (!out) {
      state.SkipWithError(out.error().message.c_str());
      return;
    }
    benchmark::DoNotOptimize(out->data.data());
  }
  state.SetItemsProcessed(state.iterations() * layer->multiply_adds);
}

void run_verify(benchmark::State& state, const Layer* layer) {
  for (auto _ : state) {
    auto report = verify_plan(layer->plan, 0);
    if (!report || !report->passed()) {
      state.SkipWithError(report ? report->skipped_reason.c_str() : report.error().message.c_str());
      return;
    }
    benchmark::DoNotOptimize(report->cases.data());
  }
}

std::vector<Layer>& load_layers() {
  static std::vector<Layer> layers;
  std::ifstream file(CONVBRIDGE_LAYER_TABLE);
  const nlohmann::json table = nlohmann::json::parse(file);
  const char* all = std::getenv("CONVBRIDGE_BENCH_ALL");
  const bool every_row = all != nullptr && all[0] == '1';
  std::mt19937_64 rng(0);
  for (const nlohmann::json& row : table.at("layers")) {
    if (!every_row && !row.at("bench").get<bool>()) continue;
    const auto shape = row.at("input_shape").get<std::vector<int64_t>>();
    auto parsed = parse_pytorch_layer(row.at("layer").get<std::string>());
    auto plan = parsed ? plan_torch_to_tf(*parsed, shape) : Result<Plan>(parsed.error());
    if (!plan) throw std::runtime_error(row.dump() + ": " + plan.error().message);
    Layer layer{row.at("model").get<std::string>() + "/" + row.at("name").get<std::string>(), *plan, {}, {}, {}, 0};
    layer.input = random_tensor(shape, rng);
    layer.weight = random_tensor(torch_weight_shape(plan->source), rng);
    if (plan->source.bias) layer.bias = random_tensor({plan->source.out_channels}, rng).data;
    layer.multiply_adds = multiply_adds_of(plan->source, shape, *torch_conv_output_shape(plan->source, shape));
    layers.push_back(std::move(layer));
  }
  return layers;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::AddCustomContext("blas", CONVBRIDGE_BLAS_NAME);
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  benchmark::AddCustomContext("OPENBLAS_CORETYPE", coretype != nullptr ? coretype : "(unset)");
  for (const Layer& layer : load_layers()) {
    benchmark::RegisterBenchmark(("Gemm/" + layer.label).c_str(), run_gemm, &layer, ConvAlgorithm::gemm)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    if (layer.multiply_adds <= kNaiveMultiplyAdds) {
      benchmark::RegisterBenchmark(("Naive/" + layer.label).c_str(), run_gemm, &layer, ConvAlgorithm::naive)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->Iterations(1);
    }
    benchmark::RegisterBenchmark(("Verify/" + layer.label).c_str(), run_verify, &layer)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
