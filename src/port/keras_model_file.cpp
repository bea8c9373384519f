// open_keras_model_file: a .keras archive's config.json walked as data to name the datasets of its
// model.weights.h5 the way Keras' loader finds them (keras/src/saving/saving_lib.py _save_container_state and
// keras/src/utils/naming.py to_snake_case), so the model front-end sees the same weights a live capture
// (python/convbridge/_keras_capture.py) gives it.
#include "convbridge/port/keras_model_file.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <cctype>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

namespace convbridge::port {
namespace {

using nlohmann::json;

Error invalid(std::string message) { return make_error(ErrorCode::invalid_argument, std::move(message)); }

constexpr int kMaxModelDepth = 16;

// keras.utils.naming.to_snake_case: drop non-word characters, then '_' before each capitalized word and between a
// lower-case letter or digit and a capital, lower-cased ("BatchNormalization" -> "batch_normalization", "ReLU" ->
// "re_lu", "Conv2D" -> "conv2d", "Conv2DTranspose" -> "conv2d_transpose"). Python's regexes match without
// overlapping; where that skips a '_' in the first step, the second inserts it, so doing both per character agrees.
std::string to_snake_case(std::string_view name) {
  std::string word;
  for (char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') word += c;
  }
  // (.)([A-Z][a-z]+) -> \1_\2
  std::string step;
  for (size_t i = 0; i < word.size(); ++i) {
    const bool upper = std::isupper(static_cast<unsigned char>(word[i]));
    if (i > 0 && upper && i + 1 < word.size() && std::islower(static_cast<unsigned char>(word[i + 1]))) step += '_';
    step += word[i];
  }
  // ([a-z])([A-Z]) -> \1_\2
  std::string out;
  for (size_t i = 0; i < step.size(); ++i) {
    if (i > 0 && std::isupper(static_cast<unsigned char>(step[i])) &&
        std::islower(static_cast<unsigned char>(step[i - 1]))) {
      out += '_';
    }
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(step[i])));
  }
  return out;
}

bool is_model(const std::string& class_name) {
  return class_name == "Functional" || class_name == "Sequential" || class_name == "Model";
}

// A layer's variable names in layer.weights order (keras/src/layers/*: build() creates them in this order).
Result<std::vector<std::string>> variable_names(const std::string& class_name, const json& config, const std::string& path) {
  const bool bias = config.value("use_bias", true);
  const bool scale = config.value("scale", true);
  const bool center = config.value("center", true);
  static const std::set<std::string> kernels = {
      "Conv1D", "Conv2D", "Conv3D", "Convolution1D", "Convolution2D", "Convolution3D", "Conv1DTranspose",
      "Conv2DTranspose", "Conv3DTranspose", "Convolution2DTranspose", "DepthwiseConv1D", "DepthwiseConv2D", "Dense"};
  std::vector<std::string> names;
  if (kernels.count(class_name)) {
    names = {"kernel"};
    if (bias) names.push_back("bias");
  } else if (class_name == "SeparableConv1D" || class_name == "SeparableConv2D") {
    names = {"depthwise_kernel", "pointwise_kernel"};
    if (bias) names.push_back("bias");
  } else if (class_name == "BatchNormalization" || class_name == "LayerNormalization" ||
             class_name == "GroupNormalization") {
    if (scale) names.push_back("gamma");
    if (center) names.push_back("beta");
    if (class_name == "BatchNormalization") {
      names.push_back("moving_mean");
      names.push_back("moving_variance");
    }
  } else if (class_name == "Normalization") {
    names = {"mean", "variance", "count"};
  } else if (class_name == "PReLU") {
    names = {"alpha"};
  } else if (class_name == "LayerScale") {
    names = {"gamma"};
  } else {
    return make_error(ErrorCode::unsupported,
                      fmt::format("layer '{}' ({}) has weights convbridge cannot name from its config", path, class_name));
  }
  return names;
}

struct LayerDatasets {
  std::vector<std::pair<int64_t, size_t>> vars;  // var index -> tensor index
};

class ConfigWalker {
 public:
  ConfigWalker(const io::KerasWeightFile& file, std::map<std::string, LayerDatasets>& by_h5_layer)
      : file_(file), by_h5_layer_(by_h5_layer) {}

