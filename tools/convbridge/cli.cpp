#include "cli.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <limits>
#include <optional>
#include <variant>
#include <sstream>
#include <string>

#include "convbridge/emit.hpp"
#include "convbridge/engine.hpp"
#include "convbridge/frontends.hpp"
#include "convbridge/layer_plan.hpp"
#include "convbridge/planner.hpp"
#include "convert_command.hpp"
#include "port_command.hpp"
#include "weights_command.hpp"

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
  convbridge translate "nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)" --emit keras
  convbridge translate "keras.layers.Conv2D(16, 3, strides=2, padding='same')" --input-shape None,None,None,3
  convbridge translate "layers.SeparableConv2D(32, 3, padding='same')" --input-shape 1,64,64,8 --emit torch
  convbridge translate "tf.nn.conv2d(x, w, strides=2, padding='SAME')" --filters-shape 3,3,16,32
  convbridge translate "tf.nn.conv2d(x, w, 1, [[0, 0], [1, 2], [0, 1], [0, 0]])" --filters-shape 3,3,8,8 --input-shape 1,32,32,8
  convbridge translate "nn.MaxPool2d(3, 2, 1, ceil_mode=True)" --input-shape 1,64,55,55
  convbridge translate "nn.Upsample(scale_factor=2, mode='bilinear', align_corners=True)" --emit keras
  convbridge translate "keras.layers.AveragePooling2D(3, 1, padding='same')" --input-shape None,None,None,8
  convbridge translate "keras.layers.BatchNormalization()" --emit torch
  convbridge weights inspect checkpoint.pt
  convbridge weights convert checkpoint.pt -o model.safetensors
  convbridge port resnet18.pth --into my_resnet.keras -o my_resnet.weights.h5
  convbridge convert model.keras -o torch_model/

Exit status: 0 success, 1 the reference engine found a mismatch (a convbridge bug: please report it),
2 invalid layer text, input shape or arguments.)TXT";

CliResult fail(const std::string& message) {
  return CliResult{kExitInvalidInput, "", fmt::format("convbridge: error: {}\n", message)};
}

struct TranslateOptions {
  std::string layer_text;
  std::optional<std::string> input_shape_text;  // given (even empty) or not
  std::optional<std::string> filters_shape_text;  // tf.nn calls only
  std::string emit = "explain";
  bool verify = true;
  uint64_t seed = 0;
  std::string seed_text = "0";  // parsed by parse_seed: CLI11 wraps -1 and clamps values past 64 bits
};

// User text quoted in an error message: printable ASCII, other bytes as \xNN, at most 100 bytes shown.
std::string quoted_excerpt(std::string_view text) {
  constexpr size_t kShown = 100;
  std::string out;
  for (size_t i = 0; i < text.size() && i < kShown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    out += c >= 0x20 && c < 0x7f ? std::string(1, static_cast<char>(c)) : fmt::format("\\x{:02x}", c);
  }
  if (text.size() > kShown) out += fmt::format("...[{} bytes]", text.size());
  return out;
}

// --seed: a decimal integer in [0, 2^64); anything else is an error rather than a silently different seed.
std::optional<std::string> parse_seed(TranslateOptions& options) {
  const std::string& text = options.seed_text;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, options.seed);
  if (text.empty() || error != std::errc{} || stop != end) {
    return fmt::format("--seed '{}' must be an integer from 0 to {}", quoted_excerpt(text),
                       std::numeric_limits<uint64_t>::max());
  }
  return std::nullopt;
}

// Runs the reference engine before anything is printed, so a wrong plan never reaches a file the user redirects
// into. Returns the report, or the CLI result to return instead.
template <class AnyPlan>
std::variant<std::optional<convbridge::VerificationReport>, CliResult> verify_first(const AnyPlan& plan,
                                                                                   const TranslateOptions& options,
                                                                                   std::string_view source) {
  if (!options.verify) return std::optional<convbridge::VerificationReport>{};
  auto verified = convbridge::verify_plan(plan, options.seed);
  if (!verified) return fail(verified.error().message);
  if (!verified->cases.empty() && !verified->passed()) {
    return CliResult{kExitVerificationFailed, "",
                     convbridge::describe_verification(*verified) +
                         fmt::format("convbridge: error: the plan does not reproduce {}; this is a convbridge bug, "
                                     "please report the layer text above\n",
                                     source)};
  }
  return std::optional<convbridge::VerificationReport>{*verified};
}

