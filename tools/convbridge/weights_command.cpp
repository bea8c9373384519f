#include "weights_command.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <sstream>

#include "convbridge/io/keras_weights.hpp"
#include "convbridge/io/weights.hpp"
#include "subcommand.hpp"

namespace convbridge::cli {
namespace {

constexpr int kExitInvalidInput = 2;

constexpr const char* kWeightsExamples = R"TXT(Examples:
  convbridge weights inspect checkpoint.pt
  convbridge weights inspect model.safetensors --json
  convbridge weights convert checkpoint.pt -o model.safetensors
  convbridge weights convert arrays.npz -o model.safetensors
  convbridge weights convert model.safetensors -o arrays.npz
  convbridge weights inspect model.keras --json
  convbridge weights convert model.weights.h5 -o model.safetensors
  convbridge weights convert new_values.npz --layout model.weights.h5 -o new.weights.h5

Reads PyTorch torch.save zip checkpoints (.pt, .pth, .bin; the pickle is interpreted symbolically, nothing in it
is imported or run), safetensors, numpy .npz, Keras 3 .weights.h5 (HDF5; links, external or virtual data, filter
plugins and non-numeric types are refused) and .keras (its model.weights.h5; config.json is shown, never run).
`-o OUT.weights.h5 --layout K.weights.h5|K.keras` writes the layout file's groups and datasets with the values of
FILE's tensors of the same names (Keras' model.load_weights reads the result). Exit status: 0 success, 2 a file that is malformed, hostile or
in a format not read (the message says which), or bad arguments.)TXT";

CliResult fail(const std::string& message) {
  return CliResult{kExitInvalidInput, "", fmt::format("convbridge: error: {}\n", message)};
}

std::string format_name(io::WeightFormat format) {
  switch (format) {
    case io::WeightFormat::torch_zip: return "torch";
    case io::WeightFormat::safetensors: return "safetensors";
    case io::WeightFormat::npz: return "npz";
    case io::WeightFormat::keras_h5: return "keras";
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
    if (const auto* keras = dynamic_cast<const io::KerasWeightFile*>(&file); keras && keras->is_keras_archive()) {
      out["model_config"] = nlohmann::ordered_json::parse(keras->model_config(), nullptr, false);
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

// -o OUT.weights.h5: `layout`'s structure (or FILE's own, when FILE is Keras) with FILE's tensors by name.
CliResult convert_to_keras(const std::string& path, const std::string& layout_path, const std::string& output) {
  auto opened = io::open_weight_file(path);
  if (!opened) return fail(opened.error().message);
  io::WeightFile& values = **opened;
  std::unique_ptr<io::WeightFile> layout_file;
  if (!layout_path.empty()) {
    auto layout_opened = io::open_weight_file(layout_path);
    if (!layout_opened) return fail(layout_opened.error().message);
    layout_file = std::move(*layout_opened);
  }
  const auto* layout = dynamic_cast<const io::KerasWeightFile*>(layout_file ? layout_file.get() : &values);
  if (!layout) {
    return fail(fmt::format("-o '{}' needs --layout K.weights.h5 or K.keras (the groups and datasets to write)", output));
  }
  std::map<std::string, size_t> by_name;
  for (size_t i = 0; i < values.tensors().size(); ++i) by_name.emplace(values.tensors()[i].name, i);
  std::vector<size_t> source_index;
  for (const io::TensorInfo& wanted : layout->tensors()) {
    const auto found = by_name.find(wanted.name);
    if (found == by_name.end()) return fail(fmt::format("{}: has no tensor '{}' for the layout", path, wanted.name));
    const io::TensorInfo& have = values.tensors()[found->second];
    if (have.dtype != wanted.dtype || have.shape != wanted.shape) {
      return fail(fmt::format("{}: tensor '{}' is {} {} where the layout has {} {}", path, wanted.name,
                              io::dtype_info(have.dtype).name, shape_text(have.shape),
                              io::dtype_info(wanted.dtype).name, shape_text(wanted.shape)));
    }
    source_index.push_back(found->second);
  }
  const Status written = io::write_keras_weights(
      *layout, [&](size_t index) { return values.read_tensor(source_index[index]); }, output);
  if (!written) return fail(written.error().message);
  int64_t total_bytes = 0;
  for (const io::TensorInfo& tensor : layout->tensors()) total_bytes += tensor.byte_size;
  return CliResult{0,
                   fmt::format("wrote {}: {} tensor(s), {} group(s), {} bytes of tensor data, from {}\n", output,
                               layout->tensors().size(), layout->groups().size(), total_bytes, path),
                   ""};
}

CliResult convert(const std::string& path, const std::string& output, const std::string& layout) {
  if (output.ends_with(".weights.h5")) return convert_to_keras(path, layout, output);
  if (!layout.empty()) return fail("--layout is only for -o OUT.weights.h5");
  const bool to_safetensors = output.ends_with(".safetensors");
  const bool to_npz = output.ends_with(".npz");
  if (!to_safetensors && !to_npz) {
    return fail(fmt::format("-o '{}' must end in .safetensors, .npz or .weights.h5 (the output format)", output));
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
  CLI::App app{"Inspect and convert weight files (torch.save zip checkpoints, safetensors, .npz, Keras .weights.h5 and "
               ".keras) without a framework "
               "and without executing anything in them.",
               "convbridge weights"};
  app.footer(kWeightsExamples);
  app.require_subcommand(1);
  std::string path, output, layout;
  bool as_json = false;
  CLI::App* inspect_command = app.add_subcommand("inspect", "List every tensor's name, dtype and shape; for a "
                                                            "checkpoint also the globals its pickle names, for a .keras its config.json");
  inspect_command->add_option("file", path, "The weight file")->required();
  inspect_command->add_flag("--json", as_json, "Print JSON instead of a table");
  CLI::App* convert_command =
      app.add_subcommand("convert", "Write every tensor, bit for bit, to .safetensors or .npz (names joined with '.'), or into a "
                          "Keras .weights.h5 laid out as --layout");
  convert_command->add_option("file", path, "The weight file")->required();
  convert_command->add_option("-o,--output", output, "OUT.safetensors, OUT.npz or OUT.weights.h5 (written atomically)")->required();
  convert_command->add_option("--layout", layout, "For -o OUT.weights.h5: the .weights.h5 or .keras whose groups and "
                                                  "datasets to write (default: FILE itself, when it is Keras)");
  if (auto done = parse_subcommand(app, arguments, "convbridge weights")) return *done;
  if (inspect_command->parsed()) return inspect(path, as_json);
  return convert(path, output, layout);
}

}  // namespace convbridge::cli
