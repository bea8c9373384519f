// A checkpoint's tensors as PyTorch modules: the state_dict found inside a training checkpoint (nested keys such as
// "model." or "state_dict.", DDP's "module." and torch.compile's "_orig_mod." prefixes removed), grouped by module
// path with what each module's tensors say it is (a conv, a BatchNorm, a Linear, an affine norm).
#pragma once

#include <map>
#include <span>
#include <string>
#include <vector>

#include "convbridge/port/weight_port.hpp"

namespace convbridge::port {

enum class ModuleKind { conv, batch_norm, linear, norm, other };
std::string_view module_kind_name(ModuleKind kind);

struct TorchModuleTensors {
  std::string module;                 // relative to the root: "layer1.0.conv1"
  ModuleKind kind = ModuleKind::other;
  std::map<std::string, int> tensors;  // "weight", "bias", "running_mean", ... -> index into the checkpoint
  bool used = false;
};

struct CheckpointModules {
  std::string root;                          // "model.module." or ""
  std::vector<TorchModuleTensors> modules;   // in the checkpoint's (state_dict registration) order
  std::vector<std::string> ignored;          // tensors outside the root (optimizer state) and num_batches_tracked
};

// Finds the state_dict root and groups its tensors. Never fails: a checkpoint with no module-like tensors gives an
// empty list, which the matcher reports as unused tensors.
CheckpointModules group_checkpoint(std::span<const CheckpointTensor> tensors);

}  // namespace convbridge::port
