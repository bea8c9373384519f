// Weight re-layout (apply_layout_change_into) against std::memcpy of the same bytes, measured in the same run, for
// every layout pair convbridge uses, from cache-sized kernels to tensors over 100 MB; the simple reference loop at
// the sizes where it finishes in reasonable time. After Google Benchmark's own output it prints a Markdown table of
// the ratios (README, "Weight re-layout speed").
//
//   cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DCONVBRIDGE_BUILD_BENCHMARKS=ON
//   cmake --build build-bench --target convbridge_relayout_bench
//   build-bench/bench/convbridge_relayout_bench [--benchmark_filter=conv2d]
//
// Destinations are allocated and written once before timing, for memcpy and re-layout alike: what is measured is
// the copy, not the kernel's first touch of fresh pages (bench/relayout_vs_numpy.py measures that side, as Python
// callers see it).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "convbridge/checked_math.hpp"
#include "convbridge/weight_layout.hpp"

namespace convbridge {
namespace {

ConvSpec conv_spec(int64_t in, int64_t out, int64_t groups, std::vector<int64_t> kernel, bool transposed = false,
                   int64_t dilation = 1) {
  ConvSpec spec;
  spec.rank = static_cast<int>(kernel.size());
  spec.in_channels = in;
  spec.out_channels = out;
  spec.groups = groups;
  spec.dilation.assign(kernel.size(), dilation);
  spec.kernel = std::move(kernel);
  spec.transposed = transposed;
  return spec;
}

WeightLayoutChange permutation_change(std::vector<int64_t> shape, std::vector<int> permutation) {
  WeightLayoutChange change;
  change.from_layout = "source";
  change.to_layout = "permuted";
  change.from_shape = std::move(shape);
  change.permutation = std::move(permutation);
  for (const int axis : change.permutation) change.to_shape.push_back(change.from_shape[static_cast<size_t>(axis)]);
  return change;
}

struct Case {
  std::string pair;  // the layout pair, as the README table names it
  WeightLayoutChange change;
  bool with_reference;  // also time the reference loop (seconds per call at the largest sizes)
};

std::vector<Case> cases() {
  std::vector<Case> out;
  const auto conv2d = [](int64_t c) { return torch_conv_weight_to_tf_conv(conv_spec(c, c, 1, {3, 3})); };
  for (const int64_t c : {64, 512, 2048}) out.push_back({"OIHW->HWIO", conv2d(c), c <= 512 || c == 2048});
  for (const int64_t c : {64, 512, 2048}) {
    const WeightLayoutChange forward = conv2d(c);
    out.push_back({"HWIO->OIHW", keras_kernel_to_torch(2, forward.to_shape, "HWIO", "OIHW"), c == 512});
  }
  for (const int64_t c : {4096, 262144, 1 << 20}) {  // depthwise, multiplier 4
    out.push_back({"depthwise OIHW->HWCM", torch_conv_weight_to_tf_depthwise(conv_spec(c, 4 * c, c, {3, 3})),
                   c == 262144});
  }
  for (const int64_t c : {64, 512, 2048}) {
    out.push_back({"transposed IOHW->HWOI",
                   torch_conv_transpose_weight_to_tf(conv_spec(c, c, 1, {3, 3}, true), {0, 0}), c == 512});
  }
  for (const int64_t c : {64, 512, 1024}) {  // dilation 2: the kernel spreads to 5x5 with zero taps between
    out.push_back({"transposed dilated IOHW->HWOI",
                   torch_conv_transpose_weight_to_tf(conv_spec(c, c, 1, {3, 3}, true, 2), {0, 0}), c == 512});
  }
  for (const auto& [o, i] : std::vector<std::pair<int64_t, int64_t>>{{256, 256}, {2048, 2048}, {8192, 4096}}) {
    out.push_back({"Linear (out,in)->(in,out)", permutation_change({o, i}, {1, 0}), o == 2048});
  }
  for (const int64_t c : {32, 256, 1024}) {
    out.push_back({"OIDHW->DHWIO", torch_conv_weight_to_tf_conv(conv_spec(c, c, 1, {3, 3, 3})), c == 256});
  }
  for (const int64_t n : {4, 12, 24}) {  // an arbitrary rank-5 permutation
    out.push_back({"rank-5 (2,0,4,1,3)", permutation_change({n, 2 * n, n, n, 3 * n}, {2, 0, 4, 1, 3}), n == 12});
  }
  return out;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ',';  // appended piece by piece: GCC 12's -Wrestrict misfires on "," + std::string at -O3
    out += std::to_string(shape[i]);
  }
  return out + ")";
}

// The buffers of one case, written once so that no page fault falls inside the timing.
template <class T>
struct Buffers {
  std::vector<T> source;
  std::vector<T> destination;
  explicit Buffers(const WeightLayoutChange& change)
      : source(static_cast<size_t>(*checked_product(change.from_shape))),
        destination(static_cast<size_t>(*layout_change_output_size(change))) {
    std::iota(source.begin(), source.end(), T(0));
  }
};

template <class T>
void register_case(const Case& c, const std::string& dtype) {
  const std::string shape = shape_text(c.change.from_shape);
  const std::string suffix = c.pair + "/" + dtype + "/" + shape;
  const auto bytes = static_cast<int64_t>(*checked_product(c.change.from_shape) * static_cast<int64_t>(sizeof(T)));
  benchmark::RegisterBenchmark(("relayout/" + suffix).c_str(), [c, bytes](benchmark::State& state) {
    Buffers<T> buffers(c.change);
    for (auto _ : state) {
      apply_layout_change_into<T>(c.change, buffers.source, buffers.destination);
      benchmark::DoNotOptimize(buffers.destination.data());
      benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * bytes);
  })->UseRealTime()->Unit(benchmark::kMillisecond);
  // memcpy of exactly the source's bytes: the bandwidth a re-layout of this size could at best reach.
  benchmark::RegisterBenchmark(("memcpy/" + suffix).c_str(), [bytes](benchmark::State& state) {
    std::vector<char> from(static_cast<size_t>(bytes), 1), to(static_cast<size_t>(bytes), 0);
    for (auto _ : state) {
      std::memcpy(to.data(), from.data(), from.size());
      benchmark::DoNotOptimize(to.data());
      benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * bytes);
  })->UseRealTime()->Unit(benchmark::kMillisecond);
  if (c.with_reference) {
    benchmark::RegisterBenchmark(("reference/" + suffix).c_str(), [c, bytes](benchmark::State& state) {
      Buffers<T> buffers(c.change);
      for (auto _ : state) {
        std::vector<T> out = reference_apply_layout_change<T>(c.change, buffers.source);
        benchmark::DoNotOptimize(out.data());
      }
      state.SetBytesProcessed(state.iterations() * bytes);
    })->UseRealTime()->Unit(benchmark::kMillisecond);
  }
}

// Google Benchmark's console output, then one Markdown row per case: relayout / memcpy and relayout / reference.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred || run.run_type != Run::RT_Iteration) continue;
      std::string name = run.benchmark_name();
      const std::string timing_suffix = "/real_time";  // Google Benchmark's mark of UseRealTime()
      if (name.size() > timing_suffix.size() && name.ends_with(timing_suffix)) {
        name.resize(name.size() - timing_suffix.size());
      }
      const auto slash = name.find('/');
      const auto rate = run.counters.find("bytes_per_second");
      if (rate == run.counters.end()) continue;
      rates_[name.substr(slash + 1)][name.substr(0, slash)] = rate->second.value;
      if (std::find(order_.begin(), order_.end(), name.substr(slash + 1)) == order_.end()) {
        order_.push_back(name.substr(slash + 1));
      }
    }
  }

  void Finalize() override {
    ConsoleReporter::Finalize();
    std::cout << "\n| layout pair | dtype | source shape | MB | re-layout GB/s | memcpy GB/s | re-layout / memcpy "
                 "| reference GB/s | speed-up over reference |\n|---|---|---|---:|---:|---:|---:|---:|---:|\n";
    for (const std::string& key : order_) {
      std::map<std::string, double>& rate = rates_[key];
      // key is "<pair>/<dtype>/<shape>"; the pair itself has no '/'.
      const auto first = key.find('/');
      const auto second = key.find('/', first + 1);
      const std::string shape = key.substr(second + 1);
      int64_t elements = 1;
      for (size_t at = 1; at < shape.size();) {
        const size_t end = shape.find_first_of(",)", at);
        elements *= std::stoll(shape.substr(at, end - at));
        at = end + 1;
      }
      const double megabytes = static_cast<double>(elements) * (key.substr(first + 1, second - first - 1) == "float64" ? 8 : 4) / 1e6;
      char line[512];
      const double relayout = rate["relayout"] / 1e9;
      const double memcpy_rate = rate["memcpy"] / 1e9;
      std::snprintf(line, sizeof line, "| %s | %s | %s | %.1f | %.2f | %.2f | %.2f |", key.substr(0, first).c_str(),
                    key.substr(first + 1, second - first - 1).c_str(), shape.c_str(), megabytes, relayout, memcpy_rate,
                    memcpy_rate > 0 ? relayout / memcpy_rate : 0.0);
      std::cout << line;
      if (rate.count("reference")) {
        std::snprintf(line, sizeof line, " %.2f | %.1f |", rate["reference"] / 1e9, rate["relayout"] / rate["reference"]);
        std::cout << line << "\n";
      } else {
        std::cout << " | |\n";
      }
    }
  }

 private:
  std::map<std::string, std::map<std::string, double>> rates_;
  std::vector<std::string> order_;
};

}  // namespace
}  // namespace convbridge

int main(int argc, char** argv) {
  using namespace convbridge;
  for (const Case& c : cases()) register_case<float>(c, "float32");
  // float64: the reference engine's precision, at the size of the float32 kernel in bytes.
  register_case<double>({"OIHW->HWIO", torch_conv_weight_to_tf_conv(conv_spec(1024, 2048, 1, {3, 3})), false}, "float64");
  register_case<double>({"HWIO->OIHW", keras_kernel_to_torch(2, {3, 3, 1024, 2048}, "HWIO", "OIHW"), false}, "float64");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
