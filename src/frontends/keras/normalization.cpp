// STUB: the normalization family is not implemented yet.
#include "frontends/op_layer_classes.hpp"

namespace convbridge::frontends {
std::span<const LayerClass> keras_normalization_classes() { return {}; }
}  // namespace convbridge::frontends
