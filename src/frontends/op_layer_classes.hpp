// The layer classes and functions of the op set, per framework and family. Each family file
// (src/frontends/pytorch/<family>.cpp, src/frontends/keras/<family>.cpp) lists its classes with their positional
// parameters and a parser that applies the framework's own argument checks; src/frontends/op_layers.cpp finds the
// class a text names.
#pragma once

#include <span>
#include <string_view>

#include "convbridge/layer_plan.hpp"
#include "frontends/python_call.hpp"

namespace convbridge::frontends {

struct LayerClass {
  Framework framework;
  std::string_view name;                          // bare: "MaxPool2d", "MaxPooling2D", "max_pool2d"
  std::span<const std::string_view> parameters;   // positional order, for errors naming the argument
  // Fills layer.op (and notes) from the call; layer.framework, class_name and text are set by the caller.
  Status (*parse)(const PyCall& call, OpLayer& layer);
};

// PyTorch: torch.nn classes (prefix nn., torch.nn. or none) and torch.nn.functional calls (F., nn.functional.,
// torch.nn.functional.) under their own lowercase names.
std::span<const LayerClass> torch_pooling_classes();
std::span<const LayerClass> torch_normalization_classes();
std::span<const LayerClass> torch_resizing_classes();
std::span<const LayerClass> torch_padding_classes();
std::span<const LayerClass> torch_activation_classes();

// Keras (keras.layers., layers., tf.keras.layers., none) and TensorFlow functions (tf.nn., tf.image., tf.).
std::span<const LayerClass> keras_pooling_classes();
std::span<const LayerClass> keras_normalization_classes();
std::span<const LayerClass> keras_resizing_classes();
std::span<const LayerClass> keras_padding_classes();
std::span<const LayerClass> keras_activation_classes();

}  // namespace convbridge::frontends
