// The whole-model front-end and planner on hand-written graph JSON ("convbridge.torch_export/1", as
// python/convbridge/_capture.py writes it): what parse_torch_export_graph builds, the clean errors it gives for
// malformed or hostile graphs (never a crash), and what plan_keras_model does with Flatten -> Linear.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cctype>
#include <numeric>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "convbridge/model/graph.hpp"
#include "convbridge/model/keras_model.hpp"

namespace convbridge::model {
namespace {

using nlohmann::json;

json ref(const std::string& name) { return {{"ref", name}}; }

json node(const std::string& name, const std::string& op, json args, json shapes, const std::string& module = "",
          const std::string& module_class = "", const std::string& source = "") {
  return {{"name", name},         {"op", op},         {"args", std::move(args)}, {"shapes", std::move(shapes)},
          {"module", module}, {"module_class", module_class}, {"source", source}};
}

json parameter(const std::string& name, json shape) {
  return {{"name", name}, {"target", name}, {"kind", "parameter"}, {"shape", std::move(shape)}};
}

json graph(json inputs, json parameters, json nodes, json outputs) {
  return {{"format", "convbridge.torch_export/1"}, {"model", "Tiny"},       {"inputs", std::move(inputs)},
          {"parameters", std::move(parameters)},     {"nodes", std::move(nodes)}, {"outputs", std::move(outputs)}};
}

json conv_node(const std::string& input = "x") {
  return node("conv2d", "aten.conv2d.default",
              {{"input", ref(input)}, {"weight", ref("w")}, {"bias", ref("b")}, {"stride", {1, 1}},
               {"padding", {0, 0}}, {"dilation", {1, 1}}, {"groups", 1}},
              {{1, 4, 4, 4}}, "conv", "torch.nn.modules.conv.Conv2d", "model.py:10: x = self.conv(x)");
}

json relu_node(const std::string& input = "conv2d", json shapes = {{1, 4, 4, 4}}) {
  return node("relu", "aten.relu.default", {{"self", ref(input)}}, std::move(shapes), "act",
              "torch.nn.modules.activation.ReLU");
}

json flatten_node(const std::string& input = "relu") {
  return node("flatten", "aten.flatten.using_ints", {{"self", ref(input)}, {"start_dim", 1}, {"end_dim", -1}},
              {{1, 64}}, "", "", "model.py:11: x = torch.flatten(x, 1)");
}

json linear_node(const std::string& input = "flatten") {
  return node("linear", "aten.linear.default", {{"input", ref(input)}, {"weight", ref("fc_w")}, {"bias", ref("fc_b")}},
              {{1, 5}}, "fc", "torch.nn.modules.linear.Linear");
}

json conv_params() {
  return {parameter("w", {4, 3, 3, 3}), parameter("b", {4}), parameter("fc_w", {5, 64}), parameter("fc_b", {5})};
}

json inputs(json shape = {1, 3, 6, 6}) { return json::array({{{"name", "x"}, {"shape", std::move(shape)}}}); }

// conv -> relu -> flatten -> linear, the linear returned.
json tiny() {
  return graph(inputs(), conv_params(), {conv_node(), relu_node(), flatten_node(), linear_node()}, ref("linear"));
}

Result<ModelGraph> parse(const json& value) { return parse_torch_export_graph(value.dump()); }

// The error message, or a failure if the graph parsed.
std::string parse_error(const json& value, ErrorCode code) {
  auto parsed = parse(value);
  if (parsed) {
    ADD_FAILURE() << "parsed: " << value.dump().substr(0, 300);
    return "";
  }
  EXPECT_EQ(parsed.error().code, code) << parsed.error().message;
  EXPECT_FALSE(parsed.error().message.empty());
  return parsed.error().message;
}

// The first error parse or plan gives (a graph may be well-formed and still not plannable), nullopt if neither.
std::optional<Error> rejected(const json& value) {
  auto parsed = parse(value);
  if (!parsed) return parsed.error();
  auto plan = plan_keras_model(*parsed);
  if (!plan) return plan.error();
  return std::nullopt;
}

// ---- what a valid graph becomes -------------------------------------------------------------------------------

TEST(ModelGraph, TinyGraphParsesIntoTheRightNodeKinds) {
  auto parsed = parse(tiny());
  ASSERT_TRUE(parsed) << parsed.error().message;
  const ModelGraph& g = *parsed;
  EXPECT_EQ(g.model_name, "Tiny");
  ASSERT_EQ(g.inputs.size(), 1u);
  EXPECT_EQ(g.inputs[0].shape, (std::vector<int64_t>{1, 3, 6, 6}));
  ASSERT_EQ(g.nodes.size(), 4u);
  EXPECT_TRUE(std::holds_alternative<ConvNode>(g.nodes[0].op));
  EXPECT_TRUE(std::holds_alternative<LayerNode>(g.nodes[1].op));
  EXPECT_TRUE(std::holds_alternative<ReshapeNode>(g.nodes[2].op));
  ASSERT_TRUE(std::holds_alternative<LinearNode>(g.nodes[3].op));
  const auto& conv = std::get<ConvNode>(g.nodes[0].op);
  EXPECT_EQ(conv.layer.spec.in_channels, 3);
  EXPECT_EQ(conv.layer.spec.out_channels, 4);
  EXPECT_EQ(g.nodes[0].parameters, (std::vector<std::pair<std::string, std::string>>{{"weight", "w"}, {"bias", "b"}}));
  const auto& linear = std::get<LinearNode>(g.nodes[3].op);
  EXPECT_EQ(linear.in_features, 64);
  EXPECT_EQ(linear.out_features, 5);
  EXPECT_TRUE(linear.bias);
  EXPECT_EQ(g.nodes[3].inputs.at(0).name, "flatten");
  EXPECT_EQ(g.outputs, std::vector<std::string>{"linear"});
  EXPECT_EQ(describe_node_origin(g.nodes[0]), "conv (Conv2d), model.py:10: x = self.conv(x)");
  EXPECT_EQ(describe_node_origin(g.nodes[2]), "the model's forward, model.py:11: x = torch.flatten(x, 1)");
}

TEST(ModelGraph, SplitOutputsAreNamedByTheirGetitems) {
  json split = node("split", "aten.split_with_sizes.default", {{"self", ref("x")}, {"split_sizes", {1, 2}}, {"dim", 1}},
                    {{1, 1, 6, 6}, {1, 2, 6, 6}});
  json first = node("getitem", "getitem", {{"self", ref("split")}, {"index", 0}}, {{1, 1, 6, 6}});
  json second = node("getitem_1", "getitem", {{"self", ref("split")}, {"index", 1}}, {{1, 2, 6, 6}});
  auto parsed = parse(
      graph(inputs(), json::array(), {split, first, second}, {{"tuple", {ref("getitem_1"), ref("getitem")}}}));
  ASSERT_TRUE(parsed) << parsed.error().message;
  ASSERT_EQ(parsed->nodes.size(), 1u);
  const auto& s = std::get<SplitNode>(parsed->nodes[0].op);
  EXPECT_EQ(s.dim, 1);
  EXPECT_EQ(s.sizes, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(parsed->nodes[0].outputs, (std::vector<std::string>{"getitem", "getitem_1"}));
  EXPECT_EQ(parsed->outputs, (std::vector<std::string>{"getitem_1", "getitem"}));
}

// ---- clean errors ---------------------------------------------------------------------------------------------

TEST(ModelGraph, MalformedJson) {
  for (const char* text :
       {"", "{", "[1, 2", "{\"format\": }", "null", "\xff\xfe", "{\"format\": \"convbridge.torch_export/1\""}) {
    auto parsed = parse_torch_export_graph(text);
    ASSERT_FALSE(parsed) << text;
    EXPECT_EQ(parsed.error().code, ErrorCode::syntax) << text;
  }
  EXPECT_NE(parse_torch_export_graph("{").error().message.find("not JSON"), std::string::npos);
}

TEST(ModelGraph, WrongFormatTag) {
  for (const json& format : {json("convbridge.torch_export/2"), json(1), json(nullptr), json::array()}) {
    json g = tiny();
    g["format"] = format;
    EXPECT_NE(parse_error(g, ErrorCode::syntax).find("not convbridge.torch_export/1"), std::string::npos);
  }
  json untagged = tiny();
  untagged.erase("format");
  parse_error(untagged, ErrorCode::syntax);
  EXPECT_FALSE(parse_torch_export_graph("[]"));
}

TEST(ModelGraph, MissingOrMistypedMembers) {
  for (const char* key : {"inputs", "parameters", "nodes", "outputs"}) {
    json g = tiny();
    g.erase(key);
    parse_error(g, ErrorCode::syntax);
    g[key] = 7;
    EXPECT_FALSE(parse(g)) << key;
  }
  json g = tiny();
  g["nodes"][1].erase("args");
  EXPECT_FALSE(parse(g));
  g = tiny();
  g["nodes"][1]["name"] = 3;
  EXPECT_FALSE(parse(g));
  g = tiny();
  g["nodes"][1]["shapes"] = "[[1, 4, 4, 4]]";
  EXPECT_FALSE(parse(g));
}

TEST(ModelGraph, NodeReadingAnUnknownTensor) {
  json g = graph(inputs(), conv_params(), {conv_node(), relu_node("nope")}, ref("relu"));
  const std::string message = parse_error(g, ErrorCode::invalid_argument);
  EXPECT_NE(message.find("relu reads nope"), std::string::npos) << message;
  // a tensor produced later is unknown too: nodes are in execution order
  json late = graph(inputs(), conv_params(), {relu_node(), conv_node()}, ref("relu"));
  parse_error(late, ErrorCode::invalid_argument);
}

TEST(ModelGraph, ReturningAnUnknownTensor) {
  json g = tiny();
  g["outputs"] = ref("nothing");
  EXPECT_NE(parse_error(g, ErrorCode::unsupported).find("nothing"), std::string::npos);
  g["outputs"] = ref("w");  // a parameter
  parse_error(g, ErrorCode::unsupported);
  g["outputs"] = nullptr;
  EXPECT_NE(parse_error(g, ErrorCode::invalid_argument).find("returns no tensor"), std::string::npos);
}

TEST(ModelGraph, NegativeAndHugeSizes) {
  for (const json& size : {json(-3), json(int64_t{1} << 40), json(int64_t{1} << 62), json(3.5), json("8"),
                           json(18446744073709551615ull)}) {
    json input_shape = {1, 3, 6, 6};
    input_shape[2] = size;
    std::string message = parse_error(graph(inputs(input_shape), conv_params(), {conv_node()}, ref("conv2d")),
                                      ErrorCode::invalid_argument);
    EXPECT_NE(message.find("size"), std::string::npos) << message;

    json params = conv_params();
    params[0]["shape"][1] = size;
    parse_error(graph(inputs(), params, {conv_node()}, ref("conv2d")), ErrorCode::invalid_argument);

    json conv = conv_node();
    conv["shapes"][0][3] = size;
    parse_error(graph(inputs(), conv_params(), {conv}, ref("conv2d")), ErrorCode::invalid_argument);
  }
  // every size allowed, the product is not
  json big = {int64_t{1} << 31, int64_t{1} << 31, 4, 4};
  EXPECT_NE(parse_error(graph(inputs(big), conv_params(), {conv_node()}, ref("conv2d")), ErrorCode::overflow)
                .find("too many elements"),
            std::string::npos);
}

TEST(ModelGraph, ShapeOfNineEntries) {
  json nine = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  EXPECT_NE(parse_error(graph(inputs(nine), json::array(), json::array(), ref("x")), ErrorCode::invalid_argument)
                .find("at most 8"),
            std::string::npos);
  json params = conv_params();
  params[1]["shape"] = nine;
  parse_error(graph(inputs(), params, {conv_node()}, ref("conv2d")), ErrorCode::invalid_argument);
  json relu = relu_node("conv2d", json::array({nine}));
  parse_error(graph(inputs(), conv_params(), {conv_node(), relu}, ref("relu")), ErrorCode::invalid_argument);
  json conv = conv_node();
  conv["args"]["stride"] = nine;
  EXPECT_FALSE(parse(graph(inputs(), conv_params(), {conv}, ref("conv2d"))));
}

TEST(ModelGraph, GetitemOfANonMultiOutputNode) {
  for (int index : {0, 1, -1}) {
    json item = node("getitem", "getitem", {{"self", ref("relu")}, {"index", index}}, {{1, 4, 4, 4}});
    json g = graph(inputs(), conv_params(), {conv_node(), relu_node(), item}, ref("getitem"));
    const std::string message = parse_error(g, ErrorCode::invalid_argument);
    EXPECT_NE(message.find("getitem"), std::string::npos) << message;
  }
  json of_input = node("getitem", "getitem", {{"self", ref("x")}, {"index", 0}}, {{1, 3, 6, 6}});
  parse_error(graph(inputs(), json::array(), {of_input}, ref("getitem")), ErrorCode::invalid_argument);
}

TEST(ModelGraph, GetitemOutOfRangeOrTwice) {
  json split = node("chunk", "aten.chunk.default", {{"self", ref("x")}, {"chunks", 2}, {"dim", 1}},
                    {{1, 2, 6, 6}, {1, 1, 6, 6}});
  for (int index : {2, -1, 1000000}) {
    json item = node("getitem", "getitem", {{"self", ref("chunk")}, {"index", index}}, {{1, 2, 6, 6}});
    parse_error(graph(inputs(), json::array(), {split, item}, ref("getitem")), ErrorCode::invalid_argument);
  }
  json first = node("getitem", "getitem", {{"self", ref("chunk")}, {"index", 0}}, {{1, 2, 6, 6}});
  json again = node("getitem_1", "getitem", {{"self", ref("chunk")}, {"index", 0}}, {{1, 2, 6, 6}});
  parse_error(graph(inputs(), json::array(), {split, first, again}, {{"tuple", {ref("getitem"), ref("getitem_1")}}}),
              ErrorCode::invalid_argument);
}

TEST(ModelGraph, UnknownOpNamesTheOpAndTheModule) {
  json cumsum = node("cumsum", "aten.cumsum.default", {{"self", ref("x")}, {"dim", 1}}, {{1, 3, 6, 6}}, "body.1",
                     "model.Block", "model.py:42: return x.cumsum(1)");
  const std::string message =
      parse_error(graph(inputs(), json::array(), {cumsum}, ref("cumsum")), ErrorCode::unsupported);
  EXPECT_NE(message.find("aten.cumsum.default"), std::string::npos) << message;
  EXPECT_NE(message.find("body.1 (Block)"), std::string::npos) << message;
  EXPECT_NE(message.find("model.py:42: return x.cumsum(1)"), std::string::npos) << message;
  json nonsense = node("n", "", json::object(), {{1, 3, 6, 6}});
  parse_error(graph(inputs(), json::array(), {nonsense}, ref("n")), ErrorCode::unsupported);
}

TEST(ModelGraph, DeeplyNestedOutputs) {
  for (int depth : {10, 65, 100000}) {
    std::string text;
    for (int i = 0; i < depth; ++i) text += "{\"tuple\": [";
    text += "{\"ref\": \"x\"}";
    for (int i = 0; i < depth; ++i) text += "]}";
    json g = graph(inputs(), json::array(), json::array(), nullptr);
    std::string document = g.dump();
    const std::string tail = "\"outputs\":null";
    const size_t at = document.find(tail);
    ASSERT_NE(at, std::string::npos);
    document.replace(at, tail.size(), "\"outputs\":" + text);
    auto parsed = parse_torch_export_graph(document);  // must return, not overflow the stack
    if (depth > 64) {  // deeper than any model returns; dump() and the emitter recurse
      ASSERT_FALSE(parsed);
      EXPECT_NE(parsed.error().message.find("levels deep"), std::string::npos) << parsed.error().message;
    } else if (parsed) {
      auto plan = plan_keras_model(*parsed);
      ASSERT_TRUE(plan) << plan.error().message;
      EXPECT_NE(emit_keras_model_source(*plan).find("((((("), std::string::npos);
    }
  }
}

TEST(ModelGraph, DeeplyNestedArguments) {
  std::string nested(200000, '[');
  nested += std::string(200000, ']');
  json g = graph(inputs(), conv_params(), {conv_node()}, ref("conv2d"));
  std::string document = g.dump();
  const std::string stride = "\"stride\":[1,1]";
  const size_t at = document.find(stride);
  ASSERT_NE(at, std::string::npos);
  document.replace(at, stride.size(), "\"stride\":" + nested);
  auto parsed = parse_torch_export_graph(document);
  ASSERT_FALSE(parsed);
  EXPECT_LT(parsed.error().message.size(), 4096u);
}

TEST(ModelGraph, MalformedOutputStructure) {
  for (const char* text : {R"({"tuple": [{"ref": "x"}, 5]})", R"({"list": [{"ref": "x"}, {"what": 1}]})",
                           R"({"dict": [[1, {"ref": "x"}]]})", R"({"dict": [["a"]]})",
                           R"({"dict": {"a": {"ref": "x"}}})",
                           R"({"tuple": {"ref": "x"}})", R"({"ref": 5})", R"("x")", R"(7)",
                           R"({"tuple": [{"ref": "x"}], "list": [{"ref": "x"}]})", R"({"ref": "x", "tuple": []})"}) {
    const json outputs = json::parse(text);
    auto parsed = parse(graph(inputs(), json::array(), json::array(), outputs));
    if (!parsed) {
      EXPECT_FALSE(parsed.error().message.empty());
      continue;
    }
    ADD_FAILURE() << "parsed outputs " << outputs.dump();
  }
}

TEST(ModelGraph, DeclaredShapesMustFitTheOp) {
  // an elementwise op that claims another rank or size
  for (const char* shape : {"[1, 64]", "[1, 4, 4]", "[1, 4, 4, 5]", "[]", "null"}) {
    json relu = relu_node("conv2d", json::array({json::parse(shape)}));
    EXPECT_TRUE(rejected(graph(inputs(), conv_params(), {conv_node(), relu}, ref("relu")))) << shape;
    // not even returned: the planner reads the declared shape all the same
    json unused = graph(inputs(), conv_params(), {conv_node(), relu}, ref("conv2d"));
    EXPECT_TRUE(rejected(unused)) << shape;
  }
  // a single-output op with no shape
  json shapeless = relu_node("conv2d", json::array());
  EXPECT_TRUE(rejected(graph(inputs(), conv_params(), {conv_node(), shapeless}, ref("conv2d"))));
  // a reshape that changes the element count
  json flatten = flatten_node();
  flatten["shapes"] = {{1, 65}};
  json params = conv_params();
  params[2]["shape"] = {5, 65};
  EXPECT_TRUE(rejected(graph(inputs(), params, {conv_node(), relu_node(), flatten, linear_node()}, ref("linear"))));
  // cat of different ranks
  json cat = node("cat", "aten.cat.default", {{"tensors", {ref("x"), ref("flat")}}, {"dim", 1}}, {{1, 111}});
  json flat = node("flat", "aten.flatten.using_ints", {{"self", ref("x")}, {"start_dim", 1}, {"end_dim", -1}},
                   {{1, 108}});
  EXPECT_TRUE(rejected(graph(inputs(), json::array(), {flat, cat}, ref("cat"))));
  // a permute that claims a different rank
  json permute = node("permute", "aten.permute.default", {{"self", ref("x")}, {"dims", {0, 2, 3, 1}}}, {{1, 6, 18}});
  EXPECT_TRUE(rejected(graph(inputs(), json::array(), {permute}, ref("permute"))));
}

TEST(ModelGraph, ParameterShapesMustFitTheLayer) {
  json params = conv_params();
  params[1]["shape"] = json::array({3});  // the conv's bias, 4 channels
  EXPECT_TRUE(rejected(graph(inputs(), params, {conv_node()}, ref("conv2d"))));
  json g = tiny();
  g["parameters"][3]["shape"] = json::array({6});  // the linear's bias, 5 outputs
  EXPECT_TRUE(rejected(g));
  json bn = node("batch_norm", "aten.batch_norm.default",
                 {{"input", ref("x")}, {"weight", ref("g")}, {"bias", ref("b")}, {"running_mean", ref("m")},
                  {"running_var", ref("v")}, {"training", false}, {"momentum", 0.1}, {"eps", 1e-5},
                  {"cudnn_enabled", true}},
                 {{1, 3, 6, 6}});
  json bn_params = {parameter("g", {3}), parameter("b", {3}), parameter("m", {3}), parameter("v", {3})};
  EXPECT_FALSE(rejected(graph(inputs(), bn_params, {bn}, ref("batch_norm"))));
  for (int role = 0; role < 4; ++role) {
    json wrong = bn_params;
    wrong[role]["shape"] = json::array({2});
    EXPECT_TRUE(rejected(graph(inputs(), wrong, {bn}, ref("batch_norm")))) << role;
  }
}

// ---- the planner ------------------------------------------------------------------------------------------------

TEST(KerasModelPlan, FlattenLinearIsFoldedIntoTheKernel) {
  auto parsed = parse(tiny());
  ASSERT_TRUE(parsed) << parsed.error().message;
  auto plan = plan_keras_model(*parsed);
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(plan->runtime_transposes, 0);
  const TargetLine* dense = nullptr;
  for (const TargetLine& line : plan->lines) {
    EXPECT_FALSE(line.runtime_transpose) << line.expression;
    if (line.expression.find("layers.Dense(") != std::string::npos) dense = &line;
  }
  ASSERT_NE(dense, nullptr);
  ASSERT_EQ(dense->weights.size(), 2u);
  const WeightLayoutChange& change = dense->weights[0].change;
  EXPECT_EQ(dense->weights[0].parameter, "fc_w");
  EXPECT_EQ(change.from_shape, (std::vector<int64_t>{5, 64}));
  EXPECT_EQ(change.reshape, (std::vector<int64_t>{5, 4, 4, 4}));  // (out, C, H, W)
  EXPECT_EQ(change.permutation, (std::vector<int>{2, 3, 1, 0}));  // -> (H, W, C, out)
  EXPECT_EQ(change.to_shape, (std::vector<int64_t>{64, 5}));

  // Row r of the Keras kernel is feature r of Keras' channels_last flatten, (h, w, c) -> h*16 + w*4 + c; it must
  // hold PyTorch's weight column (c, h, w) -> c*16 + h*4 + w, for every output o.
  std::vector<double> weight(5 * 64);
  std::iota(weight.begin(), weight.end(), 0.0);
  const std::vector<double> kernel = convert_target_weight(*plan, dense->weights[0], weight);
  ASSERT_EQ(kernel.size(), weight.size());
  for (int h = 0; h < 4; ++h) {
    for (int w = 0; w < 4; ++w) {
      for (int c = 0; c < 4; ++c) {
        for (int o = 0; o < 5; ++o) {
          const auto keras_row = static_cast<size_t>(h * 16 + w * 4 + c);
          const auto torch_column = static_cast<size_t>(c * 16 + h * 4 + w);
          EXPECT_EQ(kernel[keras_row * 5 + static_cast<size_t>(o)], weight[static_cast<size_t>(o) * 64 + torch_column]);
        }
      }
    }
  }
  const std::string source = emit_keras_model_source(*plan);
  EXPECT_NE(source.find("layers.Flatten("), std::string::npos);
  EXPECT_NE(source.find("layers.Dense(5, use_bias=True"), std::string::npos);
  EXPECT_EQ(source.find("ops.transpose"), std::string::npos);
  const std::string explanation = explain_keras_model(*plan);
  EXPECT_NE(explanation.find("0 runtime transposes"), std::string::npos);
  EXPECT_NE(explanation.find("folded"), std::string::npos);
}

TEST(KerasModelPlan, FlattenReturnedDirectlyTransposesOnce) {
  auto parsed = parse(graph(inputs(), conv_params(), {conv_node(), relu_node(), flatten_node()}, ref("flatten")));
  ASSERT_TRUE(parsed) << parsed.error().message;
  auto plan = plan_keras_model(*parsed);
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(plan->runtime_transposes, 1);
  int transposing = 0;
  for (const TargetLine& line : plan->lines) transposing += line.runtime_transpose ? 1 : 0;
  EXPECT_EQ(transposing, 1);
  EXPECT_NE(emit_keras_model_source(*plan).find("ops.transpose("), std::string::npos);
}

TEST(KerasModelPlan, FlattenReadByALinearAndReturnedIsNotFolded) {
  // The Linear could take the permutation, but the returned tensor must be in PyTorch's order: one transpose.
  auto parsed = parse(graph(inputs(), conv_params(), {conv_node(), relu_node(), flatten_node(), linear_node()},
                            {{"tuple", {ref("linear"), ref("flatten")}}}));
  ASSERT_TRUE(parsed) << parsed.error().message;
  auto plan = plan_keras_model(*parsed);
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(plan->runtime_transposes, 1);
  EXPECT_EQ(plan->output_variables.size(), 2u);
}

TEST(KerasModelPlan, NamesFromTheGraphCannotBreakModelPy) {
  json g = tiny();
  g["model"] = "Tiny\"\"\"\nimport os";
  g["inputs"][0]["name"] = "x\"";
  g["nodes"][0]["args"]["input"] = ref("x\"");
  g["nodes"][0]["module"] = "conv\", name=\"evil\")\nos.system('x')  #";
  g["nodes"][1]["module"] = "act\\";
  auto parsed = parse(g);
  ASSERT_TRUE(parsed) << parsed.error().message;
  auto plan = plan_keras_model(*parsed);
  ASSERT_TRUE(plan) << plan.error().message;
  const std::string source = emit_keras_model_source(*plan);
  // nothing the graph names starts a line of its own, ends a string early or escapes its quote
  EXPECT_EQ(source.find("\nos.system"), std::string::npos) << source;
  EXPECT_EQ(source.find("\nimport os", source.find("\nimport os") + 1), std::string::npos) << source;
  EXPECT_EQ(source.find("Tiny\"\"\""), std::string::npos) << source;
  EXPECT_EQ(source.find("act\\"), std::string::npos) << source;
  EXPECT_EQ(source.find("evil\""), std::string::npos) << source;
  for (const TargetLine& line : plan->lines) {
    for (const char c : line.layer_name) {
      EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-') << line.layer_name;
    }
  }
}

}  // namespace
}  // namespace convbridge::model
