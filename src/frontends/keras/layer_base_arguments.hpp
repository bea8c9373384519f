// The arguments every Keras layer takes from keras.layers.Layer.__init__ (name, trainable, dtype) and the `name`
// of TensorFlow functions: they do not change the values, but a value Keras or TF rejects is rejected here too.
#pragma once

#include <fmt/format.h>

#include "frontends/arguments.hpp"

namespace convbridge::frontends {

inline Status check_layer_base_arguments(const BoundArguments& bound, bool keras_layer) {
  if (bound.given("name")) {
    const PyValue name = bound.get("name", "None");
    if (name.kind != PyValue::Kind::string && name.kind != PyValue::Kind::none) {
      return invalid_argument(fmt::format("name={} must be a string, not {}", name.source, kind_name(name.kind)));
    }
  }
  if (!keras_layer) return Ok{};
  if (bound.given("trainable")) {
    const PyValue trainable = bound.get("trainable", "True");
    if (trainable.kind != PyValue::Kind::boolean) {
      return invalid_argument(fmt::format("trainable={} must be True or False, not {}", trainable.source,
                                          kind_name(trainable.kind)));
    }
  }
  if (bound.given("dtype")) {
    const PyValue dtype = bound.get("dtype", "None");
    const bool float32 = dtype.kind == PyValue::Kind::none ||
                         (dtype.kind == PyValue::Kind::string && dtype.text == "float32") ||
                         (dtype.kind == PyValue::Kind::name && (dtype.text == "tf.float32" || dtype.text == "float32"));
    if (!float32) {
      return make_error(ErrorCode::unsupported,
                        fmt::format("dtype={} is not translated: convbridge translates float32 layers", dtype.source));
    }
  }
  return Ok{};
}

}  // namespace convbridge::frontends
