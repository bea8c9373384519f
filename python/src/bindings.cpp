// convbridge._impl: marshalling only. Library errors (Result values) become ValueError here, at the Python
// boundary; arrays come in as zero-copy views (numpy, or torch tensors through DLPack) and go out as numpy arrays
// that own their buffer through a capsule. Weight re-layout reads the caller's array in place and writes straight
// into the buffer numpy then owns: the only pass over the data is the re-layout itself.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/string_view.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <new>
#include <span>

#include "cli.hpp"
#include "convbridge/emit.hpp"
#include "convbridge/engine.hpp"
#include "convbridge/frontends.hpp"
#include "convbridge/io/keras_weights.hpp"
#include "convbridge/io/weights.hpp"
#include "convbridge/layer_plan.hpp"
#include "convbridge/model/graph.hpp"
#include "convbridge/model/keras_model.hpp"
#include "convbridge/model/torch_model.hpp"
#include "convbridge/checked_math.hpp"
#include "convbridge/planner.hpp"
#include "convbridge/port/weight_port.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace convbridge {
namespace {

template <class T>
T unwrap(Result<T> result) {
  if (!result) throw nb::value_error(result.error().message.c_str());
  return std::move(result).value();
}

template <class T>
using InputArray = nb::ndarray<const T, nb::c_contig, nb::device::cpu>;
template <class T>
using OutputArray = nb::ndarray<nb::numpy, T>;

template <class T>
std::vector<int64_t> shape_of(const InputArray<T>& array) {
  std::vector<int64_t> shape;
  for (size_t i = 0; i < array.ndim(); ++i) shape.push_back(static_cast<int64_t>(array.shape(i)));
  return shape;
}

// Hands a vector to numpy without copying it: the capsule owns it.
template <class T>
OutputArray<T> to_numpy(std::vector<T> values, const std::vector<int64_t>& shape) {
  auto* owned = new std::vector<T>(std::move(values));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  std::vector<size_t> dims(shape.begin(), shape.end());
  return OutputArray<T>(owned->data(), dims.size(), dims.data(), owner);
}

// A result buffer that is never zero-filled (std::vector would write every element once before the re-layout
// writes it again: a second pass over 151 MB for a (2048, 2048, 3, 3) kernel). From 32 MiB on it is 2 MiB-aligned
// and asks for transparent huge pages (madvise(MADV_HUGEPAGE)), as numpy does for its own large arrays (numpy's
// docs, "Madvise Hugepage on Linux": the default on kernels >= 4.6 where THP is in madvise mode): the re-layout then
// takes one page fault per 2 MiB of fresh memory instead of one per 4 KiB (README "Weight re-layout speed").
// Below 32 MiB (glibc's largest dynamic mmap threshold on 64-bit) malloc hands back heap memory that earlier
// results already faulted in; advising huge pages there measured 2-5x slower (a fault and a compaction per call).
template <class T>
struct OutputBuffer {
  T* data = nullptr;
  void (*release)(void*) noexcept = nullptr;  // how numpy's capsule frees it: std::free or delete[]
};

template <class T>
OutputBuffer<T> allocate_output(size_t count) {
  constexpr size_t kHugePage = size_t{2} << 20;
  const size_t bytes = count * sizeof(T);  // checked by layout_change_output_size
  if (bytes >= (size_t{32} << 20)) {
    const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    void* memory = std::aligned_alloc(kHugePage, rounded);
    if (!memory) throw std::bad_alloc();
    ::madvise(memory, rounded, MADV_HUGEPAGE);  // advice only: ignored where THP is off
    return {static_cast<T*>(memory), [](void* p) noexcept { std::free(p); }};
  }
  // Default-initialized, so not zero-filled.
  return {new T[std::max<size_t>(count, 1)], [](void* p) noexcept { delete[] static_cast<T*>(p); }};
}

// Hands such a buffer to numpy without copying it: the capsule owns it from here on.
template <class T>
OutputArray<T> to_numpy(OutputBuffer<T> values, const std::vector<int64_t>& shape) {
  nb::capsule owner(values.data, values.release);
  std::vector<size_t> dims(shape.begin(), shape.end());
  return OutputArray<T>(values.data, dims.size(), dims.data(), owner);
}

template <class T>
std::span<const T> values_of(const InputArray<T>& array) {
  return std::span<const T>(array.data(), array.size());
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + (shape.size() == 1 ? ",)" : ")");
}

// Moves a weight's elements into the layout `change` describes; the shape must be change.from_shape.
template <class T>
OutputArray<T> convert_with(const WeightLayoutChange& change, const InputArray<T>& weight) {
  if (shape_of(weight) != change.from_shape) {
    throw nb::value_error(("weight has shape " + shape_text(shape_of(weight)) + "; expected " +
                           shape_text(change.from_shape) + " (layout " + change.from_layout + ")")
                              .c_str());
  }
  const int64_t count = unwrap(layout_change_output_size(change));
  OutputBuffer<T> converted = allocate_output<T>(static_cast<size_t>(count));
  {
    // The copy touches no Python object: other Python threads run meanwhile (the caller holds `weight`).
    nb::gil_scoped_release released;
    apply_layout_change_into<T>(change, values_of(weight), std::span<T>(converted.data, static_cast<size_t>(count)));
  }
  return to_numpy(std::move(converted), change.to_shape);
}

// PyTorch weight (O, I/G, *k) -> the kernel the plan's convolution reads, element for element.
template <class T>
OutputArray<T> convert_kernel(const Plan& plan, const InputArray<T>& weight) {
  return convert_with(plan.kernel_layout, weight);
}

const WeightLayoutChange& torch_conv_layout(const TorchPlan& plan, size_t step) {
  size_t seen = 0;
  for (const TorchPlanStep& s : plan.steps) {
    if (const auto* conv = std::get_if<TorchConvStep>(&s.op)) {
      if (seen++ == step) return conv->layout;
    }
  }
  throw nb::index_error("the plan has no such convolution step");
}

Tensor to_tensor(const InputArray<double>& array) {
  return Tensor{shape_of(array), std::vector<double>(array.data(), array.data() + array.size())};
}

std::vector<double> bias_values(const std::optional<InputArray<double>>& bias) {
  if (!bias) return {};
  return std::vector<double>(bias->data(), bias->data() + bias->size());
}

nb::dict verification_dict(const VerificationReport& report) {
  nb::list cases;
  for (const VerificationCase& c : report.cases) {
    nb::dict item;
    item["input_shape"] = c.input_shape;
    item["output_shape"] = c.output_shape;
    item["shapes_match"] = c.shapes_match;
    item["max_abs_diff"] = c.max_abs_diff;
    cases.append(item);
  }
  nb::dict out;
  out["passed"] = report.passed();
  out["seed"] = report.seed;
  out["cases"] = cases;
  out["skipped_reason"] = report.skipped_reason;
  out["summary"] = describe_verification(report);
  return out;
}

// A source weight (the source framework's layout) -> every target step's weights, in the target's order.
template <class T>
std::vector<std::vector<OutputArray<T>>> layer_target_weights(const LayerPlan& plan,
                                                              const std::vector<InputArray<T>>& source) {
  if (source.size() != plan.source_weights.size()) {
    throw nb::value_error(("the layer has " + std::to_string(plan.source_weights.size()) + " weights, got " +
                           std::to_string(source.size()))
                              .c_str());
  }
  // In the caller's precision throughout: elements are only moved, so float32 stays float32 without a round trip
  // through float64 (which would also quiet signalling NaNs).
  std::vector<std::vector<T>> neutral(plan.weights.size());
  for (size_t i = 0; i < source.size(); ++i) {
    const FrameworkWeight& w = plan.source_weights[i];
    const auto& expected = w.from_neutral.to_shape;
    if (std::any_of(expected.begin(), expected.end(), [](int64_t v) { return v <= 0; })) {
      throw nb::value_error(("the plan does not know the channel count of weight '" + w.name +
                             "': translate with input_shape giving the channels, or a built layer")
                                .c_str());
    }
    if (shape_of(source[i]) != expected) {
      throw nb::value_error(("weight '" + w.name + "' has shape " + shape_text(shape_of(source[i])) +
                             "; expected " + shape_text(w.from_neutral.to_shape))
                                .c_str());
    }
    if (w.neutral_index < 0) continue;
    neutral.at(static_cast<size_t>(w.neutral_index)) = source_weight_to_neutral(plan, i, values_of(source[i]));
  }
  std::vector<std::vector<OutputArray<T>>> out;
  for (const TargetStep& step : plan.steps) {
    std::vector<OutputArray<T>> arrays;
    for (const FrameworkWeight& w : step.weights) {
      std::vector<T> values;
      if (w.neutral_index < 0) {
        const auto count = checked_product(w.from_neutral.to_shape);
        if (!count) throw nb::value_error(("weight '" + w.name + "' has more elements than fit in 64 bits").c_str());
        values.assign(static_cast<size_t>(*count), static_cast<T>(w.fill));
      } else {
        values = neutral_to_target_weight(w, neutral.at(static_cast<size_t>(w.neutral_index)));
      }
      arrays.push_back(to_numpy(std::move(values), w.from_neutral.to_shape));
    }
    out.push_back(std::move(arrays));
  }
  return out;
}

std::string layer_plan_repr(const LayerPlan& plan) {
  return "<convbridge.LayerPlan " + plan.source.text + " -> " + std::string(framework_name(plan.target)) +
         (plan.exact_for_every_input_size ? ", exact for every input size>" : ", exact for its input shape>");
}


// ---- whole models ----

// {parameter name: values} and their shapes, from {parameter name: array} (float32/64). The model planners convert
// in float64: a float64 array is read in place (the dict keeps it alive for the call), a float32 one is widened
// (exactly) into `widened`.
struct ParameterValues {
  std::map<std::string, std::span<const double>> values;
  std::map<std::string, std::vector<int64_t>> shapes;
  std::map<std::string, std::vector<double>> widened;
  std::vector<InputArray<double>> held;  // the arrays `values` reads (a cast may have made a contiguous copy)
};
ParameterValues parameter_values(const nb::dict& parameters) {
  ParameterValues out;
  for (const auto& [key, value] : parameters) {
    const std::string name = nb::cast<std::string>(key);
    if (nb::isinstance<InputArray<double>>(value)) {
      const auto& array = out.held.emplace_back(nb::cast<InputArray<double>>(value));
      out.values[name] = values_of(array);
      out.shapes[name] = shape_of(array);
    } else {
      const auto array = nb::cast<InputArray<float>>(value);
      std::vector<double>& widened = out.widened[name];
      widened.assign(array.data(), array.data() + array.size());
      out.values[name] = widened;
      out.shapes[name] = shape_of(array);
    }
  }
  return out;
}

// One target weight as a float32 array, from the parameter it reads (checked against the shape it expects).
template <typename Convert>
OutputArray<float> target_weight_array(const model::TargetWeight& weight, const ParameterValues& parameters,
                               const Convert& convert) {
  std::vector<double> converted;
  std::vector<int64_t> shape;
  if (weight.constant) {
    converted = convert(weight, std::span<const double>{});
    shape = weight.shape;
  } else {
    const auto it = parameters.values.find(weight.parameter);
    if (it == parameters.values.end()) throw nb::value_error(("no value for parameter " + weight.parameter).c_str());
    const std::vector<int64_t>& given = parameters.shapes.at(weight.parameter);
    if (given != weight.change.from_shape) {
      throw nb::value_error(("parameter " + weight.parameter + " has shape " + shape_text(given) +
                             (weight.layer_plan < 0 ? "; expected " : "; the layer expects ") +
                             shape_text(weight.change.from_shape)).c_str());
    }
    shape = model::target_weight_shape(weight);
    converted = convert(weight, it->second);
  }
  std::vector<float> narrowed(converted.begin(), converted.end());
  return to_numpy(std::move(narrowed), shape);
}

// {"<layer name>/<index>": float32 array} for every target weight, from {parameter name: array} (float32/64).
nb::dict model_target_weights(const model::KerasModelPlan& plan, const nb::dict& parameters) {
  const ParameterValues values = parameter_values(parameters);
  const auto convert = [&](const model::TargetWeight& w, std::span<const double> v) {
    return model::convert_target_weight(plan, w, v);
  };
  nb::dict out;
  for (const model::TargetLine& line : plan.lines) {
    for (size_t i = 0; i < line.weights.size(); ++i) {
      out[nb::str((line.layer_name + "/" + std::to_string(i)).c_str())] =
          target_weight_array(line.weights[i], values, convert);
    }
  }
  return out;
}

// The state_dict ({key: float32 array}) from {parameter name: array}; constants of the Keras config are the plan's.
nb::dict torch_model_state(const model::TorchModelPlan& plan, const nb::dict& parameters) {
  ParameterValues values = parameter_values(parameters);
  for (const auto& [name, constant] : plan.constants) {
    values.values[name] = constant;  // the plan outlives the call
    values.shapes[name] = {static_cast<int64_t>(constant.size())};
  }
  const auto convert = [&](const model::TargetWeight& w, std::span<const double> v) {
    return model::convert_torch_weight(plan, w, v);
  };
  nb::dict out;
  for (const model::TorchAttribute& attribute : plan.attributes) {
    for (const model::TargetWeight& weight : attribute.weights) {
      out[nb::str(weight.name.c_str())] = target_weight_array(weight, values, convert);
    }
  }
  return out;
}

template <typename ModelPlan>
nb::list model_tensors(const ModelPlan& plan) {
  nb::list out;
  for (const model::TensorPlacement& t : plan.tensors) {
    nb::dict item;
    item["tensor"] = t.tensor;
    item["variable"] = t.variable;
    item["source_shape"] = t.source_shape;
    item["perm"] = t.layout.perm;
    item["view_shape"] = t.layout.view_shape;
    out.append(item);
  }
  return out;
}

template <typename ModelPlan>
nb::list model_nodes(const ModelPlan& plan) {
  nb::list out;
  for (const model::NodeReport& n : plan.nodes) {
    nb::dict item;
    item["node"] = n.node;
    item["source_op"] = n.source_op;
    item["origin"] = n.origin;
    item["target"] = n.target;
    item["why"] = n.why;
    item["outputs"] = n.outputs;
    item["inputs"] = n.inputs;
    item["module"] = n.module;
    out.append(item);
  }
  return out;
}

}  // namespace
}  // namespace convbridge

