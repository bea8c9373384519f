#include <gtest/gtest.h>

#include "convbridge/frontends.hpp"

namespace convbridge {
namespace {

TorchConvLayer parse_ok(const std::string& text) {
  auto layer = parse_pytorch_layer(text);
  EXPECT_TRUE(layer) << text << ": " << (layer ? "" : layer.error().message);
  return layer ? *layer : TorchConvLayer{};
}

void expect_error(const std::string& text, ErrorCode code, const std::string& fragment) {
  auto layer = parse_pytorch_layer(text);
  ASSERT_FALSE(layer) << text << " parsed but PyTorch rejects it";
  EXPECT_EQ(layer.error().code, code) << text << ": " << layer.error().message;
  EXPECT_NE(layer.error().message.find(fragment), std::string::npos)
      << text << ": message \"" << layer.error().message << "\" lacks \"" << fragment << "\"";
}

TEST(PytorchArgs, PositionalArguments) {
  const ConvSpec s = parse_ok("nn.Conv2d(3, 16, 3, 2, 1, 1, 1, False, 'reflect')").spec;
  EXPECT_EQ(s.rank, 2);
  EXPECT_EQ(s.in_channels, 3);
  EXPECT_EQ(s.out_channels, 16);
  EXPECT_EQ(s.kernel, (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(s.stride, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(s.padding, (std::vector<PadPair>{{1, 1}, {1, 1}}));
  EXPECT_FALSE(s.bias);
  EXPECT_EQ(s.fill, PaddingFill::reflect);
}

TEST(PytorchArgs, KeywordsTuplesAndPrefixes) {
  const ConvSpec s =
      parse_ok("torch.nn.Conv3d(in_channels=4, out_channels=8, kernel_size=(3, 1, 2), stride=[1, 2, 1], "
               "padding=(1, 0, 1), dilation=(2, 1, 1), groups=2, bias=True,)")
          .spec;
  EXPECT_EQ(s.rank, 3);
  EXPECT_EQ(s.kernel, (std::vector<int64_t>{3, 1, 2}));
  EXPECT_EQ(s.stride, (std::vector<int64_t>{1, 2, 1}));
  EXPECT_EQ(s.padding, (std::vector<PadPair>{{1, 1}, {0, 0}, {1, 1}}));
  EXPECT_EQ(s.dilation, (std::vector<int64_t>{2, 1, 1}));
  EXPECT_EQ(s.groups, 2);
  EXPECT_EQ(parse_ok("Conv1d(2, 2, (3))").spec.kernel, (std::vector<int64_t>{3}));  // (3) is an int in Python
  EXPECT_EQ(parse_ok("Conv1d(2, 2, (3,))").spec.kernel, (std::vector<int64_t>{3}));
  EXPECT_EQ(parse_ok("nn.Conv2d(3, 16, 3, device='cpu', dtype=torch.float32)").spec.out_channels, 16);
}

TEST(PytorchArgs, SameSplitsTheOddUnitAfter) {
  EXPECT_EQ(parse_ok("nn.Conv2d(3, 3, 4, padding='same')").spec.padding, (std::vector<PadPair>{{1, 2}, {1, 2}}));
  EXPECT_EQ(parse_ok("nn.Conv2d(3, 3, (4, 2), padding='same', dilation=(3, 1))").spec.padding,
            (std::vector<PadPair>{{4, 5}, {0, 1}}));
  EXPECT_EQ(parse_ok("nn.Conv1d(3, 3, 5, padding='valid')").spec.padding, (std::vector<PadPair>{{0, 0}}));
}

TEST(PytorchArgs, BiasIsTruthiness) {
  EXPECT_TRUE(parse_ok("nn.Conv1d(1, 1, 1, bias=1)").spec.bias);
  EXPECT_FALSE(parse_ok("nn.Conv1d(1, 1, 1, bias=0)").spec.bias);
  EXPECT_FALSE(parse_ok("nn.Conv1d(1, 1, 1, bias=None)").spec.bias);
  EXPECT_TRUE(parse_ok("nn.Conv1d(1, 1, 1)").spec.bias);
}

TEST(PytorchArgs, RejectsWhatPytorchRejects) {
  expect_error("nn.Conv2d(3, 16, 3, stride=2, padding='same')", ErrorCode::invalid_argument,
               "not supported for strided convolutions");
  expect_error("nn.Conv2d(3, 16, 3, padding='full')", ErrorCode::invalid_argument, "no 'full' padding");
  expect_error("nn.Conv2d(3, 16, 3, groups=2)", ErrorCode::invalid_argument, "in_channels=3 must be divisible by groups=2");
  expect_error("nn.Conv2d(4, 6, 3, groups=4)", ErrorCode::invalid_argument, "out_channels=6 must be divisible by groups=4");
  expect_error("nn.Conv2d(4, 6, 3, groups=0)", ErrorCode::invalid_argument, "groups=0");
  expect_error("nn.Conv2d(3, 16, 3, padding_mode='foo')", ErrorCode::invalid_argument, "padding_mode='foo'");
  expect_error("nn.Conv2d(3, 16, 3, stride=0)", ErrorCode::invalid_argument, "stride=0 must be positive");
  expect_error("nn.Conv2d(3, 16, 3, padding=-1)", ErrorCode::invalid_argument, "padding=-1");
  expect_error("nn.Conv2d(3, 16, 3, dilation=(1, 0))", ErrorCode::invalid_argument, "dilation=(1, 0)");
  expect_error("nn.Conv2d(3, 16, 0)", ErrorCode::invalid_argument, "kernel_size=0");
  expect_error("nn.Conv2d(3, 16, (3, 3, 3))", ErrorCode::invalid_argument, "kernel_size=(3, 3, 3) has 3 entries");
  expect_error("nn.Conv2d(0, 16, 3)", ErrorCode::invalid_argument, "in_channels=0");
  expect_error("nn.Conv2d(3, 16, 3.5)", ErrorCode::syntax, "only decimal integers");
  expect_error("nn.Conv2d(3, 16, 'x')", ErrorCode::invalid_argument, "kernel_size='x' must be an int");
}

TEST(PytorchArgs, ConvTransposeSignature) {
  // ConvTransposeNd(in, out, k, stride, padding, output_padding, groups, bias, dilation, padding_mode)
  const ConvSpec s = parse_ok("nn.ConvTranspose2d(4, 6, 3, 2, 1, 1, 2, False, 2)").spec;
  EXPECT_TRUE(s.transposed);
  EXPECT_EQ(s.stride, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(s.padding, (std::vector<PadPair>{{1, 1}, {1, 1}}));
  EXPECT_EQ(s.output_padding, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(s.groups, 2);
  EXPECT_FALSE(s.bias);
  EXPECT_EQ(s.dilation, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(torch_weight_shape(s), (std::vector<int64_t>{4, 3, 3, 3}));  // (in, out/groups, kh, kw)
  // output_padding may reach the dilation when it is larger than the stride.
  EXPECT_EQ(parse_ok("nn.ConvTranspose1d(2, 2, 3, dilation=3, output_padding=2)").spec.output_padding,
            (std::vector<int64_t>{2}));
}

TEST(PytorchArgs, ConvTransposeRejects) {
  expect_error("nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=2)", ErrorCode::invalid_argument,
               "output_padding=2 must be smaller than either stride=2 or dilation=1");
  expect_error("nn.ConvTranspose2d(3, 4, 3, output_padding=-1)", ErrorCode::invalid_argument,
               "negative output_padding");
  expect_error("nn.ConvTranspose2d(3, 4, 3, padding_mode='reflect')", ErrorCode::invalid_argument,
               "only 'zeros' padding mode is supported for ConvTranspose2d");
  expect_error("nn.ConvTranspose2d(3, 4, 3, padding='same')", ErrorCode::invalid_argument,
               "padding='same' is not accepted by ConvTranspose2d");
  expect_error("nn.ConvTranspose2d(3, 4, 3, dilation=(1, 2), dilation_rate=2)", ErrorCode::unknown_argument,
               "did you mean 'dilation'?");
  expect_error("nn.ConvTranspose3d(3, 4)", ErrorCode::invalid_argument, "output_padding=0, groups=1");
}

TEST(PytorchArgs, PythonCallRules) {
  expect_error("nn.Conv2d(3, 16, 3, strides=2)", ErrorCode::unknown_argument, "did you mean 'stride'?");
  expect_error("nn.Conv2d(3, 16, 3, paddin=1)", ErrorCode::unknown_argument, "did you mean 'padding'?");
  expect_error("nn.Conv2d(3, 16, 3, 1, stride=2)", ErrorCode::invalid_argument, "multiple values for argument 'stride'");
  expect_error("nn.Conv2d(3, 16)", ErrorCode::invalid_argument, "missing the required argument 'kernel_size'");
  expect_error("nn.Conv2d(3, kernel_size=3, 16)", ErrorCode::syntax, "positional argument follows keyword");
  expect_error("nn.Conv2d(3, 16, 3, 1, 0, 1, 1, True, 'zeros', None, None, 5)", ErrorCode::invalid_argument,
               "at most 11 arguments");
  expect_error("nn.Conv2d(3, 16, 3", ErrorCode::syntax, "expected ',' or ')'");
  expect_error("", ErrorCode::syntax, "empty");
  expect_error("nn.Conv2D(3, 16, 3)", ErrorCode::unsupported, "Keras layer");
  expect_error("nn.Linear(3, 16)", ErrorCode::unknown_argument, "unknown layer 'nn.Linear'");
  expect_error("nn.Conv2d(3, 16, 99999999999999999999)", ErrorCode::overflow, "does not fit");
  expect_error("nn.Conv2d(3, 16, 3) extra", ErrorCode::syntax, "after the closing ')'");
  expect_error("nn.Conv2d(3, 16, 3, padding_mode='zeros)", ErrorCode::syntax, "unterminated string");
  expect_error("nn.Conv2d(3, 16, ((((((((((3))))))))))", ErrorCode::syntax, "nested deeper");
  expect_error("nn.Conv2d(3, 16, 4294967296)", ErrorCode::invalid_argument, "too large");
  expect_error(std::string(70000, ' '), ErrorCode::syntax, "limit is");
}

// Integer literals follow Python's grammar: nonzerodigit (["_"] digit)* | "0"+ (["_"] "0")*.
TEST(PytorchArgs, IntegerLiteralsAreAsPythonReadsThem) {
  EXPECT_EQ(parse_ok("nn.Conv2d(1_000, 8, 3)").spec.in_channels, 1000);
  EXPECT_EQ(parse_ok("nn.Conv2d(4, 8, 3, padding=00)").spec.padding, (std::vector<PadPair>{{0, 0}, {0, 0}}));
  EXPECT_EQ(parse_ok("nn.Conv2d(4, 8, 3, padding=0_0)").spec.padding, (std::vector<PadPair>{{0, 0}, {0, 0}}));
  EXPECT_EQ(parse_ok("nn.Conv2d(4, 8, 3, padding=-0)").spec.padding, (std::vector<PadPair>{{0, 0}, {0, 0}}));
  EXPECT_EQ(parse_ok("nn.Conv2d(4, 8, 3, stride=+2)").spec.stride, (std::vector<int64_t>{2, 2}));
  const std::string leading_zeros = "leading zeros in decimal integer literals are not permitted";
  expect_error("nn.Conv2d(0078, 8, 3)", ErrorCode::syntax, "in_channels: 0078 is not a Python integer");
  expect_error("nn.Conv2d(0078, 8, 3)", ErrorCode::syntax, leading_zeros);
  expect_error("nn.Conv2d(4, 8, 0_7)", ErrorCode::syntax, leading_zeros);
  expect_error("nn.Conv2d(4, 8, 3, padding=-01)", ErrorCode::syntax, "padding: -01 is not a Python integer");
  expect_error("nn.Conv2d(4, 8, 3, padding=00_1)", ErrorCode::syntax, leading_zeros);
  expect_error("nn.Conv2d(1__0, 8, 3)", ErrorCode::syntax, "in_channels: 1__0 is not a Python integer");
  expect_error("nn.Conv2d(4, 8, 3_)", ErrorCode::syntax, "an underscore may only separate two digits");
  expect_error("nn.Conv2d(4, 8, 3, padding=0__0)", ErrorCode::syntax, "an underscore may only separate two digits");
  expect_error("nn.Conv2d(4, 8, 3, padding=0_)", ErrorCode::syntax, "an underscore may only separate two digits");
  // Other bases and floats are Python but not accepted for sizes.
  for (const char* literal : {"0x3", "0o3", "0b11", "3.0", "3e0", "3j"}) {
    expect_error(std::string("nn.Conv2d(4, 8, ") + literal + ")", ErrorCode::syntax,
                 std::string("kernel_size: only decimal integers are accepted here, not ") + literal);
  }
}

// Values inside a nested call are never read, so any Python number is accepted there (Keras regularizers and
// initializers take floats), and a malformed one is still a syntax error.
TEST(KerasArgs, NestedCallsTakeAnyPythonNumber) {
  auto layer = parse_keras_layer(
      "keras.layers.Conv2D(16, 3, kernel_regularizer=keras.regularizers.L2(1e-4), "
      "bias_regularizer=keras.regularizers.L1L2(l1=.01, l2=-1.5E+3), activity_regularizer=L2(1_0.0_1), "
      "kernel_initializer=keras.initializers.RandomNormal(stddev=0.02, seed=99999999999999999999), "
      "kernel_constraint=keras.constraints.MaxNorm(2.))");
  EXPECT_TRUE(layer) << layer.error().message;
  for (const char* bad : {"1.5.5", "1e", "1e+", "1__0", "1._5", "0078"}) {
    auto rejected = parse_keras_layer(std::string("keras.layers.Conv2D(16, 3, kernel_regularizer=L2(") + bad + "))");
    ASSERT_FALSE(rejected) << bad;
    EXPECT_EQ(rejected.error().code, ErrorCode::syntax) << rejected.error().message;
    EXPECT_EQ(rejected.error().message.rfind("kernel_regularizer: ", 0), 0u) << rejected.error().message;
  }
  // Floats stay refused where the value is read.
  EXPECT_FALSE(parse_keras_layer("keras.layers.Conv2D(16, 3, strides=1.0)"));
}

TEST(PytorchArgs, SyntaxErrorsPointAtTheColumn) {
  auto layer = parse_pytorch_layer("nn.Conv2d(3 16, 3)");
  ASSERT_FALSE(layer);
  EXPECT_NE(layer.error().message.find("(column 13)"), std::string::npos) << layer.error().message;
  EXPECT_NE(layer.error().message.find("\n  nn.Conv2d(3 16, 3)\n              ^"), std::string::npos)
      << layer.error().message;
}

TEST(InputShape, ParsesAndRejects) {
  EXPECT_EQ(*parse_input_shape("1,3,32,32"), (std::vector<int64_t>{1, 3, 32, 32}));
  EXPECT_EQ(*parse_input_shape("(1, 3, 32)"), (std::vector<int64_t>{1, 3, 32}));
  EXPECT_FALSE(parse_input_shape("1,3,0,4"));
  EXPECT_FALSE(parse_input_shape("1,3,x"));
  EXPECT_FALSE(parse_input_shape(""));
  EXPECT_FALSE(parse_input_shape("1,-3"));
  EXPECT_FALSE(parse_input_shape("1,3,99999999999999999999999"));
}

}  // namespace
}  // namespace convbridge
