// Keras 3 model front-end: a model's serialized config (keras.saving.serialize_keras_object(model), which is also
// the config.json of a .keras file) read as data, into the model graph. Nothing it names is imported or run: each
// layer's class and arguments are looked up in what convbridge converts, and its constructor text is given to the
// same Keras layer front-ends `convbridge translate` uses (parse_keras_layer, parse_op_layer), so a layer inside a
// model gets exactly the checks and plans it gets on its own.
//
// The config format (Keras 3.15, keras/src/models/functional.py functional_from_config / get_config, and
// keras/src/models/sequential.py): a Functional model lists its layers, each with "inbound_nodes": one entry per
// call, whose "args" hold "__keras_tensor__" references [layer name, node index, tensor index] with the shape Keras
// recorded; "input_layers" and "output_layers" are such references (one, a list, or a dict). A Sequential model lists
// its layers in call order, each with "build_config": {"input_shape": ...}. A nested model is a layer whose class is
// Functional or Sequential; it is inlined, its layers named "<outer>/<inner>" for their weights.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "convbridge/checked_math.hpp"
#include "convbridge/model/graph.hpp"
#include "frontends/json_nesting.hpp"

namespace convbridge::model {
namespace {

using nlohmann::json;

Error unsupported(std::string message) { return make_error(ErrorCode::unsupported, std::move(message)); }
Error invalid(std::string message) { return make_error(ErrorCode::invalid_argument, std::move(message)); }

// Configs nest a few levels per nested model (model > config > layers > layer > config > initializer > config).
constexpr int kMaxNesting = 96;
constexpr int kMaxModelDepth = 16;     // nested models
constexpr size_t kMaxRank = 8;         // tensor rank
constexpr int64_t kMaxSize = int64_t{1} << 31;

// Keys of a layer config that do not change what the layer computes at inference.
bool ignored_key(const std::string& key) {
  static const std::set<std::string> keys = {"name", "trainable", "dtype", "activity_regularizer", "synchronized",
                                             "seed", "noise_shape", "renorm_clipping", "renorm_momentum"};
  const auto ends_with = [&](std::string_view suffix) {
    return key.size() >= suffix.size() && key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return keys.count(key) || ends_with("_initializer") || ends_with("_regularizer") || ends_with("_constraint");
}

// A config value as Python source: numbers, strings, booleans, None, and lists as tuples.
Result<std::string> python_value(const json& value, const std::string& layer, const std::string& key) {
  if (value.is_null()) return std::string("None");
  if (value.is_boolean()) return std::string(value.get<bool>() ? "True" : "False");
  if (value.is_number_integer()) return python_literal(CallValue::of(value.get<int64_t>()));
  if (value.is_number()) return python_literal(CallValue::of(value.get<double>()));
  if (value.is_string()) {
    const std::string text = value.get<std::string>();
    for (const char c : text) {
      if (c == '\'' || c == '\\' || c == '\n' || static_cast<unsigned char>(c) < 0x20) {
        return invalid(fmt::format("layer '{}': {} is not a plain string", layer, key));
      }
    }
    return "'" + text + "'";
  }
  if (value.is_array()) {
    std::vector<std::string> items;
    for (const json& item : value) {
      CONVBRIDGE_TRY(std::string text, python_value(item, layer, key));
      items.push_back(std::move(text));
    }
    return items.size() == 1 ? fmt::format("({},)", items[0]) : fmt::format("({})", fmt::join(items, ", "));
  }
  return unsupported(fmt::format("layer '{}': {}={} is not a value convbridge reads (a serialized object)", layer,
                                 key, value.dump().substr(0, 80)));
}

std::string dtype_name(const json& dtype) {
  if (dtype.is_string()) return dtype.get<std::string>();
  if (dtype.is_object() && dtype.contains("config") && dtype["config"].is_object()) {
    return dtype["config"].value("name", "");
  }
  return "";
}

struct Reference {
  std::string layer;
  int64_t node = 0;
  int64_t index = 0;
};

Result<Reference> reference_of(const json& history) {
  if (!history.is_array() || history.size() != 3 || !history[0].is_string() || !history[1].is_number_integer() ||
      !history[2].is_number_integer()) {
    return invalid(fmt::format("a tensor reference {} is not [layer, node, tensor]", history.dump().substr(0, 80)));
  }
  return Reference{history[0].get<std::string>(), history[1].get<int64_t>(), history[2].get<int64_t>()};
}

Result<std::vector<int64_t>> shape_of(const json& shape, const std::string& what) {
  if (!shape.is_array() || shape.empty() || shape.size() > kMaxRank) {
    return invalid(fmt::format("{}: the shape {} is not a tensor shape of rank 1 to {}", what,
                               shape.dump().substr(0, 80), kMaxRank));
  }
  std::vector<int64_t> out;
  for (const json& size : shape) {
    if (size.is_null()) {
      out.push_back(kUnknownSize);
    } else if (size.is_number_integer() && size.get<int64_t>() >= 0 && size.get<int64_t>() <= kMaxSize) {
      out.push_back(size.get<int64_t>());
    } else {
      return invalid(fmt::format("{}: the shape {} has a size that is not a count", what, shape.dump().substr(0, 80)));
    }
  }
  out[0] = kUnknownSize;  // the batch: Keras models take any batch
  return out;
}

// ---- shapes Keras did not record ----

int64_t conv_size(int64_t n, int64_t kernel, int64_t stride, int64_t dilation, KerasPadding padding) {
  if (n == kUnknownSize) return kUnknownSize;
  const int64_t extent = (kernel - 1) * dilation + 1;
  if (padding == KerasPadding::same) return (n + stride - 1) / stride;
  if (padding == KerasPadding::causal) return (n - 1) / stride + 1;
  return n < extent ? 0 : (n - extent) / stride + 1;
}

// Keras' transposed output length (keras/src/backend/common/backend_utils.py, _get_output_shape_given_tf_padding).
int64_t transposed_size(int64_t n, int64_t kernel, int64_t stride, int64_t dilation, KerasPadding padding,
                        std::optional<int64_t> output_padding) {
  if (n == kUnknownSize) return kUnknownSize;
  const int64_t extent = (kernel - 1) * dilation + 1;
  if (padding == KerasPadding::same) {
    return output_padding ? (n - 1) * stride + extent % 2 + *output_padding : n * stride;
  }
  return (n - 1) * stride + extent + output_padding.value_or(std::max(extent, stride) - extent);
}

Result<std::vector<int64_t>> keras_conv_output_shape(const KerasConvLayer& k, const std::vector<int64_t>& in) {
  if (in.size() != static_cast<size_t>(k.rank) + 2) {
    return invalid(fmt::format("{} takes rank-{} inputs", k.class_name, k.rank + 2));
  }
  std::vector<int64_t> out = {in[0]};
  for (int i = 0; i < k.rank; ++i) {
    const auto axis = static_cast<size_t>(i);
    out.push_back(k.kind == KerasLayerKind::conv_transpose
                      ? transposed_size(in[axis + 1], k.kernel[axis], k.strides[axis], k.dilation[axis], k.padding,
                                        k.has_output_padding ? std::optional(k.output_padding[axis]) : std::nullopt)
                      : conv_size(in[axis + 1], k.kernel[axis], k.strides[axis], k.dilation[axis], k.padding));
  }
  const int64_t channels = in.back();
  out.push_back(k.kind == KerasLayerKind::depthwise
                    ? (channels == kUnknownSize ? kUnknownSize : channels * k.depth_multiplier)
                    : k.filters);
  return out;
}

// An op-set layer's output, from the op's own shape rule (channels_first): sizes that vary are tried at two
// values, and the axes whose result differs vary too.
Result<std::vector<int64_t>> op_layer_output_shape(const OpLayer& layer, const std::vector<int64_t>& in) {
  std::vector<int64_t> results[2];
  for (int trial = 0; trial < 2; ++trial) {
    std::vector<int64_t> first = {in[0] == kUnknownSize ? 2 : in[0], in.back()};
    for (size_t i = 1; i + 1 < in.size(); ++i) first.push_back(in[i] == kUnknownSize ? (trial == 0 ? 1021 : 1031) : in[i]);
    CONVBRIDGE_TRY(std::vector<int64_t> out, op_output_shape(layer.op, first));
    results[trial] = std::move(out);
  }
  if (results[0].size() != results[1].size() || results[0].size() < 2) return invalid("an op of varying rank");
  std::vector<int64_t> merged;
  for (size_t i = 0; i < results[0].size(); ++i) merged.push_back(results[0][i] == results[1][i] ? results[0][i] : kUnknownSize);
  merged[0] = in[0];
  if (merged.size() < 3) return merged;  // (N, C)
  std::vector<int64_t> keras = {merged[0]};
  keras.insert(keras.end(), merged.begin() + 2, merged.end());
  keras.push_back(merged[1]);
  return keras;
}

class ConfigParser {
 public:
  Result<ModelGraph> run(const json& root) {
    const json& model = root.at("model");
    if (root.contains("weights")) {
      for (const auto& [layer, list] : root.at("weights").items()) {
        for (const json& weight : list) {
          if (!weight.is_array() || weight.size() != 2 || !weight[0].is_string()) {
            return invalid(fmt::format("the weights of layer '{}' are not [name, shape] pairs", layer));
          }
          CONVBRIDGE_TRY(std::vector<int64_t> shape, weight_shape(weight[1], layer));
          weights_[layer].emplace_back(weight[0].get<std::string>(), std::move(shape));
        }
      }
    }
    if (root.contains("output_shapes")) {
      for (const json& shape : root.at("output_shapes")) {
        CONVBRIDGE_TRY(std::vector<int64_t> s, shape_of(shape, "an output of the model"));
        declared_output_shapes_.push_back(std::move(s));
      }
    }
    graph_.framework = Framework::keras;
    graph_.model_name = model.contains("config") && model["config"].is_object()
                            ? model["config"].value("name", "model")
                            : std::string("model");
    std::vector<std::string> outputs;
    json structure;
    CONVBRIDGE_CHECK(parse_model(model, "", nullptr, outputs, structure));
    graph_.outputs = outputs;
    graph_.output_structure = structure.dump();
    for (size_t i = 0; i < outputs.size() && i < declared_output_shapes_.size(); ++i) {
      CONVBRIDGE_CHECK(record_shape(outputs[i], declared_output_shapes_[i], "the model's output"));
    }
    CONVBRIDGE_CHECK(fill_shapes());
    CONVBRIDGE_CHECK(normalize_concat_axes());
    for (const auto& [layer, list] : weights_) {
      if (!used_weight_layers_.count(layer)) {
        return invalid(fmt::format("the weights name a layer '{}' the model does not have", layer));
      }
    }
    return std::move(graph_);
  }

 private:
  Result<std::vector<int64_t>> weight_shape(const json& shape, const std::string& layer) {
    if (!shape.is_array() || shape.size() > kMaxRank) return invalid(fmt::format("a weight of layer '{}' has no shape", layer));
    std::vector<int64_t> out;
    for (const json& size : shape) {
      if (!size.is_number_integer() || size.get<int64_t>() < 0 || size.get<int64_t>() > kMaxSize) {
        return invalid(fmt::format("a weight of layer '{}' has a size that is not a count", layer));
      }
      out.push_back(size.get<int64_t>());
    }
    if (!checked_product(out) || *checked_product(out) > (int64_t{1} << 36)) {
      return invalid(fmt::format("a weight of layer '{}' is too large", layer));
    }
    return out;
  }

  // ---- tensors and shapes ----
  std::string new_tensor(const std::string& base) {
    std::string name = base;
    for (int k = 1; tensor_names_.count(name); ++k) name = fmt::format("{}_{}", base, k);
    tensor_names_.insert(name);
    return name;
  }
  Status record_shape(const std::string& tensor, const std::vector<int64_t>& shape, const std::string& where) {
    auto [it, inserted] = shapes_.emplace(tensor, shape);
    if (inserted) return Ok{};
    std::vector<int64_t>& known = it->second;
    if (known.size() != shape.size()) {
      return invalid(fmt::format("tensor {} is recorded with rank {} and rank {} ({})", tensor, known.size(),
                                 shape.size(), where));
    }
    for (size_t i = 0; i < shape.size(); ++i) {
      if (known[i] == kUnknownSize) known[i] = shape[i];
      else if (shape[i] != kUnknownSize && shape[i] != known[i]) {
        return invalid(fmt::format("tensor {} is recorded with two shapes ({})", tensor, where));
      }
    }
    return Ok{};
  }
  // Every node's outputs take the shape Keras recorded where they are read (or declared for the model's outputs);
  // where Keras recorded none (a Sequential model records a layer's input only where that layer has weights, and
  // never the step inside a layer, Dense before its activation), the shape is computed from the inputs', in order.
  Status fill_shapes() {
    for (GraphTensor& input : graph_.inputs) input.symbols.assign(input.shape.size(), "");
    for (GraphNode& node : graph_.nodes) {
      for (const std::string& output : node.outputs) {
        auto it = shapes_.find(output);
        if (it == shapes_.end()) {
          auto inferred = infer_shape(node);
          if (!inferred) {
            return make_error(inferred.error().code, fmt::format("layer '{}' ({}): {}", node.module, node.module_class,
                                                                 inferred.error().message));
          }
          it = shapes_.emplace(output, *inferred).first;
        }
        node.output_shapes.push_back(it->second);
        node.output_symbols.emplace_back(it->second.size(), "");
      }
    }
    return Ok{};
  }

  Result<std::vector<int64_t>> infer_shape(const GraphNode& node) const {
    std::vector<std::vector<int64_t>> in;
    for (const Operand& operand : node.inputs) {
      if (operand.kind != Operand::Kind::tensor) continue;
      const auto it = shapes_.find(operand.name);
      if (it == shapes_.end()) return invalid("no shape is known for its input");
      in.push_back(it->second);
    }
    if (in.empty()) return invalid("it has no tensor input");
    const std::vector<int64_t>& x = in[0];
    return std::visit(
        [&](const auto& op) -> Result<std::vector<int64_t>> {
          using T = std::decay_t<decltype(op)>;
          if constexpr (std::is_same_v<T, KerasConvNode>) {
            return keras_conv_output_shape(op.layer, x);
          } else if constexpr (std::is_same_v<T, LayerNode>) {
            return op_layer_output_shape(op.layer, x);
          } else if constexpr (std::is_same_v<T, LinearNode>) {
            std::vector<int64_t> out = x;
            out.back() = op.out_features;
            return out;
          } else if constexpr (std::is_same_v<T, PermuteNode>) {
            if (op.perm.size() != x.size()) return invalid("Permute's dims do not fit its input's rank");
            return permuted_shape(x, op.perm);
          } else if constexpr (std::is_same_v<T, ConcatNode>) {
            std::vector<int64_t> out = x;
            const int rank = static_cast<int>(x.size());
            const int axis = op.dim < 0 ? op.dim + rank : op.dim;
            if (axis <= 0 || axis >= rank) return invalid("its axis does not fit its inputs' rank");
            for (size_t i = 1; i < in.size(); ++i) {
              if (in[i].size() != x.size()) return invalid("its inputs differ in rank");
              const int64_t a = out[static_cast<size_t>(axis)], b = in[i][static_cast<size_t>(axis)];
              out[static_cast<size_t>(axis)] = a == kUnknownSize || b == kUnknownSize ? kUnknownSize : a + b;
            }
            return out;
          } else if constexpr (std::is_same_v<T, ReduceNode>) {
            std::vector<int64_t> out;
            for (size_t i = 0; i < x.size(); ++i) {
              const bool reduced = std::find(op.dims.begin(), op.dims.end(), static_cast<int>(i)) != op.dims.end();
              if (!reduced) out.push_back(x[i]);
              else if (op.keepdim) out.push_back(1);
            }
            return out;
          } else if constexpr (std::is_same_v<T, ReshapeNode>) {
            const auto target = reshape_targets_.find(node.name);
            if (target == reshape_targets_.end()) return invalid("internal: a reshape without its target");
            return reshaped(x, target->second);
          } else if constexpr (std::is_same_v<T, ArithmeticNode>) {
            // Broadcasting, from the last axis (Keras and NumPy rules).
            std::vector<int64_t> out = x;
            for (size_t i = 1; i < in.size(); ++i) {
              if (in[i].size() > out.size()) out.insert(out.begin(), in[i].size() - out.size(), 1);
              for (size_t k = 0; k < in[i].size(); ++k) {
                int64_t& a = out[out.size() - 1 - k];
                const int64_t b = in[i][in[i].size() - 1 - k];
                if (a == 1 || a == kUnknownSize) a = b == 1 && a == kUnknownSize ? kUnknownSize : b;
              }
            }
            return out;
          } else {  // elementwise: IdentityNode, ScaleOffsetNode, StandardizeNode
            return x;
          }
        },
        node.op);
  }

  static std::vector<int64_t> permuted_shape(const std::vector<int64_t>& shape, const std::vector<int>& perm) {
    std::vector<int64_t> out;
    for (const int axis : perm) out.push_back(shape[static_cast<size_t>(axis)]);
    return out;
  }

  // Reshape's target (without the batch; -1 once at most) or Flatten's (empty) applied to `in`.
  static Result<std::vector<int64_t>> reshaped(const std::vector<int64_t>& in, const std::vector<int64_t>& target) {
    int64_t known = 1;
    bool varies = false;
    for (size_t i = 1; i < in.size(); ++i) {
      if (in[i] == kUnknownSize) varies = true;
      else known *= in[i];  // sizes <= 2^31, rank <= 8: far below overflow only if the product is bounded
      if (known > (int64_t{1} << 40)) return invalid("its input is too large");
    }
    if (target.empty()) return std::vector<int64_t>{in[0], varies ? kUnknownSize : known};  // Flatten
    std::vector<int64_t> out = {in[0]};
    int64_t product = 1;
    int inferred = -1;
    for (size_t i = 0; i < target.size(); ++i) {
      if (target[i] == -1) {
        if (inferred >= 0) return invalid("its target_shape has -1 twice");
        inferred = static_cast<int>(i);
      } else if (target[i] <= 0) {
        return invalid("its target_shape has a size below 1");
      } else {
        product *= target[i];
        if (product > (int64_t{1} << 40)) return invalid("its target_shape is too large");
      }
      out.push_back(target[i]);
    }
    if (inferred >= 0) {
      out[static_cast<size_t>(inferred) + 1] = varies ? kUnknownSize
                                                      : (known % product == 0 ? known / product : -2);
      if (out[static_cast<size_t>(inferred) + 1] == -2) return invalid("its target_shape does not divide its input");
    } else if (!varies && product != known) {
      return invalid(fmt::format("its target_shape holds {} elements; its input {}", product, known));
    }
    return out;
  }

  // ---- models ----
  // Parses a Functional or Sequential config under `prefix` ("" or "outer/"). Top level (call_inputs null): its
  // inputs become graph inputs. Nested: its inputs are the outer call's tensors.
  Status parse_model(const json& model, const std::string& prefix, const std::vector<std::string>* call_inputs,
                     std::vector<std::string>& outputs, json& structure) {
    if (++depth_ > kMaxModelDepth) return unsupported(fmt::format("models nested more than {} deep", kMaxModelDepth));
    const std::string class_name = model.value("class_name", "");
    const json& config = model.at("config");
    Status status = class_name == "Sequential" ? parse_sequential(config, prefix, call_inputs, outputs, structure)
                    : class_name == "Functional" || class_name == "Model"
                        ? parse_functional(config, prefix, call_inputs, outputs, structure)
                        : unsupported(fmt::format("a {} model: convbridge converts Functional and Sequential models "
                                                  "(a subclassed model has no graph to read)", class_name));
    --depth_;
    return status;
  }

  Status parse_sequential(const json& config, const std::string& prefix, const std::vector<std::string>* call_inputs,
                          std::vector<std::string>& outputs, json& structure) {
    const std::string model_name = config.value("name", "sequential");
    std::string current;
    std::vector<int64_t> input_shape;
    const json& layers = config.at("layers");
    size_t first = 0;
    if (!layers.empty() && layers[0].value("class_name", "") == "InputLayer") {
      CONVBRIDGE_TRY(input_shape, shape_of(layers[0].at("config").at("batch_shape"), "InputLayer"));
      first = 1;
    } else if (config.contains("build_input_shape") && !config["build_input_shape"].is_null()) {
      CONVBRIDGE_TRY(input_shape, shape_of(config["build_input_shape"], "the Sequential model's input"));
    }
    if (call_inputs == nullptr) {
      if (input_shape.empty()) {
        return invalid(fmt::format("Sequential model '{}' has no input shape: build it (model.build(input_shape) or "
                                   "keras.Input) before converting it", model_name));
      }
      current = new_tensor(prefix + model_name + "_input");
      graph_.inputs.push_back(GraphTensor{current, input_shape, {}});
      CONVBRIDGE_CHECK(record_shape(current, input_shape, "the model's input"));
    } else {
      if (call_inputs->size() != 1) return invalid(fmt::format("Sequential model '{}' takes one input", model_name));
      current = (*call_inputs)[0];
      if (!input_shape.empty()) CONVBRIDGE_CHECK(record_shape(current, input_shape, "the Sequential model's input"));
    }
    for (size_t i = first; i < layers.size(); ++i) {
      const json& layer = layers[i];
      const json& layer_config = layer.at("config");
      const std::string name = layer_config.value("name", fmt::format("layer_{}", i));
      if (layer.contains("build_config") && layer["build_config"].is_object() &&
          layer["build_config"].contains("input_shape") && layer["build_config"]["input_shape"].is_array() &&
          !layer["build_config"]["input_shape"].empty() && !layer["build_config"]["input_shape"][0].is_array()) {
        CONVBRIDGE_TRY(std::vector<int64_t> shape, shape_of(layer["build_config"]["input_shape"], "layer '" + name + "'"));
        CONVBRIDGE_CHECK(record_shape(current, shape, "layer '" + name + "'"));
      }
      std::vector<std::string> layer_outputs;
      CONVBRIDGE_CHECK(add_call(layer, prefix, {current}, {}, 0, layer_outputs));
      if (layer_outputs.size() != 1) return unsupported(fmt::format("layer '{}' in a Sequential model has several outputs", name));
      current = layer_outputs[0];
    }
    outputs = {current};
    structure = json{{"ref", current}};
    return Ok{};
  }

  // The tensors of `value` (a reference triple, a list of them, or a dict of them) in order, and its structure in
  // the graph's output_structure form ({"ref"}, {"list"}, {"dict"}).
  Status references(const json& value, const std::map<std::string, std::vector<std::string>>& produced,
                    std::vector<std::string>& tensors, json& structure, const std::string& what) {
    if (value.is_array() && value.size() == 3 && value[0].is_string()) {
      CONVBRIDGE_TRY(Reference ref, reference_of(value));
      const auto it = produced.find(fmt::format("{}:{}", ref.layer, ref.node));
      if (it == produced.end() || ref.index < 0 || static_cast<size_t>(ref.index) >= it->second.size()) {
        return invalid(fmt::format("{} names layer '{}' (call {}, output {}), which the model does not compute", what,
                                   ref.layer, ref.node, ref.index));
      }
      tensors.push_back(it->second[static_cast<size_t>(ref.index)]);
      structure = json{{"ref", tensors.back()}};
      return Ok{};
    }
    if (value.is_array()) {
      json items = json::array();
      for (const json& item : value) {
        json sub;
        CONVBRIDGE_CHECK(references(item, produced, tensors, sub, what));
        items.push_back(std::move(sub));
      }
      structure = json{{"list", std::move(items)}};
      return Ok{};
    }
    if (value.is_object()) {
      json items = json::array();
      for (const auto& [key, item] : value.items()) {
        json sub;
        CONVBRIDGE_CHECK(references(item, produced, tensors, sub, what));
        items.push_back(json::array({key, std::move(sub)}));
      }
      structure = json{{"dict", std::move(items)}};
      return Ok{};
    }
    return invalid(fmt::format("{} is not a tensor reference", what));
  }

  // The tensors a call's args hold, in order, with their recorded shapes; numbers (keras.ops calls such as x * 2)
  // are kept as operands.
  Status call_arguments(const json& value, const std::map<std::string, std::vector<std::string>>& produced,
                        std::vector<Operand>& operands, bool& ready, const std::string& layer) {
    if (value.is_object() && value.value("class_name", "") == "__keras_tensor__") {
      const json& config = value.at("config");
      CONVBRIDGE_TRY(Reference ref, reference_of(config.at("keras_history")));
      const auto it = produced.find(fmt::format("{}:{}", ref.layer, ref.node));
      if (it == produced.end()) {
        ready = false;
        return Ok{};
      }
      if (ref.index < 0 || static_cast<size_t>(ref.index) >= it->second.size()) {
        return invalid(fmt::format("layer '{}' reads output {} of layer '{}', which has {}", layer, ref.index,
                                   ref.layer, it->second.size()));
      }
      const std::string tensor = it->second[static_cast<size_t>(ref.index)];
      if (config.contains("shape")) {
        CONVBRIDGE_TRY(std::vector<int64_t> shape, shape_of(config["shape"], "the input of layer '" + layer + "'"));
        CONVBRIDGE_CHECK(record_shape(tensor, shape, "layer '" + layer + "'"));
      }
      operands.push_back(Operand{Operand::Kind::tensor, tensor, 0.0});
      return Ok{};
    }
    if (value.is_array()) {
      for (const json& item : value) CONVBRIDGE_CHECK(call_arguments(item, produced, operands, ready, layer));
      return Ok{};
    }
    if (value.is_number()) {
      operands.push_back(Operand{Operand::Kind::number, "", value.get<double>()});
      return Ok{};
    }
    return unsupported(fmt::format("layer '{}' is called with {}, not tensors or numbers", layer,
                                   value.dump().substr(0, 80)));
  }

  Status parse_functional(const json& config, const std::string& prefix, const std::vector<std::string>* call_inputs,
                          std::vector<std::string>& outputs, json& structure) {
    const std::string model_name = config.value("name", "model");
    // "<layer>:<call>" -> its output tensors
    std::map<std::string, std::vector<std::string>> produced;
    const json& layers = config.at("layers");
    // Inputs first, in the order input_layers gives them.
    std::vector<std::string> input_order;
    json input_structure;
    {
      std::map<std::string, std::vector<std::string>> input_layers;
      for (const json& layer : layers) {
        if (layer.value("class_name", "") != "InputLayer") continue;
        const std::string name = layer.at("config").value("name", layer.value("name", ""));
        CONVBRIDGE_TRY(std::vector<int64_t> shape, shape_of(layer.at("config").at("batch_shape"),
                                                            "InputLayer '" + name + "'"));
        const std::string tensor = new_tensor(prefix + name);
        input_layers[name + ":0"] = {tensor};
        CONVBRIDGE_CHECK(record_shape(tensor, shape, "InputLayer '" + name + "'"));
        shapes_of_inputs_[tensor] = shape;
      }
      CONVBRIDGE_CHECK(references(config.at("input_layers"), input_layers, input_order, input_structure,
                                  fmt::format("model '{}' input_layers", model_name)));
      if (call_inputs != nullptr && call_inputs->size() != input_order.size()) {
        return invalid(fmt::format("model '{}' takes {} inputs; it is called with {}", model_name, input_order.size(),
                                   call_inputs->size()));
      }
      for (size_t i = 0; i < input_order.size(); ++i) {
        std::string tensor = input_order[i];
        if (call_inputs == nullptr) {
          graph_.inputs.push_back(GraphTensor{tensor, shapes_of_inputs_[tensor], {}});
        } else {
          // Nested: the input layer is the outer tensor itself.
          CONVBRIDGE_CHECK(record_shape((*call_inputs)[i], shapes_of_inputs_[tensor], "model '" + model_name + "'"));
          tensor = (*call_inputs)[i];
        }
        for (auto& [key, tensors] : input_layers) {
          if (tensors[0] == input_order[i]) produced[key] = {tensor};
        }
      }
    }
    // Layer calls in dependency order: each sweep makes the calls whose inputs are computed.
    struct Pending {
      const json* layer;
      size_t call;
    };
    std::vector<Pending> pending;
    for (const json& layer : layers) {
      if (layer.value("class_name", "") == "InputLayer") continue;
      const json& inbound = layer.contains("inbound_nodes") ? layer["inbound_nodes"] : json::array();
      if (!inbound.is_array()) return invalid("inbound_nodes is not a list");
      for (size_t call = 0; call < inbound.size(); ++call) pending.push_back(Pending{&layer, call});
    }
    while (!pending.empty()) {
      std::vector<Pending> waiting;
      for (const Pending& p : pending) {
        const json& layer = *p.layer;
        const std::string name = layer.value("name", layer.at("config").value("name", ""));
        const json& node = layer["inbound_nodes"][p.call];
        std::vector<Operand> operands;
        bool ready = true;
        CONVBRIDGE_CHECK(call_arguments(node.at("args"), produced, operands, ready, name));
        if (node.contains("kwargs") && node["kwargs"].is_object()) {
          for (const auto& [key, value] : node["kwargs"].items()) {
            if (value.is_object() || (value.is_array() && !value.empty())) {
              return unsupported(fmt::format("layer '{}' is called with {}= (a tensor or structure): convbridge "
                                             "converts calls on their positional inputs", name, key));
            }
          }
        }
        if (!ready) {
          waiting.push_back(p);
          continue;
        }
        std::vector<std::string> tensors;
        std::vector<Operand> numbers;
        for (const Operand& operand : operands) {
          if (operand.kind == Operand::Kind::tensor) tensors.push_back(operand.name);
        }
        std::vector<std::string> call_outputs;
        CONVBRIDGE_CHECK(add_call(layer, prefix, tensors, operands, p.call, call_outputs));
        produced[fmt::format("{}:{}", name, p.call)] = call_outputs;
      }
      if (waiting.size() == pending.size()) {
        const json& layer = *waiting.front().layer;
        return invalid(fmt::format("layer '{}' of model '{}' reads a tensor no layer computes (or the layers form "
                                   "a cycle)", layer.value("name", ""), model_name));
      }
      pending = std::move(waiting);
    }
    outputs.clear();
    CONVBRIDGE_CHECK(references(config.at("output_layers"), produced, outputs, structure,
                                fmt::format("model '{}' output_layers", model_name)));
    return Ok{};
  }

  // ---- layers ----
  // The layer's weights as graph parameters (created once, however often the layer is called), by role: their
  // Keras names ("kernel", "moving_mean").
  std::vector<std::pair<std::string, std::string>> parameters_of(const std::string& path) {
    std::vector<std::pair<std::string, std::string>> roles;
    const auto it = weights_.find(path);
    if (it == weights_.end()) return roles;
    used_weight_layers_.insert(path);
    if (created_parameters_.insert(path).second) {
      for (const auto& [name, shape] : it->second) {
        graph_.parameters.push_back(Parameter{path + "/" + name, path + "/" + name, shape, {}});
      }
    }
    for (const auto& [name, shape] : it->second) roles.emplace_back(name, path + "/" + name);
    return roles;
  }

  Result<std::string> constructor_text(const std::string& class_name, const json& config, const std::string& layer,
                                       const std::set<std::string>& skip = {}) {
    std::vector<std::string> arguments;
    for (const auto& [key, value] : config.items()) {
      if (ignored_key(key) || skip.count(key)) continue;
      CONVBRIDGE_TRY(std::string text, python_value(value, layer, key));
      arguments.push_back(key + "=" + text);
    }
    return fmt::format("keras.layers.{}({})", class_name, fmt::join(arguments, ", "));
  }

  GraphNode& node(const std::string& layer, const std::string& class_name, const std::string& path,
                  NodeOp op, std::vector<Operand> inputs, size_t outputs, size_t call) {
    GraphNode n;
    n.name = call == 0 ? layer : fmt::format("{}_call{}", layer, call);
    n.source_op = "keras.layers." + class_name;
    n.module = path;
    n.module_class = class_name;
    n.op = std::move(op);
    n.inputs = std::move(inputs);
    for (size_t i = 0; i < outputs; ++i) {
      n.outputs.push_back(new_tensor(call == 0 && outputs == 1 ? path : fmt::format("{}_{}_{}", path, call, i)));
    }
    graph_.nodes.push_back(std::move(n));
    return graph_.nodes.back();
  }

  std::vector<Operand> tensor_operands(const std::vector<std::string>& tensors) {
    std::vector<Operand> out;
    for (const std::string& t : tensors) out.push_back(Operand{Operand::Kind::tensor, t, 0.0});
    return out;
  }

  // One call of a layer on `inputs`: its nodes, and the tensors it returns in `outputs`.
  Status add_call(const json& layer, const std::string& prefix, const std::vector<std::string>& inputs,
                  const std::vector<Operand>& operands, size_t call, std::vector<std::string>& outputs) {
    const std::string class_name = layer.value("class_name", "");
    const std::string module = layer.value("module", "");
    if (!layer.contains("config") || !layer["config"].is_object()) {
      return invalid(fmt::format("a {} layer has no config", class_name));
    }
    const json& config = layer["config"];
    const std::string name = config.value("name", layer.value("name", class_name));
    const std::string path = prefix + name;
    const std::string where = fmt::format("layer '{}' ({})", path, class_name);
    if (config.contains("dtype")) {
      const std::string dtype = dtype_name(config["dtype"]);
      if (!dtype.empty() && dtype != "float32") {
        return unsupported(fmt::format("{} computes in {}: convbridge converts float32 models (set the layer's dtype "
                                       "policy to float32)", where, dtype));
      }
    }
    if (class_name == "Functional" || class_name == "Sequential" || class_name == "Model") {
      json structure;
      return parse_model(layer, path + "/", &inputs, outputs, structure);
    }
    if (class_name == "Lambda") {
      return unsupported(fmt::format("{} runs Python code that cannot be read as data; rewrite it as Keras layers "
                                     "(or keras.ops calls) to convert the model", where));
    }
    const bool keras_layer = module == "keras.layers" || module.rfind("keras.src.layers", 0) == 0 || module.empty();
    const auto one_input = [&]() -> Status {
      if (inputs.size() != 1) return invalid(fmt::format("{} takes one input; it is called with {}", where, inputs.size()));
      return Ok{};
    };
    // keras.ops calls in a functional model (keras/src/ops/numpy.py): arithmetic on tensors and numbers.
    if (module == "keras.src.ops.numpy") {
      static const std::map<std::string, Arithmetic> ops = {
          {"Add", Arithmetic::add},          {"Subtract", Arithmetic::subtract}, {"Multiply", Arithmetic::multiply},
          {"Divide", Arithmetic::divide},    {"TrueDivide", Arithmetic::divide}, {"Maximum", Arithmetic::maximum},
          {"Minimum", Arithmetic::minimum}};
      if (class_name == "Mean" || class_name == "Sum" || class_name == "Max" || class_name == "Min") {
        return reduction_call(class_name, config, name, path, inputs, operands, call, outputs, where);
      }
      if (class_name == "Concatenate") {
        if (inputs.empty() || inputs.size() != operands.size()) return invalid(fmt::format("{} concatenates tensors", where));
        GraphNode& n = node(name, class_name, path, ConcatNode{config.value("axis", -1), false}, operands, 1, call);
        n.source_op = "keras.ops.concatenate";
        outputs = n.outputs;
        return Ok{};
      }
      if (class_name == "Tanh" || class_name == "Abs" || class_name == "Exp" || class_name == "Sqrt") {
        return activation_call(class_name == "Tanh" ? "'tanh'" : "", class_name, name, path, inputs, call, outputs,
                               where);
      }
      const auto it = ops.find(class_name);
      if (it == ops.end() || operands.size() != 2) {
        return unsupported(fmt::format("{}: keras.ops.{} is not an op convbridge converts (it converts add, subtract, "
                                       "multiply, divide, maximum and minimum of tensors and numbers)", where,
                                       class_name));
      }
      GraphNode& n = node(name, class_name, path, ArithmeticNode{it->second}, operands, 1, call);
      n.source_op = "keras.ops." + class_name;
      outputs = n.outputs;
      return Ok{};
    }
    // keras.ops activations (keras/src/ops/nn.py): the Activation layer of the same name.
    if (module == "keras.src.ops.nn") {
      static const std::map<std::string, std::string> activations = {
          {"Relu", "'relu'"},       {"Relu6", "'relu6'"},       {"Sigmoid", "'sigmoid'"}, {"Silu", "'silu'"},
          {"Softplus", "'softplus'"}, {"Softsign", "'softsign'"}, {"Elu", "'elu'"},       {"Selu", "'selu'"},
          {"HardSigmoid", "'hard_sigmoid'"}, {"HardSilu", "'hard_silu'"}, {"Mish", "'mish'"}};
      const auto it = activations.find(class_name);
      if (class_name == "Silu" && config.contains("beta") && config["beta"] != 1.0) {
        return unsupported(fmt::format("{}: keras.ops.silu with beta != 1", where));
      }
      return activation_call(it == activations.end() ? "" : it->second, class_name, name, path, inputs, call,
                             outputs, where);
    }
    if (module == "keras.src.applications.convnext" && class_name == "LayerScale") {
      CONVBRIDGE_CHECK(one_input());
      auto parameters = parameters_of(path);
      if (parameters.size() != 1) return invalid(fmt::format("{} has no gamma weight", where));
      std::vector<Operand> in = tensor_operands(inputs);
      in.push_back(Operand{Operand::Kind::parameter, parameters[0].second, 0.0});
      GraphNode& n = node(name, class_name, path, ArithmeticNode{Arithmetic::multiply}, in, 1, call);
      n.source_op = "keras.applications.convnext.LayerScale";
      n.parameters = parameters;
      outputs = n.outputs;
      return Ok{};
    }
    // convbridge's own Keras layers (python/convbridge/keras_layers.py), in a model convbridge converted from PyTorch:
    // those with a Keras meaning of their own convert back; the others stand for PyTorch semantics.
    if (module.rfind("convbridge", 0) == 0) {
      if (class_name == "ExpectInputSize") {  // the PyTorch module checks the sizes Keras declares itself
        CONVBRIDGE_CHECK(one_input());
        GraphNode& n = node(name, class_name, path, IdentityNode{}, tensor_operands(inputs), 1, call);
        outputs = n.outputs;
        return Ok{};
      }
      if (class_name == "NegInfPadding" && config.contains("padding") && config["padding"].is_array()) {
        CONVBRIDGE_CHECK(one_input());
        const size_t rank = config["padding"].size();
        if (rank < 1 || rank > 3) return invalid(fmt::format("{} pads {} axes", where, rank));
        CONVBRIDGE_TRY(std::string padding, python_value(config["padding"], path, "padding"));
        auto parsed = parse_op_layer(fmt::format("keras.layers.ZeroPadding{}D(padding={})", rank, padding));
        if (!parsed) return make_error(parsed.error().code, fmt::format("{}: {}", where, parsed.error().message));
        std::get<PadOp>(parsed->op).value = -std::numeric_limits<double>::infinity();  // max pooling's padding
        parsed->class_name = "NegInfPadding";
        GraphNode& n = node(name, class_name, path, LayerNode{*parsed}, tensor_operands(inputs), 1, call);
        outputs = n.outputs;
        return Ok{};
      }
      return unsupported(fmt::format("{} is a convbridge layer standing for PyTorch semantics Keras has no layer "
                                     "for: convert the original PyTorch model instead", where));
    }
    if (!keras_layer) {
      return unsupported(fmt::format("{} is a custom layer ({}.{}): its code cannot be read as data; convbridge "
                                     "converts Keras' own layers", where, module, class_name));
    }
    static const std::set<std::string> convs = {
        "Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D",
        "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose", "Convolution1D", "Convolution2D", "Convolution3D"};
    static const std::set<std::string> identities = {"Dropout", "SpatialDropout1D", "SpatialDropout2D",
                                                     "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
                                                     "AlphaDropout", "ActivityRegularization", "Identity"};
    static const std::map<std::string, Arithmetic> merges = {
        {"Add", Arithmetic::add},         {"Subtract", Arithmetic::subtract}, {"Multiply", Arithmetic::multiply},
        {"Average", Arithmetic::average}, {"Maximum", Arithmetic::maximum},   {"Minimum", Arithmetic::minimum}};
    if (convs.count(class_name)) {
      CONVBRIDGE_CHECK(one_input());
      CONVBRIDGE_TRY(std::string text, constructor_text(class_name, config, path, {"lora_rank", "lora_alpha"}));
      auto parsed = parse_keras_layer(text);
      if (!parsed) return make_error(parsed.error().code, fmt::format("{}: {}", where, parsed.error().message));
      GraphNode& n = node(name, class_name, path, KerasConvNode{*parsed}, tensor_operands(inputs), 1, call);
      n.parameters = parameters_of(path);
      outputs = n.outputs;
      return Ok{};
    }
    const bool linear_activation = class_name == "Activation" && config.contains("activation") &&
                                   config["activation"].is_string() && config["activation"] == "linear";
    if (identities.count(class_name) || linear_activation) {
      CONVBRIDGE_CHECK(one_input());
      GraphNode& n = node(name, class_name, path, IdentityNode{}, tensor_operands(inputs), 1, call);
      outputs = n.outputs;
      return Ok{};
    }
    if (const auto merge = merges.find(class_name); merge != merges.end()) {
      if (inputs.size() < 2 || (merge->second == Arithmetic::subtract && inputs.size() != 2)) {
        return invalid(fmt::format("{} is called with {} tensors", where, inputs.size()));
      }
      GraphNode& n = node(name, class_name, path, ArithmeticNode{merge->second}, tensor_operands(inputs), 1, call);
      outputs = n.outputs;
      return Ok{};
    }
    if (class_name == "Concatenate") {
      if (inputs.empty()) return invalid(fmt::format("{} has no inputs", where));
      const int axis = config.value("axis", -1);
      GraphNode& n = node(name, class_name, path, ConcatNode{axis, false}, tensor_operands(inputs), 1, call);
      outputs = n.outputs;
      return Ok{};
    }
    if (class_name == "Dense") {
      CONVBRIDGE_CHECK(one_input());
      if (config.contains("quantization_config") && !config["quantization_config"].is_null()) {
        return unsupported(fmt::format("{} is quantized", where));
      }
      if (config.value("lora_rank", json()).is_number() && config["lora_rank"].get<double>() != 0) {
        return unsupported(fmt::format("{} has LoRA weights: merge them into the kernel first", where));
      }
      auto parameters = parameters_of(path);
      int64_t in_features = 0;
      for (const auto& [role, parameter] : parameters) {
        if (role == "kernel") {
          for (const Parameter& p : graph_.parameters) {
            if (p.name == parameter && p.shape.size() == 2) in_features = p.shape[0];
          }
        }
      }
      const bool bias = config.value("use_bias", true);
      LinearNode linear{in_features, config.value("units", int64_t{0}), bias, true};
      if (linear.out_features <= 0) return invalid(fmt::format("{} has units={}", where, linear.out_features));
      GraphNode& n = node(name, class_name, path, linear, tensor_operands(inputs), 1, call);
      n.parameters = parameters;
      outputs = n.outputs;
      return activation_after(config, name, path, call, outputs);
    }
    if (class_name == "Flatten" || class_name == "Reshape") {
      CONVBRIDGE_CHECK(one_input());
      if (class_name == "Flatten" && config.value("data_format", "channels_last") != "channels_last") {
        return unsupported(fmt::format("{} has data_format='channels_first'", where));
      }
      std::vector<int64_t> target;
      if (class_name == "Reshape") {
        const json& given = config.at("target_shape");
        if (!given.is_array() || given.empty() || given.size() + 1 > kMaxRank) {
          return invalid(fmt::format("{} has target_shape={}", where, given.dump().substr(0, 80)));
        }
        for (const json& size : given) {
          if (!size.is_number_integer() || size.get<int64_t>() < -1 || size.get<int64_t>() == 0 ||
              size.get<int64_t>() > kMaxSize) {
            return invalid(fmt::format("{} has target_shape={}", where, given.dump().substr(0, 80)));
          }
          target.push_back(size.get<int64_t>());
        }
      }
      GraphNode& n = node(name, class_name, path, ReshapeNode{}, tensor_operands(inputs), 1, call);
      reshape_targets_[n.name] = target;
      outputs = n.outputs;
      return Ok{};
    }
    if (class_name == "Permute") {
      CONVBRIDGE_CHECK(one_input());
      PermuteNode permute{{0}};
      for (const json& dim : config.at("dims")) {
        if (!dim.is_number_integer() || dim.get<int64_t>() < 1 || dim.get<int64_t>() > static_cast<int64_t>(kMaxRank)) {
          return invalid(fmt::format("{} has dims={}", where, config["dims"].dump()));
        }
        permute.perm.push_back(dim.get<int>());
      }
      std::vector<int> sorted = permute.perm;
      std::sort(sorted.begin(), sorted.end());
      for (size_t i = 0; i < sorted.size(); ++i) {
        if (sorted[i] != static_cast<int>(i)) return invalid(fmt::format("{} has dims={}: not a permutation", where,
                                                                         config["dims"].dump()));
      }
      GraphNode& n = node(name, class_name, path, permute, tensor_operands(inputs), 1, call);
      outputs = n.outputs;
      return Ok{};
    }
    if (class_name == "Rescaling") {
      CONVBRIDGE_CHECK(one_input());
      const json& scale = config.at("scale");
      const json& offset = config.at("offset");
      if (scale.is_number() && offset.is_number()) {
        GraphNode& n = node(name, class_name, path, ScaleOffsetNode{scale.get<double>(), offset.get<double>()},
                            tensor_operands(inputs), 1, call);
        outputs = n.outputs;
        return Ok{};
      }
      // Per channel: x * scale then + offset, each a constant broadcast over the last axis (Keras' order).
      std::vector<std::string> current = inputs;
      for (const char* role : {"scale", "offset"}) {
        CONVBRIDGE_TRY(std::vector<double> values, numbers(config.at(role), where, role));
        const std::string parameter = path + "/" + role;
        graph_.parameters.push_back(Parameter{parameter, parameter, {static_cast<int64_t>(values.size())}, values});
        std::vector<Operand> step_operands = tensor_operands(current);
        step_operands.push_back(Operand{Operand::Kind::parameter, parameter, 0.0});
        const bool scale_step = std::string(role) == "scale";
        GraphNode& n = node(scale_step ? name + ".scale" : name, class_name, path,
                            ArithmeticNode{scale_step ? Arithmetic::multiply : Arithmetic::add}, step_operands, 1, call);
        n.parameters = {{role, parameter}};
        if (scale_step) n.outputs[0] = new_tensor(path + "_scaled");
        current = n.outputs;
      }
      outputs = current;
      return Ok{};
    }
    if (class_name == "Normalization") {
      CONVBRIDGE_CHECK(one_input());
      const bool constants = config.contains("mean") && !config["mean"].is_null();
      // axis=None: one statistic over every axis, which Keras only allows given as numbers.
      const bool axis_none = config.contains("axis") && (config["axis"].is_null() ||
                                                          (config["axis"].is_array() && config["axis"].empty()));
      if (!(constants && axis_none)) {
        CONVBRIDGE_CHECK(normalization_axis(config, where));
      }
      StandardizeNode op{config.value("invert", false), 1e-7};
      std::vector<std::pair<std::string, std::string>> parameters;
      if (constants) {
        for (const char* role : {"mean", "variance"}) {
          CONVBRIDGE_TRY(std::vector<double> values, numbers(config.at(role), where, role));
          const std::string parameter = path + "/" + role;
          graph_.parameters.push_back(Parameter{parameter, parameter, {static_cast<int64_t>(values.size())}, values});
          parameters.emplace_back(role, parameter);
        }
      } else {
        parameters = parameters_of(path);
        parameters.erase(std::remove_if(parameters.begin(), parameters.end(),
                                        [](const auto& p) { return p.first == "count"; }),
                         parameters.end());
      }
      GraphNode& n = node(name, class_name, path, op, tensor_operands(inputs), 1, call);
      n.parameters = parameters;
      outputs = n.outputs;
      return Ok{};
    }
    // The op set: pooling, normalization, resizing, padding, cropping, activations.
    CONVBRIDGE_TRY(std::string text, constructor_text(class_name, config, path, {"renorm"}));
    if (config.value("renorm", false)) return unsupported(fmt::format("{} uses batch renormalization", where));
    if (!names_op_layer(text)) {
      return unsupported(fmt::format("{}: convbridge does not convert keras.layers.{} yet", where, class_name));
    }
    CONVBRIDGE_CHECK(one_input());
    auto parsed = parse_op_layer(text);
    if (!parsed) return make_error(parsed.error().code, fmt::format("{}: {}", where, parsed.error().message));
    GraphNode& n = node(name, class_name, path, LayerNode{*parsed}, tensor_operands(inputs), 1, call);
    n.parameters = parameters_of(path);
    outputs = n.outputs;
    return Ok{};
  }

  // A number or a flat list of numbers from the config (Rescaling's scale, Normalization's mean).
  static Result<std::vector<double>> numbers(const json& given, const std::string& where, const char* role) {
    std::vector<double> values;
    const auto add = [&](const json& v) -> Status {
      if (!v.is_number()) return invalid(fmt::format("{} has a {} that is not numbers", where, role));
      values.push_back(v.get<double>());
      return Ok{};
    };
    if (given.is_array()) {
      if (given.empty() || given.size() > static_cast<size_t>(kMaxSize)) return invalid(fmt::format("{} has an empty {}", where, role));
      for (const json& v : given) CONVBRIDGE_CHECK(add(v));
    } else {
      CONVBRIDGE_CHECK(add(given));
    }
    return values;
  }

  static Status normalization_axis(const json& config, const std::string& where) {
    const json axis = config.value("axis", json(-1));
    const bool last = (axis.is_number_integer() && axis.get<int64_t>() == -1) ||
                      (axis.is_array() && axis.size() == 1 && axis[0].is_number_integer() &&
                       (axis[0].get<int64_t>() == -1 || axis[0].get<int64_t>() > 0));
    if (!last) {
      return unsupported(fmt::format("{} normalizes over axis={}; convbridge converts normalization over the channel "
                                     "axis (the last)", where, axis.dump()));
    }
    return Ok{};
  }

  // keras.ops.<activation>(x) as the Activation layer it equals; "" is not one convbridge converts.
  Status activation_call(const std::string& activation, const std::string& class_name, const std::string& name,
                         const std::string& path, const std::vector<std::string>& inputs, size_t call,
                         std::vector<std::string>& outputs, const std::string& where) {
    if (activation.empty()) {
      return unsupported(fmt::format("{}: keras.ops.{} is not an op convbridge converts", where, class_name));
    }
    if (inputs.size() != 1) return invalid(fmt::format("{} takes one tensor", where));
    auto parsed = parse_op_layer(fmt::format("keras.layers.Activation({})", activation));
    if (!parsed) return make_error(parsed.error().code, fmt::format("{}: {}", where, parsed.error().message));
    GraphNode& n = node(name, class_name, path, LayerNode{*parsed}, tensor_operands(inputs), 1, call);
    n.source_op = "keras.ops." + class_name;
    outputs = n.outputs;
    return Ok{};
  }

  // keras.ops.mean / sum / max / min over axis (None: every axis but none is the batch's to reduce here).
  Status reduction_call(const std::string& class_name, const json& config, const std::string& name,
                        const std::string& path, const std::vector<std::string>& inputs,
                        const std::vector<Operand>& operands, size_t call, std::vector<std::string>& outputs,
                        const std::string& where) {
    if (inputs.size() != 1 || operands.size() != 1) return invalid(fmt::format("{} reduces one tensor", where));
    const auto shape = shapes_.find(inputs[0]);
    if (shape == shapes_.end()) return invalid(fmt::format("{}: no shape is known for its input", where));
    const int rank = static_cast<int>(shape->second.size());
    const json axis = config.value("axis", json());
    std::vector<int> dims;
    const auto add = [&](const json& a) -> Status {
      if (!a.is_number_integer()) return invalid(fmt::format("{} has axis={}", where, axis.dump()));
      const int64_t d = a.get<int64_t>() < 0 ? a.get<int64_t>() + rank : a.get<int64_t>();
      if (d <= 0 || d >= rank) {
        return unsupported(fmt::format("{} reduces axis {}: convbridge converts reductions that keep the batch", where,
                                       a.get<int64_t>()));
      }
      dims.push_back(static_cast<int>(d));
      return Ok{};
    };
    if (axis.is_array()) {
      for (const json& a : axis) CONVBRIDGE_CHECK(add(a));
    } else {
      CONVBRIDGE_CHECK(add(axis));
    }
    std::sort(dims.begin(), dims.end());
    dims.erase(std::unique(dims.begin(), dims.end()), dims.end());
    static const std::map<std::string, Reduction> reductions = {
        {"Mean", Reduction::mean}, {"Sum", Reduction::sum}, {"Max", Reduction::max}, {"Min", Reduction::min}};
    GraphNode& n = node(name, class_name, path, ReduceNode{reductions.at(class_name), dims, config.value("keepdims", false)},
                        tensor_operands(inputs), 1, call);
    n.source_op = "keras.ops." + class_name;
    outputs = n.outputs;
    return Ok{};
  }

  // Dense's activation= as a layer after it (Keras applies it after the bias).
  Status activation_after(const json& config, const std::string& name, const std::string& path, size_t call,
                          std::vector<std::string>& outputs) {
    const json activation = config.value("activation", json("linear"));
    if (activation.is_null() || (activation.is_string() && activation.get<std::string>() == "linear")) return Ok{};
    CONVBRIDGE_TRY(std::string text, python_value(activation, path, "activation"));
    auto parsed = parse_op_layer(fmt::format("keras.layers.Activation({})", text));
    if (!parsed) return make_error(parsed.error().code, fmt::format("layer '{}' (Dense): {}", path, parsed.error().message));
    GraphNode& n = node(name + ".activation", "Activation", path, LayerNode{*parsed},
                        tensor_operands(outputs), 1, call);
    n.outputs[0] = new_tensor(path + "_activation");
    n.source_op = "keras.layers.Dense(activation=" + text + ")";
    outputs = n.outputs;
    return Ok{};
  }

  // Concatenate's axis (normalized once the rank is known).
  Status normalize_concat_axes() {
    for (GraphNode& n : graph_.nodes) {
      auto* concat = std::get_if<ConcatNode>(&n.op);
      if (concat == nullptr || n.output_shapes.empty()) continue;
      const int rank = static_cast<int>(n.output_shapes[0].size());
      const int axis = concat->dim < 0 ? concat->dim + rank : concat->dim;
      if (axis <= 0 || axis >= rank) {
        return invalid(fmt::format("layer '{}' (Concatenate) has axis={} for tensors of rank {}", n.module, concat->dim,
                                   rank));
      }
      concat->dim = axis;
    }
    return Ok{};
  }

  ModelGraph graph_;
  std::map<std::string, std::vector<std::pair<std::string, std::vector<int64_t>>>> weights_;
  std::set<std::string> used_weight_layers_;
  std::set<std::string> created_parameters_;
  std::vector<std::vector<int64_t>> declared_output_shapes_;
  std::map<std::string, std::vector<int64_t>> shapes_;
  std::map<std::string, std::vector<int64_t>> shapes_of_inputs_;
  std::map<std::string, std::vector<int64_t>> reshape_targets_;  // node -> Reshape's target_shape (Flatten: empty)
  std::set<std::string> tensor_names_;
  int depth_ = 0;
};

}  // namespace

Result<ModelGraph> parse_keras_model_config(std::string_view json_text) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::exception& error) {
    return make_error(ErrorCode::syntax, fmt::format("the Keras model config is not JSON: {}", error.what()));
  }
  try {
    const auto format = root.is_object() ? root.find("format") : root.end();
    if (format == root.end() || !format->is_string() || *format != "convbridge.keras_model/1") {
      return make_error(ErrorCode::syntax, "the Keras model description is not convbridge.keras_model/1");
    }
    if (json_nesting_depth(root, kMaxNesting) > kMaxNesting) {
      return make_error(ErrorCode::syntax, fmt::format("the Keras model config nests values more than {} levels deep",
                                                       kMaxNesting));
    }
    ConfigParser parser;
    return parser.run(root);
  } catch (const json::exception& error) {
    return make_error(ErrorCode::syntax, fmt::format("the Keras model config is malformed: {}", error.what()));
  }
}

}  // namespace convbridge::model
