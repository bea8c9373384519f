// A symbolic pickle machine for torch.save's data.pkl: it interprets the opcodes of protocols 0-5 and calls
// nothing. GLOBAL and STACK_GLOBAL look names up in a fixed table (tensor rebuilds, OrderedDict, storage types,
// dtypes, torch.Size, the builtins protocol 2 uses for sets and bytes) and never import anything; every other
// name becomes an inert value, and a call to it (REDUCE, NEWOBJ, INST, OBJ) an inert object that records the call
// instead of making it. Names of functions that can run code (os.system, builtins.eval, subprocess, ...) make the
// whole file an error: they can do nothing here, but a checkpoint that names them is hostile and is not read.
//
// The machine is bounded: data.pkl's size, the stack, the marks, the memo, nesting, and the bytes all values take
// (memo GETs share values, never copy them, so expansion attacks cost nothing). SETITEM(S) only on dicts,
// APPEND(S) only on lists, BUILD only on inert objects, dicts and tensors (CVE-2026-24747 came from SETITEM on
// other objects). Persistent ids must be torch's ('storage', <storage type>, key, location, numel); every tensor's
// extent (storage_offset + sum((size - 1) * stride)) is checked against its storage's bytes.
// Opcode semantics: CPython Lib/pickle.py and Lib/pickletools.py; torch's reading: torch/serialization.py
// (persistent_load) and torch/_utils.py (_rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "convbridge/io/weights.hpp"
#include "convbridge/result.hpp"

namespace convbridge::io::pickle {

using ValueId = uint32_t;
inline constexpr ValueId kNoValue = UINT32_MAX;

enum class Kind : uint8_t {
  none,
  boolean,
  integer,
  big_integer,  // beyond 64 bits: `text` holds its little-endian two's-complement bytes (or decimal digits)
  real,
  text,
  bytes,
  tuple,
  list,
  dict,   // dict and OrderedDict: `items` holds key, value, key, value, ...
  set,
  global,        // an inert name; `number` indexes the globals report
  object,        // an inert object: the result of calling an inert global, never computed
  storage_type,  // torch.FloatStorage & co.: `number` is the DType, -1 for torch.storage.UntypedStorage
  dtype,         // torch.float32 & co.: `number` is the DType
  storage,       // a persistent-id storage: `number` indexes storages()
  tensor,        // `number` indexes tensors()
};

struct Value {
  Kind kind = Kind::none;
  int64_t number = 0;
  double real = 0;
  std::string text;
  std::vector<ValueId> items;
  ValueId callable = kNoValue;   // object: the global it came from
  ValueId arguments = kNoValue;  // object: the argument tuple of the call that was not made
  ValueId state = kNoValue;      // object: what BUILD gave it
};

// A storage named by a persistent id, as the reader that owns the bytes resolved it.
struct StorageRequest {
  std::optional<DType> dtype;  // nullopt: torch.storage.UntypedStorage (numel counts bytes)
  std::string key;
  std::string location;
  int64_t numel = 0;
};
struct Storage {
  std::string key;
  int64_t bytes = 0;
};
// Returns the storage's byte size once it has checked that its record exists and holds numel elements.
using StorageResolver = std::function<Result<int64_t>(const StorageRequest&)>;

struct Tensor {
  size_t storage = 0;
  DType dtype = DType::float32;
  int64_t storage_offset = 0;  // elements
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;  // elements
  int64_t numel = 0;
  int64_t extent_elements = 0;  // 1 + the largest element index the tensor touches past storage_offset (0 if empty)
};

struct NamedTensor {
  std::string name;
  size_t tensor = 0;
};

struct Limits {
  uint64_t max_value_bytes = uint64_t{256} << 20;  // all values, their strings and item lists
  size_t max_stack = size_t{1} << 21;
  size_t max_marks = size_t{1} << 20;
  size_t max_memo = size_t{1} << 21;
  // A billion-laughs pickle: the object tree, were its shared references copied, over this many times its values
  // (and over 10^7 values). fickling flags GET/PUT ratios above 10; torch's own pickles expand by 1.
  uint64_t max_expansion = 1000;
  int max_nesting = 200;
  size_t max_line = size_t{1} << 16;  // text opcodes (GLOBAL, INT, ...)
};

class Machine {
 public:
  Machine(std::string label, StorageResolver resolver, Limits limits = {})
      : label_(std::move(label)), resolver_(std::move(resolver)), limits_(limits) {}

