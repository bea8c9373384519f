// Builders for hand-written Keras model configs ("convbridge.keras_model/1", as python/convbridge/_keras_capture.py
// writes them, in Keras 3's serialize_keras_object format), shared by the model front-end and port tests.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace convbridge::test_support {

using nlohmann::json;

inline json tensor(const std::string& layer, json shape) {
  return {{"class_name", "__keras_tensor__"},
          {"config", {{"shape", std::move(shape)}, {"dtype", "float32"}, {"keras_history", {layer, 0, 0}}}}};
}

inline json layer(const std::string& class_name, const std::string& name, json config, json args) {
  config["name"] = name;
  json inbound = json::array();
  if (!args.is_null()) inbound.push_back({{"args", std::move(args)}, {"kwargs", json::object()}});
  return {{"module", "keras.layers"}, {"class_name", class_name}, {"config", std::move(config)},
          {"name", name},             {"inbound_nodes", std::move(inbound)}};
}

inline json input_layer(const std::string& name, json shape) {
  return {{"module", "keras.layers"}, {"class_name", "InputLayer"}, {"name", name},
          {"config", {{"name", name}, {"batch_shape", std::move(shape)}, {"dtype", "float32"}}},
          {"inbound_nodes", json::array()}};
}

inline json weight(const std::string& name, std::vector<int64_t> shape) { return json::array({name, json(shape)}); }

}  // namespace convbridge::test_support
