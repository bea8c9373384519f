// STUB: the padding family is not implemented yet.
#include "frontends/op_layer_classes.hpp"

namespace convbridge::frontends {
std::span<const LayerClass> torch_padding_classes() { return {}; }
}  // namespace convbridge::frontends