// --emit keras/tf/torch print only code (so `> layer.py` works): a check that did not run is said on stderr.
std::string code_only_notice(const TranslateOptions& options,
                             const std::optional<convbridge::VerificationReport>& report) {
  if (options.emit == "explain" || options.emit == "json") return "";
  if (!report) return "convbridge: note: verification skipped (--no-verify)\n";
  if (report->cases.empty()) {
    return fmt::format("convbridge: note: verification skipped: {}\n", report->skipped_reason);
  }
  return "";
}

std::string verification_line(const std::optional<convbridge::VerificationReport>& report) {
  return report ? convbridge::describe_verification(*report) : std::string("Verification: skipped (--no-verify)\n");
}

// PyTorch layer -> TensorFlow/Keras.
CliResult translate_pytorch(const TranslateOptions& options) {
  auto layer = convbridge::parse_pytorch_layer(options.layer_text);
  if (!layer) return fail(layer.error().message);
  if (options.emit == "torch") {
    return fail("--emit torch translates Keras layers to PyTorch; this layer is already PyTorch (use --emit keras or tf)");
  }
  std::optional<std::vector<int64_t>> input_shape;
  if (options.input_shape_text) {
    auto shape = convbridge::parse_input_shape(*options.input_shape_text);
    if (!shape) return fail(shape.error().message);
    input_shape = *shape;
  }
  auto plan = convbridge::plan_torch_to_tf(*layer, input_shape);
  if (!plan) return fail(plan.error().message);
  auto verified = verify_first(*plan, options, "PyTorch");
  if (auto* result = std::get_if<CliResult>(&verified)) return *result;
  const auto& report = std::get<0>(verified);

  std::string output;
  if (options.emit == "keras") {
    output = convbridge::emit_keras(*plan);
  } else if (options.emit == "tf") {
    output = convbridge::emit_tf_nn(*plan);
  } else if (options.emit == "json") {
    output = convbridge::emit_json(*plan, report ? &*report : nullptr);
  } else {
    output = convbridge::explain_plan(*plan);
    output += "\nKeras code:\n\n" + convbridge::emit_keras(*plan) + "\n";
    output += verification_line(report);
  }
  return CliResult{0, std::move(output), code_only_notice(options, report)};
}

// A TensorFlow source (Keras layer or tf.nn call) planned to PyTorch: verified, then printed as asked.
CliResult print_torch_plan(const convbridge::Result<convbridge::TorchPlan>& plan, const TranslateOptions& options) {
  if (!plan) return fail(plan.error().message);
  auto verified = verify_first(*plan, options, plan->source.is_tf_nn ? "TensorFlow" : "Keras");
  if (auto* result = std::get_if<CliResult>(&verified)) return *result;
  const auto& report = std::get<0>(verified);

  std::string output;
  if (options.emit == "torch") {
    output = convbridge::emit_torch(*plan);
  } else if (options.emit == "json") {
    output = convbridge::emit_json(*plan, report ? &*report : nullptr);
  } else {
    output = convbridge::explain_plan(*plan);
    output += "\nPyTorch code:\n\n" + convbridge::emit_torch(*plan) + "\n";
    output += verification_line(report);
  }
  std::string notices;
  for (const std::string& warning : plan->warnings) notices += fmt::format("convbridge: warning: {}\n", warning);
  return CliResult{0, std::move(output), notices + code_only_notice(options, report)};
}

std::optional<CliResult> reject_emit_for_tensorflow_source(const TranslateOptions& options, std::string_view what) {
  if (options.emit == "keras" || options.emit == "tf") {
    return fail(fmt::format("--emit {} translates PyTorch layers; this {} (use --emit torch)", options.emit, what));
  }
  return std::nullopt;
}

