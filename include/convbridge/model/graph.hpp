// A whole model as a graph over the op set: the nodes a front-end parsed (convs, the op-set layers, and the tensor
// ops between them: arithmetic, concatenation, views, reductions), the tensors between them with their shapes in
// the source framework's layout, and the parameters the nodes read. Front-ends build it (PyTorch:
// src/frontends/pytorch/export_graph.cpp, from what torch.export captured); model planners read it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "convbridge/frontends.hpp"
#include "convbridge/layer_plan.hpp"
#include "convbridge/result.hpp"

namespace convbridge::model {

// nn.ConvNd / nn.ConvTransposeNd as PyTorch computes it; reads parameters "weight" (and "bias").
struct ConvNode {
  TorchConvLayer layer;
};
// A Keras convolution layer (Conv, DepthwiseConv, SeparableConv, ConvTranspose) as Keras computes it; reads its
// Keras weights by name ("kernel", "bias"; "depthwise_kernel", "pointwise_kernel").
struct KerasConvNode {
  KerasConvLayer layer;
};
// A layer of the op set (pooling, normalization, resizing, padding, pixel shuffle, activation), parsed by the
// framework's own layer front-end from the constructor its call corresponds to; reads the parameters its
// LayerPlan's source weights name ("weight", "running_mean", ...).
struct LayerNode {
  OpLayer layer;
};
// y = x W^T + b over the last axis; reads "weight" (out, in) and "bias". x @ W (matmul with a parameter) is the
// same with weight_in_out: W is (in, out) and there is no bias.
struct LinearNode {
  int64_t in_features = 0;
  int64_t out_features = 0;
  bool bias = true;
  bool weight_in_out = false;
};
// a @ b of two activations over their last two axes (batched).
struct MatmulNode {};
// Layer normalization over the last normalized_shape.size() axes; reads "weight" and "bias" when affine.
struct LayerNormNode {
  std::vector<int64_t> normalized_shape;
  double eps = 1e-5;
  bool weight = false;
  bool bias = false;
};
// maximum, minimum and average come from Keras' merge layers (Maximum, Minimum, Average).
enum class Arithmetic { add, subtract, multiply, divide, maximum, minimum, average };
// "add", "subtract", "multiply", "divide", "maximum", "minimum", "average" (keras.ops names, where Keras has one)
std::string_view arithmetic_name(Arithmetic op);
// a (op) b with broadcasting; each operand a tensor, a parameter or a number (Operand). Keras' merge layers take
// any number of tensors: the op folds left over them (average: their sum divided by their count).
struct ArithmeticNode {
  Arithmetic op = Arithmetic::add;
};
// torch.cat along dim; with new_axis, torch.stack (the inputs gain an axis at dim).
struct ConcatNode {
  int dim = 0;
  bool new_axis = false;
};
// Splits along dim into pieces of these sizes (chunk, split, split_with_sizes, unbind); one output per piece.
struct SplitNode {
  int dim = 0;
  std::vector<int64_t> sizes;
};
// x[..., start:end:step, ...] along dim (end already clamped to the size, or kToTheEnd where the size varies).
struct SliceNode {
  static constexpr int64_t kToTheEnd = INT64_MAX;
  int dim = 0;
  int64_t start = 0;
  int64_t end = 0;
  int64_t step = 1;
};
// x.select(dim, index): the axis disappears.
struct SelectNode {
  int dim = 0;
  int64_t index = 0;
};
// permute / transpose: output axis i is input axis perm[i].
struct PermuteNode {
  std::vector<int> perm;
};
// view / reshape / flatten / squeeze / unsqueeze: the output shape (the node's output_shapes[0]) says it all.
struct ReshapeNode {};
enum class Reduction { mean, sum, max, min };
std::string_view reduction_name(Reduction reduction);  // keras.ops names: "mean", "sum", "max", "min"
struct ReduceNode {
  Reduction reduction = Reduction::mean;
  std::vector<int> dims;  // non-negative, sorted
  bool keepdim = false;
};
struct SoftmaxNode {
  int dim = 0;
  bool log = false;
};
// An elementwise function of one tensor, named as keras.ops names it ("abs", "exp", "sqrt", "rsqrt", "power",
// "clip", "maximum", "minimum"), with its number arguments (power's exponent, clip's bounds).
struct ElementwiseNode {
  std::string function;
  std::vector<double> arguments;
};
// x * scale + offset (Keras Rescaling with numbers), in that order of operations.
struct ScaleOffsetNode {
  double scale = 1.0;
  double offset = 0.0;
};
// Keras Normalization over the last axis: (x - mean) / max(sqrt(variance), 1e-7), or with invert
// mean + x * max(sqrt(variance), 1e-7); reads parameters "mean" and "variance" (shape (C,)), which are the
// layer's weights or constants from its config (Parameter::value).
struct StandardizeNode {
  bool invert = false;
  double epsilon = 1e-7;  // keras.backend.epsilon()
};
// Dropout and stochastic depth in eval, contiguous, clone, alias: the output is the input.
struct IdentityNode {};

using NodeOp = std::variant<ConvNode, KerasConvNode, LayerNode, LinearNode, MatmulNode, LayerNormNode, ArithmeticNode, ConcatNode, SplitNode,
                            SliceNode, SelectNode, PermuteNode, ReshapeNode, ReduceNode, SoftmaxNode, ElementwiseNode,
                            ScaleOffsetNode, StandardizeNode, IdentityNode>;

// One input of a node: a tensor (a graph input or a node's output), a parameter, or a number.
struct Operand {
  enum class Kind { tensor, parameter, number };
  Kind kind = Kind::tensor;
  std::string name;  // tensor or parameter name
  double number = 0.0;
};

struct GraphNode {
  std::string name;          // unique, as the capture named it ("conv2d_3")
  std::string source_op;     // what was captured ("aten.conv2d.default")
  std::string module;        // module path ("layer1.0.conv1"), "" for the root module
  std::string module_class;  // "torch.nn.modules.conv.Conv2d"
  std::string source;        // "file.py:42: x = self.conv1(x)", when the capture knows it
  NodeOp op;
  std::vector<Operand> inputs;  // the tensors and numbers it computes on, in order
  // The parameters it reads, by role ("weight", "bias", "running_mean", ...), in the role order of the op.
  std::vector<std::pair<std::string, std::string>> parameters;
  std::vector<std::string> outputs;                 // tensor names, one per output
  std::vector<std::vector<int64_t>> output_shapes;  // source layout, batch included; kUnknownSize: varies
  // Per output, per axis: for a size that varies with the input size, its symbolic expression ("s53",
  // "((s53//2)) + 1"; equal text means equal size), else "".
  std::vector<std::vector<std::string>> output_symbols;
};

struct GraphTensor {
  std::string name;
  std::vector<int64_t> shape;  // source layout (PyTorch: (N, C, *spatial)); kUnknownSize where it varies
  std::vector<std::string> symbols;  // as GraphNode::output_symbols
};

struct Parameter {
  std::string name;    // as nodes refer to it ("p_layer1_0_conv1_weight")
  std::string target;  // the source model's own name ("layer1.0.conv1.weight")
  std::vector<int64_t> shape;
  // A constant of the model's own config (Keras Normalization(mean=...)), row-major; empty for a weight.
  std::vector<double> value;
};

struct ModelGraph {
  Framework framework = Framework::pytorch;
  std::string model_name;  // the source class, e.g. "ResNet"
  std::vector<GraphTensor> inputs;
  std::vector<Parameter> parameters;
  std::vector<GraphNode> nodes;  // in execution order
  std::vector<std::string> outputs;  // the tensors the model returns, flattened in order
  std::string output_structure;      // the outputs' nesting (tuple/list/dict), JSON as the capture wrote it
};

// "layer1.0.conv1 (Conv2d), model.py:42: x = self.conv1(x)": where a node came from, for messages.
std::string describe_node_origin(const GraphNode& node);

// Parses the graph JSON python/convbridge/_capture.py writes from torch.export ("convbridge.torch_export/1").
// Each captured ATen call becomes a node; a call outside what convbridge converts is an `unsupported` error
// naming the op, the module path and the source line. Checks every size and reference, that each declared output
// shape is what its op computes (the planner lays tensors out by them), the outputs' structure, and a nesting depth
// of at most 64 levels.
Result<ModelGraph> parse_torch_export_graph(std::string_view json_text);

// Parses a Keras 3 model as data ("convbridge.keras_model/1", python/convbridge/_keras_capture.py): the model's
// own serialized config (keras.saving.serialize_keras_object, the config.json of a .keras file) and the shape of
// every weight, per layer. Functional and Sequential models, nested ones inlined; each layer call becomes a node
// and every shape is computed from the inputs' and checked against the shapes Keras recorded. Nothing the config
// names is imported or run: a layer outside what convbridge converts (Lambda, a custom class) is an `unsupported`
// error naming the layer.
Result<ModelGraph> parse_keras_model_config(std::string_view json_text);

}  // namespace convbridge::model
