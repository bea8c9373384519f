// Front-ends: turn what users write into the neutral description. They validate and parse; they plan nothing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "convbridge/conv_spec.hpp"
#include "convbridge/result.hpp"

namespace convbridge {

// Largest value accepted for any size argument: far beyond any real layer, small enough that the shape math
// of rank-3 convs stays far from 64-bit overflow.
inline constexpr int64_t kMaxSizeArgument = int64_t{1} << 31;

struct TorchConvLayer {
  ConvSpec spec;
  std::string class_name;       // "Conv1d", "Conv2d" or "Conv3d"
  std::string text;             // the constructor exactly as the user wrote it
  std::string padding_as_written;  // "'same'", "1", "(1, 2)": padding= as written, "0" when defaulted
};

// Parses a torch.nn.Conv1d/2d/3d constructor call, e.g. "nn.Conv2d(3, 16, kernel_size=3, stride=2, padding=1)".
// Accepts every argument PyTorch accepts, positionally or by keyword; rejects what PyTorch rejects (at
// construction, or at the first forward for errors such as stride=0) with a message naming the argument.
Result<TorchConvLayer> parse_pytorch_layer(std::string_view text);

// Parses an input shape such as "1,3,32,32" or "(1, 3, 32, 32)" into positive sizes.
Result<std::vector<int64_t>> parse_input_shape(std::string_view text);

}  // namespace convbridge
