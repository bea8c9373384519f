// STUB: the pooling family is not implemented yet.
#include "frontends/op_layer_classes.hpp"

namespace convbridge::frontends {
std::span<const LayerClass> torch_pooling_classes() { return {}; }
}  // namespace convbridge::frontends