// Keras layer -> PyTorch. Keras layers do not record their input channels, so the input shape is required; its
// sizes may be None (unknown), which makes the plan exact for every size.
CliResult translate_keras(const TranslateOptions& options) {
  auto layer = convbridge::parse_keras_layer(options.layer_text);
  if (!layer) return fail(layer.error().message);
  if (auto rejected = reject_emit_for_tensorflow_source(options, "layer is already Keras")) return *rejected;
  if (options.filters_shape_text) return fail("--filters-shape is for tf.nn calls; a Keras layer's text says its kernel");
  if (!options.input_shape_text && !layer->declared_input_shape.empty()) {  // the text's own input_shape=(H, W, C)
    return print_torch_plan(convbridge::plan_keras_to_torch(*layer, layer->declared_input_shape.back(), std::nullopt),
                            options);
  }
  if (!options.input_shape_text) {
    return fail(fmt::format("{} does not record its input channels: give the input shape as Keras sees it, e.g. "
                            "--input-shape {} (None for sizes that vary)",
                            layer->class_name,
                            layer->rank == 1 ? "None,None,8" : layer->rank == 2 ? "None,None,None,3" : "None,None,None,None,3"));
  }
  auto shape = convbridge::parse_input_shape(*options.input_shape_text, /*allow_unknown=*/true);
  if (!shape) return fail(shape.error().message);
  if (shape->back() == convbridge::kUnknownSize) {
    return fail(fmt::format("--input-shape '{}' must give the channel count (its last entry)",
                            quoted_excerpt(*options.input_shape_text)));
  }
  return print_torch_plan(convbridge::plan_keras_to_torch(*layer, shape->back(), *shape), options);
}

// tf.nn call -> PyTorch. The text names the filters but not their shape, so --filters-shape is required; the input
// shape is optional (without it, every size is unknown and the input channels are the filters' input depth).
CliResult translate_tf_nn(const TranslateOptions& options) {
  if (!options.filters_shape_text) return fail(convbridge::tf_nn_call_needs_filters_shape(options.layer_text).message);
  auto filters_shape = convbridge::parse_filters_shape(*options.filters_shape_text);
  if (!filters_shape) return fail(filters_shape.error().message);
  auto layer = convbridge::parse_tf_nn_call(options.layer_text, *filters_shape);
  if (!layer) return fail(layer.error().message);
  if (auto rejected = reject_emit_for_tensorflow_source(options, "tf.nn call is already TensorFlow")) return *rejected;
  std::optional<std::vector<int64_t>> shape;
  if (options.input_shape_text) {
    auto parsed = convbridge::parse_input_shape(*options.input_shape_text, /*allow_unknown=*/true);
    if (!parsed) return fail(parsed.error().message);
    shape = *parsed;
  }
  return print_torch_plan(convbridge::plan_tf_nn_to_torch(*layer, shape), options);
}