NB_MODULE(_impl, m) {
  using namespace convbridge;
  m.doc() = "convbridge's C++ core. Use the convbridge package, which wraps this module.";

  nb::class_<Plan>(m, "Plan", "An exact PyTorch -> TensorFlow/Keras translation plan.")
      .def("explain", nb::overload_cast<const Plan&>(&explain_plan), "Per-side padding in both frameworks, output shapes, each step and why.")
      .def("keras_code", nb::overload_cast<const Plan&>(&emit_keras), "Keras 3 source defining make_layer(weight, bias=None).")
      .def("tf_code", nb::overload_cast<const Plan&>(&emit_tf_nn), "tf.nn source defining conv(x, weight, bias=None) for channels_last x.")
      .def("to_json", [](const Plan& plan) { return emit_json(plan); }, "The plan as JSON (schema in the README).")
      .def(
          "output_shape",
          [](const Plan& plan, const std::vector<int64_t>& input_shape) {
            return unwrap(torch_conv_output_shape(plan.source, input_shape));
          },
          "input_shape"_a, "PyTorch output shape (N, C_out, *spatial) for a PyTorch input shape (N, C_in, *spatial).")
      .def_prop_ro("exact_for_every_input_size", [](const Plan& plan) { return plan.exact_for_every_input_size; })
      .def_prop_ro("input_shape", [](const Plan& plan) { return plan.input_shape; })
      .def_prop_ro("source_text", [](const Plan& plan) { return plan.source_text; })
      .def_prop_ro("has_bias", [](const Plan& plan) { return plan.source.bias; })
      .def_prop_ro("kernel_shape", [](const Plan& plan) { return plan.kernel_layout.to_shape; })
      .def(
          "verify", [](const Plan& plan, uint64_t seed) { return verification_dict(unwrap(verify_plan(plan, seed))); },
          "seed"_a = 0, "Checks the plan against PyTorch semantics with the float64 reference engine.")
      .def("convert_kernel", &convert_kernel<float>, "weight"_a,
           "PyTorch-layout weight -> the target kernel layout, bit for bit.")
      .def("convert_kernel", &convert_kernel<double>, "weight"_a)
      .def(
          "reference_forward",
          [](const Plan& plan, const InputArray<double>& x, const InputArray<double>& weight,
             const std::optional<InputArray<double>>& bias) {
            Tensor y = unwrap(reference_torch_conv(plan.source, to_tensor(x), to_tensor(weight), bias_values(bias)));
            return to_numpy(std::move(y.data), y.shape);
          },
          "x"_a, "weight"_a, "bias"_a.none() = nb::none(),
          "PyTorch semantics in float64 (reference engine): x (N, C, *spatial), weight (O, I/G, *k).")
      .def(
          "reference_run_plan",
          [](const Plan& plan, const InputArray<double>& x, const InputArray<double>& kernel,
             const std::optional<InputArray<double>>& bias) {
            Tensor y = unwrap(run_tf_plan(plan, to_tensor(x), to_tensor(kernel), bias_values(bias)));
            return to_numpy(std::move(y.data), y.shape);
          },
          "x"_a, "kernel"_a, "bias"_a.none() = nb::none(),
          "Executes the plan with TF semantics in float64 (reference engine): channels_last x, converted kernel.")
      .def("__repr__", [](const Plan& plan) {
        return "<convbridge.Plan " + plan.source_text +
               (plan.exact_for_every_input_size ? ", exact for every input size>" : ", exact for its input shape>");
      });

  nb::class_<TorchPlan>(m, "TorchPlan", "An exact TensorFlow/Keras -> PyTorch translation plan.")
      .def("explain", nb::overload_cast<const TorchPlan&>(&explain_plan),
           "The Keras layer's padding and shapes, each PyTorch step and why, the weight transforms.")
      .def("torch_code", nb::overload_cast<const TorchPlan&>(&emit_torch), "PyTorch source defining make_module(<Keras weights>, bias=None).")
      .def("to_json", [](const TorchPlan& plan) { return emit_json(plan); }, "The plan as JSON (schema in the README).")
      .def(
          "output_shape",
          [](const TorchPlan& plan, const std::vector<int64_t>& input_shape) {
            return unwrap(tf_steps_output_shape(plan.source_steps, input_shape));
          },
          "input_shape"_a, "Keras output shape (N, *spatial, C) for a channels_last input shape.")
      .def_prop_ro("exact_for_every_input_size", [](const TorchPlan& plan) { return plan.exact_for_every_input_size; })
      .def_prop_ro("input_shape", [](const TorchPlan& plan) { return plan.input_shape; })
      .def_prop_ro("source_text", [](const TorchPlan& plan) { return plan.source.text; })
      .def_prop_ro("weight_names", [](const TorchPlan& plan) { return plan.weight_names; })
      .def_prop_ro("warnings", [](const TorchPlan& plan) { return plan.warnings; },
                   "Likely mistakes in what was given, e.g. a PyTorch-layout input shape for a Keras layer.")
      .def(
          "verify", [](const TorchPlan& plan, uint64_t seed) { return verification_dict(unwrap(verify_plan(plan, seed))); },
          "seed"_a = 0, "Checks the plan against Keras semantics with the float64 reference engine.")
      .def(
          "torch_weight",
          [](const TorchPlan& plan, size_t step, const InputArray<float>& keras_weight) {
            return convert_with(torch_conv_layout(plan, step), keras_weight);
          },
          "step"_a, "keras_weight"_a, "The Keras weight the step-th PyTorch module takes, in its layout, bit for bit.")
      .def(
          "torch_weight",
          [](const TorchPlan& plan, size_t step, const InputArray<double>& keras_weight) {
            return convert_with(torch_conv_layout(plan, step), keras_weight);
          },
          "step"_a, "keras_weight"_a)
      .def("__repr__", [](const TorchPlan& plan) {
        return "<convbridge.TorchPlan " + plan.source.text +
               (plan.exact_for_every_input_size ? ", exact for every input size>" : ", exact for its input shape>");
      });

  nb::class_<model::KerasModelPlan>(m, "KerasModelPlan",
                                    "A whole PyTorch model planned for Keras 3 (channels_last end to end).")
      .def_ro("model_name", &model::KerasModelPlan::model_name)
      .def_ro("runtime_transposes", &model::KerasModelPlan::runtime_transposes,
              "Transposes the Keras model runs (only where the source moves data across axes).")
      .def_ro("output_tensors", &model::KerasModelPlan::output_tensors)
      .def_ro("output_variables", &model::KerasModelPlan::output_variables)
      .def("explain", &model::explain_keras_model, "Per node: source op, module and line, what it became, why.")
      .def("keras_source", &model::emit_keras_model_source, "model.py: build_model(), load_weights(), load_model().")
      .def("target_weights", &model_target_weights, "parameters"_a,
           "{parameter name: array} -> {'<layer name>/<index>': float32 array} in the Keras layouts.")
      .def("tensors", &model_tensors<model::KerasModelPlan>,
           "Every source tensor's variable in the source and its target layout.")
      .def("nodes", &model_nodes<model::KerasModelPlan>, "Per node: what it became and why.");
  nb::class_<model::TorchModelPlan>(m, "TorchModelPlan",
                                    "A whole Keras model planned for PyTorch (channels_first end to end).")
      .def_ro("model_name", &model::TorchModelPlan::model_name)
      .def_ro("class_name", &model::TorchModelPlan::class_name)
      .def_ro("runtime_transposes", &model::TorchModelPlan::runtime_transposes,
              "Transposes the PyTorch module runs (only where Keras moves data across the channel axis).")
      .def_ro("input_variables", &model::TorchModelPlan::input_variables)
      .def_ro("output_tensors", &model::TorchModelPlan::output_tensors)
      .def_ro("output_variables", &model::TorchModelPlan::output_variables)
      .def("explain", &model::explain_torch_model, "Per node: the Keras layer, what it became, why.")
      .def("torch_source", &model::emit_torch_model_source, "model.py: the nn.Module class and load_model().")
      .def("state_dict", &torch_model_state, "parameters"_a,
           "{'<layer path>/<weight name>': array} -> the module's state_dict as float32 arrays.")
      .def("tensors", &model_tensors<model::TorchModelPlan>,
           "Every Keras tensor's variable in forward and its PyTorch layout.")
      .def("nodes", &model_nodes<model::TorchModelPlan>, "Per node: what it became and why.");
  m.def(
      "plan_keras_model",
      [](const std::string& model_json) {
        const model::ModelGraph graph = unwrap(model::parse_keras_model_config(model_json));
        return unwrap(model::plan_torch_model(graph));
      },
      "model_json"_a, "Plans a Keras model (convbridge._keras_capture's JSON: its config and weight shapes) for PyTorch.");
  m.def(
      "plan_torch_model",
      [](const std::string& graph_json) {
        const model::ModelGraph graph = unwrap(model::parse_torch_export_graph(graph_json));
        return unwrap(model::plan_keras_model(graph));
      },
      "graph_json"_a, "Plans a captured PyTorch model (convbridge._capture's JSON) for Keras 3.");

  nb::class_<LayerPlan>(m, "LayerPlan",
                        "An exact translation plan for a pooling, normalization, resizing, padding, pixel shuffle or "
                        "activation layer, PyTorch -> Keras or Keras/TensorFlow -> PyTorch.")
      .def("explain", nb::overload_cast<const LayerPlan&>(&explain_plan), "What the layer computes, each step and why.")
      .def("keras_code", nb::overload_cast<const LayerPlan&>(&emit_keras),
           "Keras 3 source defining make_layer(<PyTorch weights>=None) (PyTorch sources only).")
      .def("tf_code", nb::overload_cast<const LayerPlan&>(&emit_tf_nn),
           "TensorFlow source defining layer(x, <PyTorch weights>=None) for channels_last x (PyTorch sources only).")
      .def("torch_code", nb::overload_cast<const LayerPlan&>(&emit_torch),
           "PyTorch source defining make_module(<Keras weights>=None) (Keras/TensorFlow sources only).")
      .def("to_json", [](const LayerPlan& plan) { return emit_json(plan); }, "The plan as JSON.")
      .def_prop_ro("exact_for_every_input_size", [](const LayerPlan& plan) { return plan.exact_for_every_input_size; })
      .def_prop_ro("input_shape", [](const LayerPlan& plan) { return plan.input_shape; })
      .def_prop_ro("source_text", [](const LayerPlan& plan) { return plan.source.text; })
      .def_prop_ro("source_framework", [](const LayerPlan& plan) { return std::string(framework_name(plan.source.framework)); })
      .def_prop_ro("target_framework", [](const LayerPlan& plan) { return std::string(framework_name(plan.target)); })
      .def_prop_ro("source_weight_names", [](const LayerPlan& plan) {
        std::vector<std::string> names;
        for (const FrameworkWeight& w : plan.source_weights) names.push_back(w.name);
        return names;
      })
      .def_prop_ro("warnings", [](const LayerPlan& plan) { return plan.warnings; })
      .def_prop_ro("notes", [](const LayerPlan& plan) { return plan.notes; })
      .def(
          "verify", [](const LayerPlan& plan, uint64_t seed) { return verification_dict(unwrap(verify_plan(plan, seed))); },
          "seed"_a = 0, "Checks the plan against the source layer's semantics with the float64 reference engine.")
      .def("target_weights", &layer_target_weights<float>, "source_weights"_a,
           "The source layer's weights (its own names' order and layouts) -> each step's weights in the target's "
           "order and layouts, bit for bit.")
      .def("target_weights", &layer_target_weights<double>, "source_weights"_a)
      .def(
          "reference_forward",
          [](const LayerPlan& plan, const InputArray<double>& x, const std::vector<InputArray<double>>& weights) {
            std::vector<Tensor> tensors;
            for (const auto& w : weights) tensors.push_back(to_tensor(w));
            Tensor y = unwrap(run_op(plan.source.op, to_tensor(x), tensors));
            return to_numpy(std::move(y.data), y.shape);
          },
          "x"_a, "weights"_a = std::vector<InputArray<double>>{},
          "The source op in float64 on a channels_first x, with its neutral weights (reference engine).")
      .def("__repr__", &layer_plan_repr);

  const auto names_op = [](const std::string& text) { return names_op_layer(text); };
  m.def("names_op_layer", names_op, "text"_a, "Whether the text names a pooling/normalization/resizing/padding/"
        "pixel shuffle/activation layer of PyTorch, Keras or TensorFlow.");
  m.def(
      "names_op_layer", [](const nb::bytes& text) { return names_op_layer(std::string(text.c_str(), text.size())); },
      "text"_a);
  const auto plan_op = [](const std::string& text, const std::optional<std::vector<int64_t>>& input_shape,
                          int64_t channels) {
    const OpLayer layer = unwrap(parse_op_layer(text));
    std::optional<std::vector<int64_t>> shape = input_shape;
    if (!shape && !layer.declared_input_shape.empty()) {  // Keras input_shape=(H, W, C): the batch is unknown
      shape = std::vector<int64_t>{kUnknownSize};
      shape->insert(shape->end(), layer.declared_input_shape.begin(), layer.declared_input_shape.end());
    }
    return unwrap(plan_op_layer(layer, shape, channels));
  };
  m.def("plan_op_layer", plan_op, "text"_a, "input_shape"_a.none() = nb::none(), "channels"_a = 0,
        "Parses a layer of the op set and plans its translation; input_shape in the source layout (-1 unknown).");
  m.def(
      "plan_op_layer",
      [plan_op](const nb::bytes& text, const std::optional<std::vector<int64_t>>& input_shape, int64_t channels) {
        return plan_op(std::string(text.c_str(), text.size()), input_shape, channels);
      },
      "text"_a, "input_shape"_a.none() = nb::none(), "channels"_a = 0);

  m.def("names_keras_layer", &names_keras_layer, "text"_a, "Whether the text is a Keras layer constructor call.");
  // Text that is not valid Unicode (bytes pasted from a file) arrives as bytes, exactly as the CLI sees it.
  m.def(
      "names_keras_layer", [](const nb::bytes& text) { return names_keras_layer(std::string(text.c_str(), text.size())); },
      "text"_a);
  m.def(
      "parse_input_shape",
      [](const std::string& text, bool allow_unknown) { return unwrap(parse_input_shape(text, allow_unknown)); },
      "text"_a, "allow_unknown"_a = false,
      "Parses '1,3,32,32' (or with None entries when allow_unknown, returned as -1) as the CLI's --input-shape.");

  // Keras text given without input_shape: its own fault first, as the CLI reports it.
  m.def(
      "check_keras_layer_text", [](const std::string& text) { unwrap(parse_keras_layer(text)); }, "text"_a,
      "Raises ValueError when the Keras constructor text itself is invalid.");
  m.def(
      "check_keras_layer_text",
      [](const nb::bytes& text) { unwrap(parse_keras_layer(std::string(text.c_str(), text.size()))); }, "text"_a);

  const auto plan_keras = [](const std::string& text, int64_t in_channels,
                             const std::optional<std::vector<int64_t>>& input_shape) {
    const KerasConvLayer layer = unwrap(parse_keras_layer(text));
    if (in_channels < 0 && !input_shape && !layer.declared_input_shape.empty()) {
      in_channels = layer.declared_input_shape.back();  // the text's own input_shape=(H, W, C)
    }
    if (in_channels < 0) {
      throw nb::value_error("a Keras layer's text does not record its input channels: pass input_shape "
                            "(N, *spatial, C), e.g. (None, None, None, 3), or write input_shape=(H, W, C) in the text");
    }
    return unwrap(plan_keras_to_torch(layer, in_channels, input_shape));
  };
  m.def("plan_keras_layer", plan_keras, "text"_a, "in_channels"_a, "input_shape"_a.none() = nb::none(),
        "Parses a Keras constructor call such as 'keras.layers.Conv2D(16, 3)' and plans its PyTorch translation; "
        "input_shape is channels_last with -1 for unknown sizes; in_channels -1: from the text's input_shape=.");
  m.def(
      "plan_keras_layer",
      [plan_keras](const nb::bytes& text, int64_t in_channels, const std::optional<std::vector<int64_t>>& input_shape) {
        return plan_keras(std::string(text.c_str(), text.size()), in_channels, input_shape);
      },
      "text"_a, "in_channels"_a, "input_shape"_a.none() = nb::none());

  m.def("names_tf_nn_call", &names_tf_nn_call, "text"_a, "Whether the text is a tf.nn convolution call.");
  m.def(
      "names_tf_nn_call", [](const nb::bytes& text) { return names_tf_nn_call(std::string(text.c_str(), text.size())); },
      "text"_a);
  const auto plan_tf_nn = [](const std::string& text, const std::vector<int64_t>& filters_shape,
                             const std::optional<std::vector<int64_t>>& input_shape) {
    const KerasConvLayer call = unwrap(parse_tf_nn_call(text, filters_shape));
    return unwrap(plan_tf_nn_to_torch(call, input_shape));
  };
  m.def("plan_tf_nn_call", plan_tf_nn, "text"_a, "filters_shape"_a, "input_shape"_a.none() = nb::none(),
        "Parses a tf.nn call such as \"tf.nn.conv2d(x, w, 2, 'SAME')\" with its filters' shape and plans its PyTorch "
        "translation; input_shape is channels_last with -1 for unknown sizes.");
  m.def(
      "plan_tf_nn_call",
      [plan_tf_nn](const nb::bytes& text, const std::vector<int64_t>& filters_shape,
                   const std::optional<std::vector<int64_t>>& input_shape) {
        return plan_tf_nn(std::string(text.c_str(), text.size()), filters_shape, input_shape);
      },
      "text"_a, "filters_shape"_a, "input_shape"_a.none() = nb::none());
  m.def(
      "tf_nn_call_needs_filters_shape",
      [](const nb::bytes& text) {
        return tf_nn_call_needs_filters_shape(std::string(text.c_str(), text.size())).message;
      },
      "text"_a, "The error message for a tf.nn call given without filters_shape.");
  m.def(
      "parse_filters_shape", [](const std::string& text) { return unwrap(parse_filters_shape(text)); }, "text"_a,
      "Parses '3,3,16,32' as the CLI's --filters-shape.");

  const auto plan_pytorch = [](const std::string& text, const std::optional<std::vector<int64_t>>& input_shape) {
    const TorchConvLayer layer = unwrap(parse_pytorch_layer(text));
    return unwrap(plan_torch_to_tf(layer, input_shape));
  };
  m.def("plan_pytorch_layer", plan_pytorch, "text"_a, "input_shape"_a.none() = nb::none(),
        "Parses a PyTorch constructor call such as 'nn.Conv2d(3, 16, 3)' and plans its TF translation.");
  m.def(
      "plan_pytorch_layer",
      [plan_pytorch](const nb::bytes& text, const std::optional<std::vector<int64_t>>& input_shape) {
        return plan_pytorch(std::string(text.c_str(), text.size()), input_shape);
      },
      "text"_a, "input_shape"_a.none() = nb::none());

  m.def(
      "run_cli",
      [](const std::vector<std::string>& arguments) {
        cli::CliResult result = cli::run(arguments);
        return std::make_tuple(result.exit_status, std::move(result.out), std::move(result.err));
      },
      "arguments"_a, "Runs the convbridge command line; returns (exit_status, stdout, stderr).");
  // Command-line arguments as the OS gives them (any bytes; python -m convbridge passes sys.argv re-encoded).
  m.def(
      "run_cli",
      [](const std::vector<nb::bytes>& arguments) {
        std::vector<std::string> strings;
        for (const nb::bytes& a : arguments) strings.emplace_back(a.c_str(), a.size());
        cli::CliResult result = cli::run(strings);
        return std::make_tuple(result.exit_status, std::move(result.out), std::move(result.err));
      },
      "arguments"_a);

  // Weight files: every tensor as (name, dtype name, shape, uint8 array of its C-order little-endian bytes). The
  // array owns the buffer the reader filled (no copy); convbridge.read_weights views it with the right dtype.
  m.def(
      "read_weight_file",
      [](const std::string& path) {
        auto file = unwrap(io::open_weight_file(path));
        nb::list tensors;
        for (size_t i = 0; i < file->tensors().size(); ++i) {
          const io::TensorInfo& info = file->tensors()[i];
          auto* bytes = new std::vector<std::byte>(unwrap(file->read_tensor(i)));
          nb::capsule owner(bytes, [](void* p) noexcept { delete static_cast<std::vector<std::byte>*>(p); });
          const size_t length = bytes->size();
          nb::ndarray<nb::numpy, uint8_t> array(reinterpret_cast<uint8_t*>(bytes->data()), 1, &length, owner);
          tensors.append(nb::make_tuple(info.name, std::string(io::dtype_info(info.dtype).name), info.shape, array));
        }
        return tensors;
      },
      "path"_a, "Reads a torch.save zip, safetensors, .npz, Keras .weights.h5 or .keras file without executing "
                "anything in it.");
  m.def(
      "inspect_weight_file",
      [](const std::string& path) {
        auto file = unwrap(io::open_weight_file(path));
        nb::list tensors, globals;
        for (const io::TensorInfo& info : file->tensors()) {
          tensors.append(nb::make_tuple(info.name, std::string(io::dtype_info(info.dtype).name), info.shape));
        }
        for (const io::PickleGlobal& global : file->globals()) {
          globals.append(nb::make_tuple(global.name, global.meaning, global.known, global.references,
                                        global.refused_calls));
        }
        const char* formats[] = {"torch", "safetensors", "npz", "keras"};
        const auto* keras = dynamic_cast<const io::KerasWeightFile*>(file.get());
        return nb::make_tuple(formats[static_cast<int>(file->format())], file->description(), tensors, globals,
                              file->notes(), keras ? keras->model_config() : std::string());
      },
      "path"_a, "The tensors (name, dtype, shape), pickle globals and notes of a weight file; reads no tensor data.");

  // Porting a checkpoint into a live Keras model (convbridge.port, python/convbridge/_port.py): the plan comes from
  // the same C++ matcher and lint as `convbridge port`; the adapter moves each array through convert().
  nb::class_<port::PortPlan>(m, "PortPlan", "Which checkpoint tensor fills each Keras variable, and the lint.")
      .def("report", [](const port::PortPlan& plan) { return port::port_report(plan); })
      .def("report_json", [](const port::PortPlan& plan) { return port::port_report_json(plan); })
      .def_prop_ro("errors", &port::PortPlan::errors)
      .def(
          "variables",
          [](const port::PortPlan& plan) {
            // (layer path, variable name, checkpoint tensor name or None, fill value or None)
            nb::list out;
            for (const port::PortedLayer& layer : plan.layers) {
              for (const port::PortedWeight& w : layer.weights) {
                out.append(nb::make_tuple(layer.keras_layer, w.keras_name,
                                          w.source >= 0 ? nb::object(nb::str(w.torch_name.c_str())) : nb::none(),
                                          w.fill ? nb::object(nb::float_(w.fill_value)) : nb::none()));
              }
            }
            return out;
          },
          "Every Keras variable with weights: (layer path, name, checkpoint tensor or None, fill or None).")
      .def(
          "convert",
          [](const port::PortPlan& plan, const std::string& layer, const std::string& name, const InputArray<float>& values) {
            for (const port::PortedLayer& l : plan.layers) {
              if (l.keras_layer != layer) continue;
              for (const port::PortedWeight& w : l.weights) {
                if (w.keras_name == name && w.source >= 0) return convert_with(w.change, values);
              }
            }
            throw nb::key_error((layer + "/" + name + " takes no checkpoint tensor").c_str());
          },
          "layer"_a, "name"_a, "values"_a, "The Keras variable's values from its checkpoint tensor (float32).");
  m.def(
      "plan_port",
      [](const std::string& model_json, const std::vector<std::pair<std::string, std::vector<int64_t>>>& tensors,
         const std::map<std::string, std::string>& torch_modules) {
        auto graph = unwrap(model::parse_keras_model_config(model_json));
        std::vector<port::CheckpointTensor> checkpoint;
        for (const auto& [name, shape] : tensors) checkpoint.push_back(port::CheckpointTensor{name, shape});
        port::PortOptions options;
        options.torch_modules = torch_modules;
        return unwrap(port::plan_port(graph, checkpoint, options));
      },
      "model_json"_a, "tensors"_a, "torch_modules"_a,
      "Matches checkpoint tensors (name, shape) to a captured Keras model and lints the pairs.");

  m.attr("__version__") = CONVBRIDGE_VERSION;
}
