// The framework-neutral description of a forward convolution. Front-ends parse framework arguments into it;
// planners, emitters and the reference engine read it. Padding is stored per side, per spatial dimension, so
// asymmetric splits (PyTorch 'same' with an even kernel, TF 'same' at stride 2) need no special cases.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "convbridge/result.hpp"

namespace convbridge {

inline constexpr int kMaxSpatialRank = 3;

// Padding of one spatial dimension: elements added before index 0 and after the last index.
struct PadPair {
  int64_t before = 0;
  int64_t after = 0;
  friend bool operator==(const PadPair&, const PadPair&) = default;
};

// What the padded border holds. Matches PyTorch's padding_mode names.
enum class PaddingFill {
  zeros,      // constant 0
  reflect,    // mirror without repeating the edge: [1,2,3] pad 2 -> [3,2,1,2,3,2,1]
  replicate,  // repeat the edge value:           [1,2,3] pad 2 -> [1,1,1,2,3,3,3]
  circular,   // wrap around:                       [1,2,3] pad 2 -> [2,3,1,2,3,1,2]
};

std::string_view padding_fill_name(PaddingFill fill);

// A convolution as PyTorch computes it.
// Forward (transposed = false): pad every spatial dim by `padding` with `fill`, then a 'valid' strided, dilated,
// grouped cross-correlation, then add the bias. Weight (C_out, C_in/groups, *kernel).
// Transposed (transposed = true, PyTorch ConvTransposeNd): the full transposed result z of length
// L = (in-1)*stride + (k-1)*dilation + 1, then y[x] = z[x + padding.before] for
// x < L - before - after + output_padding (positions past L hold 0), then add the bias everywhere.
// Weight (C_in, C_out/groups, *kernel); padding is symmetric and fill is zeros.
// Activations: input (N, C_in, *spatial), output (N, C_out, *spatial).
struct ConvSpec {
  int rank = 2;  // number of spatial dimensions, 1..3
  int64_t in_channels = 1;
  int64_t out_channels = 1;
  int64_t groups = 1;
  std::vector<int64_t> kernel;    // [rank]
  std::vector<int64_t> stride;    // [rank]
  std::vector<int64_t> dilation;  // [rank]
  std::vector<PadPair> padding;   // [rank], per side
  PaddingFill fill = PaddingFill::zeros;
  bool bias = true;
  bool transposed = false;
  std::vector<int64_t> output_padding;  // [rank], transposed only (empty otherwise)
};

// Checks the invariants every consumer relies on: rank 1..3, vectors of length rank, positive sizes,
// non-negative padding, groups dividing both channel counts, (k-1)*d+1 fitting in 64 bits, and for transposed
// convs zeros fill and 0 <= output_padding < max(stride, dilation) (PyTorch's forward check).
Status validate(const ConvSpec& spec);

// Depthwise: every input channel convolved on its own, with `out/in` filters each (groups == in_channels > 1).
bool is_depthwise(const ConvSpec& spec);

// PyTorch weight shape: (C_out, C_in/G, *k) forward, (C_in, C_out/G, *k) transposed.
std::vector<int64_t> torch_weight_shape(const ConvSpec& spec);

// "Conv2d" or "ConvTranspose2d".
std::string torch_class_name(const ConvSpec& spec);

// "H (1, 1), W (0, 1)": per-side padding with axis letters, for explanations.
std::string describe_padding(const std::vector<PadPair>& pads, int rank);

// Axis letters for a spatial rank: "W", "HW", "DHW".
std::string_view spatial_letters(int rank);

}  // namespace convbridge