  Status walk(const json& model, const std::string& h5_prefix, const std::string& layer_prefix, int depth) {
    if (depth > kMaxModelDepth) return invalid(fmt::format("models nest more than {} levels", kMaxModelDepth));
    if (!model.is_object() || !model.contains("config") || !model["config"].is_object() ||
        !model["config"].contains("layers") || !model["config"]["layers"].is_array()) {
      return invalid(fmt::format("model '{}' has no layers list in its config", layer_prefix));
    }
    const bool sequential = model.value("class_name", "") == "Sequential";
    std::map<std::string, int> used;
    for (const json& layer : model["config"]["layers"]) {
      if (!layer.is_object() || !layer.contains("config") || !layer["config"].is_object()) {
        return invalid("a layer of the config has no config object");
      }
      const std::string class_name = layer.value("class_name", "");
      if (sequential && class_name == "InputLayer") continue;  // Sequential.layers leaves it out
      const json& config = layer["config"];
      const std::string name = config.contains("name") && config["name"].is_string() ? config["name"].get<std::string>()
                                                                                      : layer.value("name", class_name);
      std::string h5_name = to_snake_case(class_name);
      if (auto [it, fresh] = used.emplace(h5_name, 0); !fresh) h5_name += fmt::format("_{}", ++it->second);
      const std::string h5_path = h5_prefix + h5_name;
      const std::string path = layer_prefix + name;
      if (is_model(class_name)) {
        CONVBRIDGE_CHECK(walk(layer, h5_path + "/layers/", path + "/", depth + 1));
        continue;
      }
      const auto it = by_h5_layer_.find(h5_path);
      if (it == by_h5_layer_.end()) continue;  // a layer without weights
      seen_.insert(h5_path);
      CONVBRIDGE_TRY(std::vector<std::string> names, variable_names(class_name, config, path));
      auto& vars = it->second.vars;
      std::sort(vars.begin(), vars.end());
      if (vars.size() != names.size()) {
        return invalid(fmt::format("{}: layer '{}' ({}) has {} variable(s) in model.weights.h5 ('{}') and its config "
                                   "says {}", file_.label(), path, class_name, vars.size(), h5_path, names.size()));
      }
      json list = json::array();
      for (size_t v = 0; v < vars.size(); ++v) {
        if (vars[v].first != static_cast<int64_t>(v)) {
          return invalid(fmt::format("{}: '{}/vars' is not numbered 0..{}", file_.label(), h5_path, vars.size() - 1));
        }
        const io::TensorInfo& info = file_.tensors()[vars[v].second];
        list.push_back(json::array({names[v], info.shape}));
        parameter_tensor[path + "/" + names[v]] = vars[v].second;
      }
      weights[path] = std::move(list);
    }
    return Ok{};
  }

  std::set<std::string> seen_;
  json weights = json::object();
  std::map<std::string, size_t> parameter_tensor;

 private:
  const io::KerasWeightFile& file_;
  std::map<std::string, LayerDatasets>& by_h5_layer_;
};

double half_to_double(uint16_t h) {
  const int sign = h >> 15, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  double value;
  if (exponent == 0) {
    value = std::ldexp(static_cast<double>(mantissa), -24);
  } else if (exponent == 31) {
    value = mantissa ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  } else {
    value = std::ldexp(static_cast<double>(mantissa | 0x400), exponent - 25);
  }
  return sign ? -value : value;
}

template <class T>
void decode_as(std::span<const std::byte> bytes, std::vector<double>& out) {
  out.resize(bytes.size() / sizeof(T));
  for (size_t i = 0; i < out.size(); ++i) {
    T v;
    std::memcpy(&v, bytes.data() + i * sizeof(T), sizeof(T));
    out[i] = static_cast<double>(v);
  }
}

}  // namespace

Result<KerasModelFile> open_keras_model_file(const std::string& path) {
  CONVBRIDGE_TRY(std::unique_ptr<io::WeightFile> opened, io::open_weight_file(path));
  return keras_model_from_file(std::move(opened));
}

Result<KerasModelFile> keras_model_from_file(std::unique_ptr<io::WeightFile> opened) {
  const std::string path = opened->label();
  auto* keras = dynamic_cast<io::KerasWeightFile*>(opened.get());
  if (!keras || !keras->is_keras_archive()) {
    return invalid(fmt::format("{}: not a Keras .keras model file (model.save(\"model.keras\")): it is {}", path,
                               opened->description()));
  }
  KerasModelFile out;
  out.weights.reset(keras);
  opened.release();
  std::map<std::string, LayerDatasets> by_h5_layer;
  for (size_t i = 0; i < out.weights->dataset_paths().size(); ++i) {
    const std::string& dataset = out.weights->dataset_paths()[i];
    const size_t vars = dataset.rfind("/vars/");
    if (vars == std::string::npos && !dataset.starts_with("vars/")) continue;
    const std::string layer = vars == std::string::npos ? "" : dataset.substr(0, vars);
    const std::string index = dataset.substr(vars == std::string::npos ? 5 : vars + 6);
    if (index.empty() || index.size() > 6 || !std::all_of(index.begin(), index.end(), ::isdigit)) continue;
    if (!layer.starts_with("layers/")) continue;  // the optimizer's and the model's own variables
    by_h5_layer[layer].vars.emplace_back(std::stoll(index), i);
  }
  json config = json::parse(out.weights->model_config(), nullptr, false);
  if (config.is_discarded() || !config.is_object()) return invalid(fmt::format("{}: config.json is not a JSON object", path));
  const std::string class_name = config.value("class_name", "");
  if (!is_model(class_name)) {
    return make_error(ErrorCode::unsupported,
                      fmt::format("{}: the model is a {} (a subclassed keras.Model has no graph in its config); "
                                  "convbridge reads Functional and Sequential models", path, class_name));
  }
  ConfigWalker walker(*out.weights, by_h5_layer);
  if (auto walked = walker.walk(config, "layers/", "", 0); !walked) {
    return make_error(walked.error().code, fmt::format("{}: {}", path, walked.error().message));
  }
  for (const auto& [h5_layer, datasets] : by_h5_layer) {
    if (!walker.seen_.count(h5_layer)) {
      return invalid(fmt::format("{}: model.weights.h5 has variables at '{}', which no layer of config.json names",
                                 path, h5_layer));
    }
  }
  out.model_json = json{{"format", "convbridge.keras_model/1"}, {"model", config}, {"weights", walker.weights}}.dump();
  out.parameter_tensor = std::move(walker.parameter_tensor);
  return out;
}