// An option the CLI does not have ("--input_shape"), with the one it most likely means: CLI11 would only say that
// the arguments were "not expected".
std::optional<std::string> unknown_option(const std::vector<std::string>& arguments) {
  static constexpr std::array<std::string_view, 7> kOptions = {"--input-shape", "--filters-shape", "--emit",
                                                               "--no-verify", "--seed", "--help", "--version"};
  const auto normalized = [](std::string_view text) {
    std::string out;
    for (char c : text) {
      if (c != '-' && c != '_') out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
  };
  for (const std::string& argument : arguments) {
    if (argument == "--") break;  // what follows is positional
    if (!argument.starts_with("--")) continue;
    const std::string_view name = std::string_view(argument).substr(0, argument.find('='));
    if (name == "--no-verify" && name.size() != argument.size()) {
      return fmt::format("--no-verify takes no value ('{}'): write --no-verify alone", quoted_excerpt(argument));
    }
    if (std::find(kOptions.begin(), kOptions.end(), name) != kOptions.end()) continue;
    std::string hint;
    for (std::string_view option : kOptions) {
      const std::string a = normalized(name), b = normalized(option);
      // Same letters but for dashes, underscores and case, or a prefix / one letter off of a long enough name.
      if (a == b || (a.size() >= 4 && (b.starts_with(a) || a.starts_with(b)))) {
        hint = fmt::format(" (did you mean {}?)", option);
        break;
      }
    }
    return fmt::format("unknown option '{}'{}; see convbridge translate --help", quoted_excerpt(name), hint);
  }
  return std::nullopt;
}

// A layer of the op set (pooling, normalization, resizing, padding, pixel shuffle, activations), either direction.
// The input shape is optional: without it the plan is exact for every size (or the error says which size it needs).
CliResult translate_op_layer(const TranslateOptions& options) {
  auto layer = convbridge::parse_op_layer(options.layer_text);
  if (!layer) return fail(layer.error().message);
  const bool from_torch = layer->framework == convbridge::Framework::pytorch;
  if (from_torch && options.emit == "torch") {
    return fail("--emit torch translates Keras layers to PyTorch; this layer is already PyTorch (use --emit keras or tf)");
  }
  if (!from_torch) {
    const std::string what = layer->framework == convbridge::Framework::keras ? "layer is already Keras"
                                                                               : "call is already TensorFlow";
    if (auto rejected = reject_emit_for_tensorflow_source(options, what)) return *rejected;
  }
  if (options.filters_shape_text) return fail(fmt::format("--filters-shape is for tf.nn convolutions, not {}", layer->class_name));
  std::optional<std::vector<int64_t>> shape;
  if (options.input_shape_text) {
    auto parsed = convbridge::parse_input_shape(*options.input_shape_text, /*allow_unknown=*/true);
    if (!parsed) return fail(parsed.error().message);
    shape = *parsed;
  } else if (!layer->declared_input_shape.empty()) {  // Keras input_shape=(H, W, C): the batch is unknown
    shape = std::vector<int64_t>{convbridge::kUnknownSize};
    shape->insert(shape->end(), layer->declared_input_shape.begin(), layer->declared_input_shape.end());
  }
  auto plan = convbridge::plan_op_layer(*layer, shape);
  if (!plan) return fail(plan.error().message);
  auto verified = verify_first(*plan, options, convbridge::framework_name(layer->framework));
  if (auto* result = std::get_if<CliResult>(&verified)) return *result;
  const auto& report = std::get<0>(verified);
  std::string output;
  if (options.emit == "keras") {
    output = convbridge::emit_keras(*plan);
  } else if (options.emit == "tf") {
    output = convbridge::emit_tf_nn(*plan);
  } else if (options.emit == "torch") {
    output = convbridge::emit_torch(*plan);
  } else if (options.emit == "json") {
    output = convbridge::emit_json(*plan, report ? &*report : nullptr);
  } else {
    output = convbridge::explain_plan(*plan);
    output += from_torch ? "\nKeras code:\n\n" + convbridge::emit_keras(*plan) + "\n"
                         : "\nPyTorch code:\n\n" + convbridge::emit_torch(*plan) + "\n";
    output += verification_line(report);
  }
  std::string notices;
  for (const std::string& warning : plan->warnings) notices += fmt::format("convbridge: warning: {}\n", warning);
  return CliResult{0, std::move(output), notices + code_only_notice(options, report)};
}

CliResult run_translate(const TranslateOptions& options) {
  if (convbridge::names_op_layer(options.layer_text)) return translate_op_layer(options);
  if (convbridge::names_keras_layer(options.layer_text)) return translate_keras(options);
  if (convbridge::names_tf_nn_call(options.layer_text)) return translate_tf_nn(options);
  if (options.filters_shape_text) return fail("--filters-shape is for tf.nn calls; a PyTorch layer's text says its kernel");
  return translate_pytorch(options);
}

}  // namespace

