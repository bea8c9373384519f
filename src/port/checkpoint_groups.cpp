// group_checkpoint: where the state_dict sits in a checkpoint, and its modules. The wrapper keys are the ones
// training scripts conventionally write ({"model": model.state_dict(), "optimizer": ..., "epoch": ...}, Lightning's
// "state_dict", timm's "state_dict_ema"); DDP saves every key with "module." (torch/nn/parallel/distributed.py
// wraps the model as self.module), torch.compile with "_orig_mod." (torch/_dynamo/eval_frame.py OptimizedModule).
#include <algorithm>
#include <cctype>
#include <set>

#include "port/checkpoint_groups.hpp"

namespace convbridge::port {
namespace {

// First-level keys that hold a model's state_dict, in the order one is preferred when several are present.
constexpr std::string_view kModelKeys[] = {"state_dict", "model_state_dict", "model", "net", "network", "module",
                                           "model_ema", "state_dict_ema", "ema"};
// First-level keys that never hold the model's weights.
constexpr std::string_view kTrainingKeys[] = {"optimizer", "optimizer_state_dict", "optim", "opt", "scheduler",
                                              "lr_scheduler", "scaler", "grad_scaler", "amp", "args", "config"};
// Per-module prefixes wrappers add.
constexpr std::string_view kWrapperPrefixes[] = {"module.", "_orig_mod."};

std::string first_component(const std::string& name) { return name.substr(0, name.find('.')); }

bool all_start_with(std::span<const std::string> names, std::string_view prefix) {
  return !names.empty() && std::all_of(names.begin(), names.end(), [&](const std::string& n) { return n.starts_with(prefix); });
}

// "a.2.b" before "a.10.b": runs of digits compare as numbers.
bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t ei = i, ej = j;
      while (ei < a.size() && std::isdigit(static_cast<unsigned char>(a[ei]))) ++ei;
      while (ej < b.size() && std::isdigit(static_cast<unsigned char>(b[ej]))) ++ej;
      const std::string_view x = std::string_view(a).substr(i, ei - i), y = std::string_view(b).substr(j, ej - j);
      const std::string_view xs = x.substr(std::min(x.find_first_not_of('0'), x.size()));
      const std::string_view ys = y.substr(std::min(y.find_first_not_of('0'), y.size()));
      if (xs.size() != ys.size()) return xs.size() < ys.size();
      if (xs != ys) return xs < ys;
      i = ei;
      j = ej;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

}  // namespace

std::string_view module_kind_name(ModuleKind kind) {
  switch (kind) {
    case ModuleKind::conv: return "conv";
    case ModuleKind::batch_norm: return "batch_norm";
    case ModuleKind::linear: return "linear";
    case ModuleKind::norm: return "norm";
    case ModuleKind::other: return "other";
  }
  return "other";
}

CheckpointModules group_checkpoint(std::span<const CheckpointTensor> tensors) {
  CheckpointModules out;
  std::set<std::string> firsts;
  for (const CheckpointTensor& t : tensors) {
    if (t.name.find('.') != std::string::npos) firsts.insert(first_component(t.name));
  }
  // The root: a model key when the checkpoint has one beside other keys (or alone); else everything but the
  // training keys.
  // A plain state_dict whose model has a submodule called "model" beside others ("model.0.weight", "head.weight")
  // keeps its root: the key must account for everything but training state and other copies of the model.
  const auto is_wrapper = [](std::string_view first) {
    return std::find(std::begin(kTrainingKeys), std::end(kTrainingKeys), first) != std::end(kTrainingKeys) ||
           std::find(std::begin(kModelKeys), std::end(kModelKeys), first) != std::end(kModelKeys);
  };
  for (std::string_view key : kModelKeys) {
    if (!firsts.count(std::string(key))) continue;
    const std::string prefix = std::string(key) + ".";
    if (std::all_of(tensors.begin(), tensors.end(), [&](const CheckpointTensor& t) {
          return t.name.starts_with(prefix) || (t.name.find('.') != std::string::npos && is_wrapper(first_component(t.name)));
        })) {
      out.root = prefix;
      break;
    }
  }
  std::vector<std::string> names;
  std::vector<int> indices;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::string& name = tensors[i].name;
    const bool training = std::find(std::begin(kTrainingKeys), std::end(kTrainingKeys), first_component(name)) !=
                          std::end(kTrainingKeys);
    if ((!out.root.empty() && !name.starts_with(out.root)) || (out.root.empty() && training && firsts.size() > 1)) {
      out.ignored.push_back(name);
      continue;
    }
    names.push_back(name.substr(out.root.size()));
    indices.push_back(static_cast<int>(i));
  }
  for (bool stripped = true; stripped;) {  // "model.module._orig_mod.": strip each wrapper prefix in turn
    stripped = false;
    for (std::string_view prefix : kWrapperPrefixes) {
      if (all_start_with(names, prefix)) {
        for (std::string& n : names) n.erase(0, prefix.size());
        out.root += prefix;
        stripped = true;
      }
    }
  }
  std::map<std::string, size_t> by_module;
  for (size_t j = 0; j < names.size(); ++j) {
    const std::string& name = names[j];
    const size_t dot = name.rfind('.');
    const std::string module = dot == std::string::npos ? "" : name.substr(0, dot);
    const std::string role = dot == std::string::npos ? name : name.substr(dot + 1);
    if (role == "num_batches_tracked") {  // BatchNorm's step counter: no Keras variable holds it
      out.ignored.push_back(tensors[indices[j]].name);
      continue;
    }
    auto [it, fresh] = by_module.emplace(module, out.modules.size());
    if (fresh) out.modules.push_back(TorchModuleTensors{module, ModuleKind::other, {}, false});
    out.modules[it->second].tensors[role] = indices[j];
  }
  // A safetensors file lists tensors sorted by name (the reference writer orders by dtype, then name: the int64
  // num_batches_tracked counters come first), which puts "features.10" before "features.2": registration order
  // is lost, and numeric order is the better guess.
  std::vector<std::string> weight_names;
  for (const std::string& name : names) {
    if (!name.ends_with("num_batches_tracked")) weight_names.push_back(name);
  }
  if (std::is_sorted(weight_names.begin(), weight_names.end())) {
    std::stable_sort(out.modules.begin(), out.modules.end(),
                     [](const TorchModuleTensors& a, const TorchModuleTensors& b) { return natural_less(a.module, b.module); });
  }
  for (TorchModuleTensors& m : out.modules) {
    const auto rank_of = [&](const char* role) -> int {
      const auto it = m.tensors.find(role);
      return it == m.tensors.end() ? -1 : static_cast<int>(tensors[it->second].shape.size());
    };
    const int weight = rank_of("weight");
    const int bias = rank_of("bias");
    if (rank_of("running_mean") == 1 && rank_of("running_var") == 1) {
      m.kind = ModuleKind::batch_norm;
    } else if (weight >= 3 && weight <= 5 && (bias == -1 || bias == 1)) {
      m.kind = ModuleKind::conv;
    } else if (weight == 2 && (bias == -1 || bias == 1)) {
      m.kind = ModuleKind::linear;
    } else if (weight == 1 && (bias == -1 || bias == 1)) {
      m.kind = ModuleKind::norm;
    }
  }
  return out;
}

}  // namespace convbridge::port
