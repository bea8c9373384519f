// STUB: the activations family is not implemented yet.
#include "frontends/op_layer_classes.hpp"

namespace convbridge::frontends {
std::span<const LayerClass> keras_activation_classes() { return {}; }
}  // namespace convbridge::frontends