CliResult run(const std::vector<std::string>& arguments) {
  // `weights` has options of its own (-o, --json); translate's option checks below do not apply to it.
  if (!arguments.empty() && arguments.front() == "weights") {
    return run_weights(std::vector<std::string>(arguments.begin() + 1, arguments.end()));
  }
  if (!arguments.empty() && arguments.front() == "port") {
    return run_port(std::vector<std::string>(arguments.begin() + 1, arguments.end()));
  }
  if (!arguments.empty() && arguments.front() == "convert") {
    return run_convert(std::vector<std::string>(arguments.begin() + 1, arguments.end()));
  }
  CLI::App app{"convbridge: translate convolution layers between PyTorch and TensorFlow/Keras exactly, explain "
               "every difference, and verify the result with a built-in reference engine.",
               "convbridge"};
  app.footer(kExamples);
  app.set_version_flag("--version", CONVBRIDGE_VERSION);
  app.require_subcommand(1);

  TranslateOptions options;
  CLI::App* translate = app.add_subcommand(
      "translate",
      "Translate a PyTorch layer (convolution, pooling, normalization, resizing, padding, pixel shuffle, activation) "
      "to TensorFlow/Keras, or a Keras layer or TensorFlow call to PyTorch");
  translate->add_option("layer", options.layer_text,
                        "The layer exactly as written in code, e.g. \"nn.Conv2d(3, 16, 3, stride=2)\", "
                        "\"keras.layers.Conv2D(16, 3, strides=2, padding='same')\" or "
                        "\"tf.nn.conv2d(x, w, strides=2, padding='SAME')\"")
      ->required();
  translate->add_option("--input-shape", options.input_shape_text,
                        "The input shape the source layer sees: PyTorch N,C,<spatial> (e.g. 1,3,224,224; optional: "
                        "without it the plan is exact for every size), Keras N,<spatial>,C (required for Keras "
                        "convolutions, which do not record their input channels; None for sizes that vary, e.g. "
                        "None,None,None,3), tf.nn N,<spatial>,C (optional). Pooling, normalization, resizing, padding, "
                        "pixel shuffle and activation layers take it optionally in either framework, None allowed")
      ->type_name("SHAPE");
  translate->add_option("--filters-shape", options.filters_shape_text,
                        "For tf.nn calls (required): the shape of the filters tensor, e.g. 3,3,16,32 for tf.nn.conv2d "
                        "(height, width, in_channels, out_channels) or 3,3,16,2 for tf.nn.depthwise_conv2d (height, "
                        "width, in_channels, channel_multiplier)")
      ->type_name("SHAPE");
  translate->add_option("--emit", options.emit,
                        "explain: explanation, code and verification (default); keras: Keras source; tf: tf.nn "
                        "source; torch: PyTorch source (for Keras layers); json: the plan")
      ->check(CLI::IsMember({"explain", "keras", "tf", "torch", "json"}));
  bool no_verify = false;
  translate->add_flag("--no-verify", no_verify, "Skip the reference-engine check");
  translate->add_option("--seed", options.seed_text, "Seed of the random verification data (default 0)")
      ->type_name("N");
  translate->footer(kExamples);
  // Listed for --help; `convbridge weights ...` is dispatched to run_weights before this parser runs.
  app.add_subcommand("weights", "Inspect or convert weight files (torch.save zip, safetensors, .npz) without a "
                                "framework and without executing anything: see convbridge weights --help");
  app.add_subcommand("port", "Port trained PyTorch weights into a Keras model written by hand (match, lint, "
                             "re-layout, write .weights.h5): see convbridge port --help");
  app.add_subcommand("convert", "Convert a Keras .keras model file to PyTorch (model.py + model.safetensors) with no "
                                "framework installed: see convbridge convert --help");

  if (auto unknown = unknown_option(arguments)) return fail(*unknown);
  try {
    app.parse(std::vector<std::string>(arguments.rbegin(), arguments.rend()));  // CLI11 takes them reversed
  } catch (const CLI::ParseError& error) {
    std::ostringstream out, err;
    const int status = app.exit(error, out, err);
    if (status == 0) return CliResult{0, out.str(), err.str()};  // --help, --version
    // CLI11's own wording, as one `convbridge: error:` line like every other error.
    std::string message = error.what();
    return fail(fmt::format("{} (see convbridge translate --help)", message));
  } catch (const std::exception& error) {
    // CLI11 lets std::stoll's out_of_range escape for a flag value such as --no-verify=99999999999999999999
    // (found by fuzz/fuzz_cli); without this the process aborts.
    return fail(fmt::format("a command-line flag or option value is out of range or malformed ({})", error.what()));
  }
  options.verify = !no_verify;
  if (auto error = parse_seed(options)) return fail(*error);
  return run_translate(options);
}

}  // namespace convbridge::cli
