// A Keras `.keras` file (model.save) read as data for the framework-free commands (`convbridge port --into`,
// `convbridge convert MODEL.keras`): its config.json as the Keras model front-end takes it
// (parse_keras_model_config) and which dataset of its model.weights.h5 holds each layer variable. Nothing the
// config names is imported or run.
#pragma once

#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "convbridge/io/keras_weights.hpp"
#include "convbridge/io/weights.hpp"
#include "convbridge/port/weight_port.hpp"
#include "convbridge/result.hpp"

namespace convbridge::port {

struct KerasModelFile {
  std::unique_ptr<io::KerasWeightFile> weights;    // the archive's model.weights.h5 (tensors, groups: a template)
  std::string model_json;                          // {"format": "convbridge.keras_model/1", "model": ..., "weights": ...}
  std::map<std::string, size_t> parameter_tensor;  // "block1/conv/kernel" -> index into weights->tensors()
};

// Keras' layout of model.weights.h5 (keras/src/saving/saving_lib.py _save_container_state): a container's layers
// are stored under "layers/<snake_case class name>", with "_1", "_2", ... for the second and later layer of a
// class in that container, in model.layers order (a Functional model's layers include its InputLayer, a
// Sequential model's do not); a nested model's layers under "<its path>/layers/"; each layer's variables as
// "vars/<i>" in layer.weights order. The variable names come from the layer's class and config (use_bias, scale,
// center); a layer class whose variables convbridge does not know is an error naming it.
Result<KerasModelFile> open_keras_model_file(const std::string& path);
// The same on a file already opened (open_weight_file / open_weight_bytes: the fuzz target); errors start with
// its label.
Result<KerasModelFile> keras_model_from_file(std::unique_ptr<io::WeightFile> opened);

// Tensor values as doubles (float16, bfloat16, float32, float64, integer dtypes; exact), and doubles stored as
// float32 or float64 bytes (float32: rounded to nearest, the only inexact step, taken for float64 sources only).
Result<std::vector<double>> decode_values(io::DType dtype, std::span<const std::byte> bytes, const std::string& name);
Result<std::vector<std::byte>> encode_values(io::DType dtype, std::span<const double> values, const std::string& name);

// Writes `model`'s model.weights.h5 layout with every variable the plan fills taken from `checkpoint` (re-laid out
// exactly, converted to the variable's dtype) and every other dataset (kept variables, optimizer state) as the
// model file has it; atomically (nothing is left behind on failure).
Status write_ported_weights(const PortPlan& plan, io::WeightFile& checkpoint, const KerasModelFile& model,
                            const std::string& path);

}  // namespace convbridge::port
