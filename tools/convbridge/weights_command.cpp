#include "weights_command.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <sstream>

#include "convbridge/io/weights.hpp"

namespace convbridge::cli {
namespace {

constexpr int kExitInvalidInput = 2;

constexpr const char* kWeightsExamples = R"TXT(Examples:
  convbridge weights inspect checkpoint.pt
  convbridge weights inspect model.safetensors --json
  convbridge weights convert checkpoint.pt -o model.safetensors
  convbridge weights convert arrays.npz -o model.safetensors
  convbridge weights convert model.safetensors -o arrays.npz

Reads PyTorch torch.save zip checkpoints (.pt, .pth, .bin; the pickle is interpreted symbolically, nothing in it
is imported or run), safetensors and numpy .npz. Exit status: 0 success, 2 a file that is malformed, hostile or
in a format not read (the message says which), or bad arguments.)TXT";

CliResult fail(const std::string& message) {
  return CliResult{kExitInvalidInput, "", fmt::format("convbridge: error: {}\n", message)};
}

std::string format_name(io::WeightFormat format) {
  switch (format) {
    case io::WeightFormat::torch_zip: return "torch";
    case io::WeightFormat::safetensors: return "safetensors";
    case io::WeightFormat::npz: return "npz";
  }
  return "?";
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) out += fmt::format("{}{}", i ? ", " : "", shape[i]);
  if (shape.size() == 1) out += ",";
  return out + ")";
}

// Notes that reading the data added (CRC mismatches); what opening found is inspect's to show.
std::string notes_on_stderr(const io::WeightFile& file, size_t first) {
  std::string err;
  for (size_t i = first; i < file.notes().size(); ++i) err += fmt::format("convbridge: note: {}\n", file.notes()[i]);
  return err;
}

CliResult inspect(const std::string& path, bool as_json) {
  auto opened = io::open_weight_file(path);
  if (!opened) return fail(opened.error().message);
  const io::WeightFile& file = **opened;
  int64_t total_bytes = 0;
  for (const io::TensorInfo& tensor : file.tensors()) total_bytes += tensor.byte_size;

  if (as_json) {
    nlohmann::ordered_json out;
    out["file"] = path;
    out["format"] = format_name(file.format());
    out["description"] = file.description();
    out["tensor_bytes"] = total_bytes;
    out["tensors"] = nlohmann::ordered_json::array();
    for (const io::TensorInfo& tensor : file.tensors()) {
      out["tensors"].push_back({{"name", tensor.name},
                                {"dtype", io::dtype_info(tensor.dtype).name},
                                {"shape", tensor.shape},
                                {"bytes", tensor.byte_size}});
    }
    if (file.format() == io::WeightFormat::torch_zip) {
      out["globals"] = nlohmann::ordered_json::array();
      out["refused"] = nlohmann::ordered_json::array();
      for (const io::PickleGlobal& global : file.globals()) {
        out["globals"].push_back({{"name", global.name},
                                  {"meaning", global.meaning},
                                  {"known", global.known},
                                  {"references", global.references},
                                  {"refused_calls", global.refused_calls}});
        if (!global.known) out["refused"].push_back(global.name);
      }
    }
    out["notes"] = file.notes();
    try {
      return CliResult{0, out.dump(2) + "\n", ""};
    } catch (const nlohmann::json::exception& error) {
      return fail(fmt::format("{}: a name cannot be written as JSON ({})", path, error.what()));
    }
  }

  std::string out = fmt::format("{}: {}\n{} tensor(s), {} bytes of tensor data\n", path, file.description(),
                                file.tensors().size(), total_bytes);
  if (!file.tensors().empty()) {
    size_t name_width = 4, dtype_width = 5;
    for (const io::TensorInfo& tensor : file.tensors()) {
      name_width = std::max(name_width, tensor.name.size());
      dtype_width = std::max(dtype_width, io::dtype_info(tensor.dtype).name.size());
    }
    name_width = std::min<size_t>(name_width, 80);
    out += fmt::format("\n{:<{}}  {:<{}}  shape\n", "name", name_width, "dtype", dtype_width);
    for (const io::TensorInfo& tensor : file.tensors()) {
      out += fmt::format("{:<{}}  {:<{}}  {}\n", tensor.name, name_width, io::dtype_info(tensor.dtype).name,
                         dtype_width, shape_text(tensor.shape));
    }
  }
  if (file.format() == io::WeightFormat::torch_zip && !file.globals().empty()) {
    out += "\nGlobals the pickle names (none was imported or called):\n";
    size_t width = 0;
    for (const io::PickleGlobal& global : file.globals()) width = std::max(width, global.name.size());
    for (const io::PickleGlobal& global : file.globals()) {
      std::string meaning = global.meaning;
      if (!global.known) {
        meaning = global.refused_calls ? fmt::format("refused: kept inert, {} call(s) not run", global.refused_calls)
                                       : std::string("refused: kept inert");
      }
      out += fmt::format("  {:<{}}  {}\n", global.name, width, meaning);
    }
  }
  for (const std::string& note : file.notes()) out += fmt::format("note: {}\n", note);
  return CliResult{0, std::move(out), ""};
}

