#include "cli.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <optional>
#include <sstream>
#include <string>

#include "convbridge/emit.hpp"
#include "convbridge/engine.hpp"
#include "convbridge/frontends.hpp"
#include "convbridge/planner.hpp"

namespace convbridge::cli {
namespace {

constexpr int kExitInvalidInput = 2;
constexpr int kExitVerificationFailed = 1;

constexpr const char* kExamples = R"TXT(Examples:
  convbridge translate "nn.Conv2d(3, 16, kernel_size=3, stride=2, padding=1)"
  convbridge translate "nn.Conv2d(3, 16, 3, stride=2, padding=1)" --input-shape 1,3,224,224
  convbridge translate "torch.nn.Conv1d(8, 8, 5, padding='same', padding_mode='reflect')" --emit keras > layer.py
  convbridge translate "nn.Conv2d(32, 64, 3, groups=32, dilation=2, stride=2)" --emit tf
  convbridge translate "nn.Conv3d(4, 8, (3, 1, 2), padding=(1, 0, 1))" --emit json

Exit status: 0 success, 1 the reference engine found a mismatch (a convbridge bug: please report it),
2 invalid layer text, input shape or arguments.)TXT";

CliResult fail(const std::string& message) {
  return CliResult{kExitInvalidInput, "", fmt::format("convbridge: error: {}\n", message)};
}

struct TranslateOptions {
  std::string layer_text;
  std::optional<std::string> input_shape_text;  // given (even empty) or not
  std::string emit = "explain";
  bool verify = true;
  uint64_t seed = 0;
};

CliResult run_translate(const TranslateOptions& options) {
  auto layer = convbridge::parse_pytorch_layer(options.layer_text);
  if (!layer) return fail(layer.error().message);
  std::optional<std::vector<int64_t>> input_shape;
  if (options.input_shape_text) {
    auto shape = convbridge::parse_input_shape(*options.input_shape_text);
    if (!shape) return fail(shape.error().message);
    input_shape = *shape;
  }
  auto plan = convbridge::plan_torch_to_tf(*layer, input_shape);
  if (!plan) return fail(plan.error().message);

  // Verify before printing anything, so a wrong plan never reaches a file the user redirects into.
  std::optional<convbridge::VerificationReport> report;
  if (options.verify) {
    auto verified = convbridge::verify_plan(*plan, options.seed);
    if (!verified) return fail(verified.error().message);
    report = *verified;
    if (!report->cases.empty() && !report->passed()) {
      return CliResult{kExitVerificationFailed, "",
                       convbridge::describe_verification(*report) +
                           "convbridge: error: the plan does not reproduce PyTorch; this is a convbridge bug, "
                           "please report the layer text above\n"};
    }
  }

  std::string output;
  if (options.emit == "keras") {
    output = convbridge::emit_keras(*plan);
  } else if (options.emit == "tf") {
    output = convbridge::emit_tf_nn(*plan);
  } else if (options.emit == "json") {
    output = convbridge::emit_json(*plan);
  } else {
    output = convbridge::explain_plan(*plan);
    output += "\nKeras code:\n\n" + convbridge::emit_keras(*plan) + "\n";
    output += report ? convbridge::describe_verification(*report) : std::string("Verification: skipped (--no-verify)\n");
  }
  return CliResult{0, std::move(output), ""};
}

}  // namespace

CliResult run(const std::vector<std::string>& arguments) {
  CLI::App app{"convbridge: translate convolution layers between PyTorch and TensorFlow/Keras exactly, explain "
               "every difference, and verify the result with a built-in reference engine.",
               "convbridge"};
  app.footer(kExamples);
  app.set_version_flag("--version", CONVBRIDGE_VERSION);
  app.require_subcommand(1);

  TranslateOptions options;
  CLI::App* translate = app.add_subcommand("translate", "Translate a PyTorch convolution layer to TensorFlow/Keras");
  translate->add_option("layer", options.layer_text,
                        "The layer exactly as written in PyTorch code, e.g. \"nn.Conv2d(3, 16, 3, stride=2)\"")
      ->required();
  translate->add_option("--input-shape", options.input_shape_text,
                        "PyTorch input shape N,C,<spatial> (e.g. 1,3,224,224); without it the plan is exact for "
                        "every input size");
  translate->add_option("--emit", options.emit,
                        "explain: explanation, Keras code and verification (default); keras: Keras source; tf: "
                        "tf.nn source; json: the plan")
      ->check(CLI::IsMember({"explain", "keras", "tf", "json"}));
  translate->add_flag("!--no-verify", options.verify, "Skip the reference-engine check");
  translate->add_option("--seed", options.seed, "Seed of the random verification data (default 0)");
  translate->footer(kExamples);

  try {
    app.parse(std::vector<std::string>(arguments.rbegin(), arguments.rend()));  // CLI11 takes them reversed
  } catch (const CLI::ParseError& error) {
    std::ostringstream out, err;
    const int status = app.exit(error, out, err);
    return CliResult{status == 0 ? 0 : kExitInvalidInput, out.str(), err.str()};
  }
  return run_translate(options);
}

}  // namespace convbridge::cli