Result<std::vector<double>> decode_values(io::DType dtype, std::span<const std::byte> bytes, const std::string& name) {
  static_assert(std::endian::native == std::endian::little, "the readers hand out little-endian bytes");
  std::vector<double> out;
  switch (dtype) {
    case io::DType::float16: {
      out.resize(bytes.size() / 2);
      for (size_t i = 0; i < out.size(); ++i) {
        uint16_t h;
        std::memcpy(&h, bytes.data() + 2 * i, 2);
        out[i] = half_to_double(h);
      }
      return out;
    }
    case io::DType::bfloat16: {  // the upper half of a float32
      out.resize(bytes.size() / 2);
      for (size_t i = 0; i < out.size(); ++i) {
        uint16_t h;
        std::memcpy(&h, bytes.data() + 2 * i, 2);
        out[i] = static_cast<double>(std::bit_cast<float>(static_cast<uint32_t>(h) << 16));
      }
      return out;
    }
    case io::DType::float32: decode_as<float>(bytes, out); return out;
    case io::DType::float64: decode_as<double>(bytes, out); return out;
    case io::DType::int8: decode_as<int8_t>(bytes, out); return out;
    case io::DType::uint8: decode_as<uint8_t>(bytes, out); return out;
    case io::DType::int16: decode_as<int16_t>(bytes, out); return out;
    case io::DType::int32: decode_as<int32_t>(bytes, out); return out;
    default:
      return make_error(ErrorCode::unsupported,
                        fmt::format("tensor '{}' is {}: port takes floating-point weights", name,
                                    io::dtype_info(dtype).name));
  }
}

Result<std::vector<std::byte>> encode_values(io::DType dtype, std::span<const double> values, const std::string& name) {
  std::vector<std::byte> out;
  if (dtype == io::DType::float32) {
    out.resize(values.size() * 4);
    for (size_t i = 0; i < values.size(); ++i) {
      const float v = static_cast<float>(values[i]);
      std::memcpy(out.data() + 4 * i, &v, 4);
    }
  } else if (dtype == io::DType::float64) {
    out.resize(values.size() * 8);
    std::memcpy(out.data(), values.data(), out.size());
  } else {
    return make_error(ErrorCode::unsupported, fmt::format("Keras variable '{}' is {}: port writes float32 and float64 "
                                                          "variables", name, io::dtype_info(dtype).name));
  }
  return out;
}

Status write_ported_weights(const PortPlan& plan, io::WeightFile& checkpoint, const KerasModelFile& model,
                            const std::string& path) {
  std::map<size_t, const PortedWeight*> by_dataset;
  for (const PortedLayer& layer : plan.layers) {
    for (const PortedWeight& w : layer.weights) {
      if (w.source < 0 && !w.fill) continue;
      const auto it = model.parameter_tensor.find(w.parameter);
      if (it == model.parameter_tensor.end()) {
        return invalid(fmt::format("{}: no dataset holds Keras variable '{}'", model.weights->label(), w.parameter));
      }
      by_dataset[it->second] = &w;
    }
  }
  const io::TensorBytes data = [&](size_t index) -> Result<std::vector<std::byte>> {
    const auto it = by_dataset.find(index);
    if (it == by_dataset.end()) return model.weights->read_tensor(index);
    const PortedWeight& w = *it->second;
    const io::TensorInfo& target = model.weights->tensors()[index];
    if (target.shape != w.keras_shape) {
      return invalid(fmt::format("{}: Keras variable '{}' is {} in the file", model.weights->label(), w.parameter,
                                 fmt::join(target.shape, "x")));
    }
    std::vector<double> values;
    if (w.source >= 0) {
      const io::TensorInfo& source = checkpoint.tensors()[static_cast<size_t>(w.source)];
      CONVBRIDGE_TRY(std::vector<std::byte> bytes, checkpoint.read_tensor(static_cast<size_t>(w.source)));
      CONVBRIDGE_TRY(std::vector<double> decoded, decode_values(source.dtype, bytes, source.name));
      CONVBRIDGE_TRY(const int64_t count, layout_change_output_size(w.change));
      if (static_cast<int64_t>(decoded.size()) != count) {
        return invalid(fmt::format("tensor '{}' holds {} values; its shape says {}", source.name, decoded.size(), count));
      }
      values = ported_values<double>(w, decoded);
    } else {
      values = ported_values<double>(w, {});
    }
    return encode_values(target.dtype, values, w.parameter);
  };
  return io::write_keras_weights(*model.weights, data, path);
}

}  // namespace convbridge::port