CliResult convert(const std::string& path, const std::string& output) {
  const bool to_safetensors = output.ends_with(".safetensors");
  const bool to_npz = output.ends_with(".npz");
  if (!to_safetensors && !to_npz) {
    return fail(fmt::format("-o '{}' must end in .safetensors or .npz (the output format)", output));
  }
  auto opened = io::open_weight_file(path);
  if (!opened) return fail(opened.error().message);
  io::WeightFile& file = **opened;
  if (file.tensors().empty()) return fail(fmt::format("{}: holds no tensors; nothing to write", path));
  const size_t notes_before = file.notes().size();
  const Status written = to_safetensors ? io::write_safetensors(file, output) : io::write_npz(file, output);
  if (!written) return CliResult{kExitInvalidInput, "", notes_on_stderr(file, notes_before) + fmt::format("convbridge: error: {}\n", written.error().message)};
  int64_t total_bytes = 0;
  for (const io::TensorInfo& tensor : file.tensors()) total_bytes += tensor.byte_size;
  return CliResult{0,
                   fmt::format("wrote {}: {} tensor(s), {} bytes of tensor data, from {} ({})\n", output,
                               file.tensors().size(), total_bytes, path, file.description()),
                   notes_on_stderr(file, notes_before)};
}

}  // namespace

CliResult run_weights(const std::vector<std::string>& arguments) {
  CLI::App app{"Inspect and convert weight files (torch.save zip checkpoints, safetensors, .npz) without a framework "
               "and without executing anything in them.",
               "convbridge weights"};
  app.footer(kWeightsExamples);
  app.require_subcommand(1);
  std::string path, output;
  bool as_json = false;
  CLI::App* inspect_command = app.add_subcommand("inspect", "List every tensor's name, dtype and shape; for a "
                                                            "checkpoint also the globals its pickle names");
  inspect_command->add_option("file", path, "The weight file")->required();
  inspect_command->add_flag("--json", as_json, "Print JSON instead of a table");
  CLI::App* convert_command =
      app.add_subcommand("convert", "Write every tensor, bit for bit, to .safetensors or .npz (names joined with '.')");
  convert_command->add_option("file", path, "The weight file")->required();
  convert_command->add_option("-o,--output", output, "OUT.safetensors or OUT.npz (written atomically)")->required();
  try {
    app.parse(std::vector<std::string>(arguments.rbegin(), arguments.rend()));  // CLI11 takes them reversed
  } catch (const CLI::ParseError& error) {
    std::ostringstream out, err;
    const int status = app.exit(error, out, err);
    if (status == 0) return CliResult{0, out.str(), err.str()};  // --help
    return fail(fmt::format("{} (see convbridge weights --help)", error.what()));
  } catch (const std::exception& error) {
    return fail(fmt::format("a command-line value is malformed ({})", error.what()));
  }
  if (inspect_command->parsed()) return inspect(path, as_json);
  return convert(path, output);
}

}  // namespace convbridge::cli