  // Runs data.pkl to its STOP; the result is root().
  Status run(std::span<const std::byte> program);
  ValueId root() const { return root_; }
  const Value& value(ValueId id) const { return values_[id]; }
  const std::vector<Tensor>& tensors() const { return tensors_; }
  const std::vector<Storage>& storages() const { return storages_; }
  const std::vector<PickleGlobal>& globals() const { return globals_; }
  int protocol() const { return protocol_; }

  // Every tensor reachable from the root, named by its path of dict keys, list indices and attribute names joined
  // with '.' (an inert object's state counts as its attributes; nn.Module's _parameters, _buffers and _modules
  // are skipped, so a pickled module yields its state_dict names). A tensor reachable twice (tied weights) gets
  // both names; a container reachable twice is walked once. `skipped_values` counts the leaves that were not
  // tensors (numbers, strings, inert objects).
  Result<std::vector<NamedTensor>> named_tensors(int64_t& skipped_values) const;

 private:
  enum class Builtin : uint8_t;
  struct GlobalEntry {
    Builtin builtin;
    size_t report;  // index into globals_
  };

  Error fail(std::string message) const;
  Status charge(uint64_t bytes);
  Result<ValueId> make(Value value);
  Result<ValueId> make_scalar(Kind kind, int64_t number);
  Status push(ValueId id);
  Result<ValueId> pop();
  Result<ValueId> top() const;
  Result<std::vector<ValueId>> pop_to_mark();

  Result<ValueId> resolve_global(const std::string& module, const std::string& name);
  Result<ValueId> call(ValueId callable, ValueId arguments, const char* how);
  Result<ValueId> rebuild_tensor(const std::vector<ValueId>& arguments, std::optional<DType> explicit_dtype,
                                 const char* function);
  Result<ValueId> persistent_load(ValueId pid);
  Status set_item(ValueId target, ValueId key, ValueId item, const char* opcode);
  Status append_items(ValueId target, std::span<const ValueId> items, const char* opcode);
  Status build(ValueId target, ValueId state);
  std::string key_of(ValueId id, int depth) const;
  std::string describe(ValueId id) const;

  Result<uint64_t> expanded_size(ValueId id, int depth, std::vector<uint64_t>& memo) const;
  Status walk(ValueId id, std::vector<std::string>& path, int depth, std::vector<bool>& visited,
              std::vector<NamedTensor>& out, int64_t& skipped) const;

  std::string label_;
  StorageResolver resolver_;
  Limits limits_;

  std::deque<Value> values_;  // a deque: references stay valid while values are added
  uint64_t value_bytes_ = 0;
  std::vector<ValueId> stack_;
  std::vector<size_t> marks_;
  // The memo: keys below max_memo (MEMOIZE's and BINPUT's, in practice all) in a vector, others in a map.
  std::vector<ValueId> memo_dense_;
  std::unordered_map<uint64_t, ValueId> memo_sparse_;
  size_t memo_entries_ = 0;
  // dict value -> (key -> index of the pair in items), for SETITEM's overwrite semantics in O(1).
  std::unordered_map<ValueId, std::unordered_map<std::string, size_t>> dict_index_;

  std::vector<PickleGlobal> globals_;
  std::unordered_map<std::string, GlobalEntry> global_table_;
  std::unordered_map<size_t, ValueId> typed_global_values_;  // globals_ index -> its storage_type / dtype value
  std::vector<Storage> storages_;
  std::unordered_map<std::string, size_t> storage_by_key_;
  std::vector<Tensor> tensors_;

  ValueId none_ = kNoValue, true_ = kNoValue, false_ = kNoValue;  // shared: NONE and NEWTRUE cost no memory
  ValueId root_ = kNoValue;
  int protocol_ = 0;
  size_t position_ = 0;      // of the opcode being run, for errors
  const char* opcode_ = "";  // its name
};

}  // namespace convbridge::io::pickle
