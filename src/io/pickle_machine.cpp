#include "io/pickle_machine.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>

#include "convbridge/checked_math.hpp"
#include "io/io_support.hpp"

namespace convbridge::io::pickle {

enum class Machine::Builtin : uint8_t {
  ordered_dict,  // collections.OrderedDict, builtins.dict
  set,           // builtins.set, builtins.frozenset
  list,          // builtins.list
  tuple,         // builtins.tuple, torch.Size
  codecs_encode,  // _codecs.encode(text, 'latin1'): how protocol 2 writes bytes
  rebuild_tensor,     // torch._utils._rebuild_tensor (storage, offset, size, stride)
  rebuild_tensor_v2,  // + requires_grad, backward_hooks[, metadata]
  rebuild_tensor_v3,  // + dtype
  rebuild_parameter,  // torch._utils._rebuild_parameter(data, requires_grad, hooks[, state])
  rebuild_from_type,  // torch._tensor._rebuild_from_type_v2(func, new_type, args, state)
  storage_type,
  dtype,
  unsupported,  // known, but what it builds is not carried (complex or quantized storages, legacy storages)
  inert,
};

namespace {

constexpr std::array<const char*, 256> opcode_names() {
  std::array<const char*, 256> names{};
  for (auto& name : names) name = nullptr;
  const std::pair<unsigned char, const char*> known[] = {
      {'I', "INT"}, {'J', "BININT"}, {'K', "BININT1"}, {'M', "BININT2"}, {'L', "LONG"}, {0x8a, "LONG1"},
      {0x8b, "LONG4"}, {'S', "STRING"}, {'T', "BINSTRING"}, {'U', "SHORT_BINSTRING"}, {'B', "BINBYTES"},
      {'C', "SHORT_BINBYTES"}, {0x8e, "BINBYTES8"}, {0x96, "BYTEARRAY8"}, {0x97, "NEXT_BUFFER"},
      {0x98, "READONLY_BUFFER"}, {'N', "NONE"}, {0x88, "NEWTRUE"}, {0x89, "NEWFALSE"}, {'V', "UNICODE"},
      {0x8c, "SHORT_BINUNICODE"}, {'X', "BINUNICODE"}, {0x8d, "BINUNICODE8"}, {'F', "FLOAT"}, {'G', "BINFLOAT"},
      {']', "EMPTY_LIST"}, {'a', "APPEND"}, {'e', "APPENDS"}, {'l', "LIST"}, {')', "EMPTY_TUPLE"}, {'t', "TUPLE"},
      {0x85, "TUPLE1"}, {0x86, "TUPLE2"}, {0x87, "TUPLE3"}, {'}', "EMPTY_DICT"}, {'d', "DICT"}, {'s', "SETITEM"},
      {'u', "SETITEMS"}, {0x8f, "EMPTY_SET"}, {0x90, "ADDITEMS"}, {0x91, "FROZENSET"}, {'0', "POP"}, {'2', "DUP"},
      {'(', "MARK"}, {'1', "POP_MARK"}, {'g', "GET"}, {'h', "BINGET"}, {'j', "LONG_BINGET"}, {'p', "PUT"},
      {'q', "BINPUT"}, {'r', "LONG_BINPUT"}, {0x94, "MEMOIZE"}, {0x82, "EXT1"}, {0x83, "EXT2"}, {0x84, "EXT4"},
      {'c', "GLOBAL"}, {0x93, "STACK_GLOBAL"}, {'R', "REDUCE"}, {'b', "BUILD"}, {'i', "INST"}, {'o', "OBJ"},
      {0x81, "NEWOBJ"}, {0x92, "NEWOBJ_EX"}, {0x80, "PROTO"}, {'.', "STOP"}, {0x95, "FRAME"}, {'P', "PERSID"},
      {'Q', "BINPERSID"},
  };
  for (const auto& [code, name] : known) names[code] = name;
  return names;
}
constexpr auto kOpcodeNames = opcode_names();

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::none: return "None";
    case Kind::boolean: return "bool";
    case Kind::integer:
    case Kind::big_integer: return "int";
    case Kind::real: return "float";
    case Kind::text: return "str";
    case Kind::bytes: return "bytes";
    case Kind::tuple: return "tuple";
    case Kind::list: return "list";
    case Kind::dict: return "dict";
    case Kind::set: return "set";
    case Kind::global: return "global";
    case Kind::object: return "inert object";
    case Kind::storage_type: return "storage type";
    case Kind::dtype: return "dtype";
    case Kind::storage: return "storage";
    case Kind::tensor: return "tensor";
  }
  return "value";
}

// Modules and names whose functions run commands, evaluate code, import, open files or sockets, or reach into
// the interpreter. Nothing here is ever called, so this list is not what keeps the reader safe (a name it misses
// stays inert); it decides that a checkpoint naming one is hostile and is refused rather than read.
bool runs_code(const std::string& module, const std::string& name) {
  static const char* const kModules[] = {
      "os", "posix", "nt", "subprocess", "sys", "shutil", "socket", "importlib", "runpy", "pty", "pickle", "_pickle",
      "marshal", "ctypes", "code", "codeop", "commands", "webbrowser", "multiprocessing", "asyncio", "pydoc",
      "timeit", "platform", "tempfile", "io", "_io", "pathlib", "operator", "_operator", "functools", "types",
      "inspect", "ast", "bdb", "pdb", "trace", "profile", "cProfile", "site", "distutils", "setuptools", "pip",
      "urllib", "http", "requests", "ftplib", "smtplib", "telnetlib", "xmlrpc", "glob", "zipimport", "imp",
      "signal", "threading", "_thread", "gc", "dill", "cloudpickle", "joblib", "shelve", "dbm", "sqlite3",
      "logging", "fileinput", "zipfile", "tarfile", "linecache", "getpass", "uuid", "selectors", "select",
      "mmap", "resource", "posixpath", "ntpath", "genericpath", "email", "smtpd", "venv", "ensurepip", "idlelib",
      "tkinter", "turtle", "numpy.testing", "numpy.f2py", "numpy.distutils", "numpy.ctypeslib", "numpy.lib.npyio",
      "numpy.load", "torch.jit", "torch.hub", "torch.package", "torch.serialization", "torch.utils.cpp_extension",
      "torch._dynamo", "torch._inductor", "torch.ops", "torch.classes", "torch.distributed", "torch.multiprocessing",
      "torch.fx", "torch._C", "torch.load", "torch.compile", "torch.export", "torch.onnx", "torch.utils.data",
  };
  const std::string qualified = module + "." + name;
  for (const char* denied : kModules) {
    const std::string_view entry(denied);
    for (const std::string* candidate : {&module, &qualified}) {
      if (*candidate == entry || (candidate->size() > entry.size() && candidate->starts_with(entry) &&
                                  (*candidate)[entry.size()] == '.')) {
        return true;
      }
    }
  }
  if (module == "builtins" || module == "__builtin__") {
    // Constructors of plain data are fine (protocol 2 names set, frozenset and object); everything else in
    // builtins (eval, exec, getattr, __import__, open, compile, ...) is not.
    static const char* const kData[] = {"set", "frozenset", "dict", "list", "tuple", "object", "int", "float", "str",
                                        "bool", "complex", "bytes", "bytearray", "slice", "range"};
    return std::none_of(std::begin(kData), std::end(kData), [&](const char* allowed) { return name == allowed; });
  }
  return false;
}

struct StorageClass {
  const char* name;
  int dtype;  // DType, or -1 for UntypedStorage, -2 for a storage convbridge does not carry
};
constexpr StorageClass kStorageClasses[] = {
    {"DoubleStorage", static_cast<int>(DType::float64)}, {"FloatStorage", static_cast<int>(DType::float32)},
    {"HalfStorage", static_cast<int>(DType::float16)},   {"BFloat16Storage", static_cast<int>(DType::bfloat16)},
    {"LongStorage", static_cast<int>(DType::int64)},     {"IntStorage", static_cast<int>(DType::int32)},
    {"ShortStorage", static_cast<int>(DType::int16)},    {"CharStorage", static_cast<int>(DType::int8)},
    {"ByteStorage", static_cast<int>(DType::uint8)},     {"BoolStorage", static_cast<int>(DType::boolean)},
    {"UntypedStorage", -1},                              {"ComplexFloatStorage", -2},
    {"ComplexDoubleStorage", -2},                        {"QInt8Storage", -2},
    {"QUInt8Storage", -2},                               {"QInt32Storage", -2},
    {"QUInt4x2Storage", -2},                             {"QUInt2x4Storage", -2},
};

struct DTypeName {
  const char* name;
  int dtype;  // -2: a dtype convbridge does not carry
};
constexpr DTypeName kDTypeNames[] = {
    {"float32", static_cast<int>(DType::float32)},   {"float", static_cast<int>(DType::float32)},
    {"float64", static_cast<int>(DType::float64)},   {"double", static_cast<int>(DType::float64)},
    {"float16", static_cast<int>(DType::float16)},   {"half", static_cast<int>(DType::float16)},
    {"bfloat16", static_cast<int>(DType::bfloat16)}, {"int64", static_cast<int>(DType::int64)},
    {"long", static_cast<int>(DType::int64)},        {"int32", static_cast<int>(DType::int32)},
    {"int", static_cast<int>(DType::int32)},         {"int16", static_cast<int>(DType::int16)},
    {"short", static_cast<int>(DType::int16)},       {"int8", static_cast<int>(DType::int8)},
    {"uint8", static_cast<int>(DType::uint8)},       {"bool", static_cast<int>(DType::boolean)},
    {"uint16", static_cast<int>(DType::uint16)},     {"uint32", static_cast<int>(DType::uint32)},
    {"uint64", static_cast<int>(DType::uint64)},     {"float8_e4m3fn", static_cast<int>(DType::float8_e4m3fn)},
    {"float8_e5m2", static_cast<int>(DType::float8_e5m2)},
    {"complex32", -2}, {"complex64", -2}, {"complex128", -2}, {"cfloat", -2}, {"cdouble", -2}, {"chalf", -2},
    {"float8_e4m3fnuz", -2}, {"float8_e5m2fnuz", -2}, {"float8_e8m0fnu", -2}, {"float4_e2m1fn_x2", -2},
    {"qint8", -2}, {"quint8", -2}, {"qint32", -2}, {"quint4x2", -2}, {"quint2x4", -2},
};

// Decodes a little-endian two's-complement integer (LONG1/LONG4 payloads); nullopt if it does not fit 64 bits.
std::optional<int64_t> decode_long(std::span<const std::byte> bytes) {
  if (bytes.empty()) return int64_t{0};
  const bool negative = (std::to_integer<unsigned>(bytes.back()) & 0x80) != 0;
  const std::byte fill = negative ? std::byte{0xFF} : std::byte{0};
  for (size_t i = 8; i < bytes.size(); ++i) {
    if (bytes[i] != fill) return std::nullopt;
  }
  if (bytes.size() > 8 && ((std::to_integer<unsigned>(bytes[7]) & 0x80) != 0) != negative) return std::nullopt;
  uint64_t value = negative ? ~uint64_t{0} : 0;
  for (size_t i = 0; i < std::min<size_t>(8, bytes.size()); ++i) {
    value &= ~(uint64_t{0xFF} << (8 * i));
    value |= std::to_integer<uint64_t>(bytes[i]) << (8 * i);
  }
  return static_cast<int64_t>(value);
}

// Code points of UTF-8 text as Latin-1 bytes (what _codecs.encode(text, 'latin1') returns); nullopt above U+00FF.
std::optional<std::string> utf8_to_latin1(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if ((c == 0xC2 || c == 0xC3) && i + 1 < text.size()) {
      out += static_cast<char>(((c & 0x1F) << 6) | (static_cast<unsigned char>(text[++i]) & 0x3F));
    } else {
      return std::nullopt;
    }
  }
  return out;
}

std::string latin1_to_utf8(std::string_view bytes) {
  std::string out;
  for (char byte : bytes) {
    const auto c = static_cast<unsigned char>(byte);
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

void append_utf8(std::string& out, uint32_t code_point) {
  if (code_point < 0x80) {
    out += static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    out += static_cast<char>(0xC0 | (code_point >> 6));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else if (code_point < 0x10000) {
    out += static_cast<char>(0xE0 | (code_point >> 12));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code_point >> 18));
    out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  }
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

// ---- bookkeeping ------------------------------------------------------------------------------------------------

Error Machine::fail(std::string message) const {
  return file_error(label_, ErrorCode::invalid_argument,
                    fmt::format("pickle opcode {} at byte {}: {}", opcode_, position_, message));
}

Status Machine::charge(uint64_t bytes) {
  value_bytes_ += bytes;
  if (value_bytes_ > limits_.max_value_bytes) {
    return fail(fmt::format("the pickle builds more than {} MiB of values (a memory bomb?)",
                            limits_.max_value_bytes >> 20));
  }
  return Ok{};
}

Result<ValueId> Machine::make(Value value) {
  CONVBRIDGE_CHECK(charge(sizeof(Value) + value.text.size() + value.items.size() * sizeof(ValueId)));
  if (values_.size() >= kNoValue - 1) return fail("too many values");
  values_.push_back(std::move(value));
  return static_cast<ValueId>(values_.size() - 1);
}

Result<ValueId> Machine::make_scalar(Kind kind, int64_t number) {
  Value value;
  value.kind = kind;
  value.number = number;
  return make(std::move(value));
}

Status Machine::push(ValueId id) {
  if (stack_.size() >= limits_.max_stack) return fail(fmt::format("the stack exceeds {} entries", limits_.max_stack));
  stack_.push_back(id);
  return Ok{};
}

Result<ValueId> Machine::pop() {
  const size_t floor = marks_.empty() ? 0 : marks_.back();
  if (stack_.size() <= floor) return fail("pops from an empty stack");
  const ValueId id = stack_.back();
  stack_.pop_back();
  return id;
}

Result<ValueId> Machine::top() const {
  const size_t floor = marks_.empty() ? 0 : marks_.back();
  if (stack_.size() <= floor) return fail("reads an empty stack");
  return stack_.back();
}

Result<std::vector<ValueId>> Machine::pop_to_mark() {
  if (marks_.empty()) return fail("needs a MARK and there is none");
  const size_t mark = marks_.back();
  marks_.pop_back();
  std::vector<ValueId> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
  stack_.resize(mark);
  return items;
}

std::string Machine::describe(ValueId id) const {
  const Value& value = values_[id];
  if (value.kind == Kind::global) return fmt::format("the global {}", printable(globals_[static_cast<size_t>(value.number)].name));
  if (value.kind == Kind::object && value.callable != kNoValue) {
    return fmt::format("an inert {} object", globals_[static_cast<size_t>(values_[value.callable].number)].name);
  }
  return fmt::format("a {}", kind_name(value.kind));
}

// ---- globals ----------------------------------------------------------------------------------------------------

Result<ValueId> Machine::resolve_global(const std::string& module, const std::string& name) {
  const std::string qualified = module + "." + name;
  // Python names have no control characters; refusing them keeps every later message one printable line (a
  // STACK_GLOBAL name with a newline was found by fuzz_torch_checkpoint).
  const bool has_control = std::any_of(qualified.begin(), qualified.end(),
                                       [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
  if (!is_valid_utf8(qualified) || qualified.size() > 512 || has_control) {
    return fail(fmt::format("a malformed global name '{}'", printable(qualified)));
  }
  if (runs_code(module, name)) {
    return fail(fmt::format("the pickle names {}, which can run code: refusing the file (nothing was executed)",
                            printable(qualified)));
  }
  auto found = global_table_.find(qualified);
  if (found == global_table_.end()) {
    Builtin builtin = Builtin::inert;
    std::string meaning = "kept inert";
    int64_t code = 0;
    const auto is = [&](const char* m, const char* n) { return module == m && name == n; };
    if (is("collections", "OrderedDict") || is("builtins", "dict") || is("__builtin__", "dict")) {
      builtin = Builtin::ordered_dict, meaning = "rebuilt as a dict";
    } else if (is("builtins", "set") || is("__builtin__", "set") || is("builtins", "frozenset") ||
               is("__builtin__", "frozenset")) {
      builtin = Builtin::set, meaning = "rebuilt as a set";
    } else if (is("builtins", "list") || is("__builtin__", "list")) {
      builtin = Builtin::list, meaning = "rebuilt as a list";
    } else if (is("builtins", "tuple") || is("__builtin__", "tuple") || is("torch", "Size")) {
      builtin = Builtin::tuple, meaning = "rebuilt as a tuple";
    } else if (is("_codecs", "encode")) {
      builtin = Builtin::codecs_encode, meaning = "rebuilt as bytes (protocol 2's spelling of bytes)";
    } else if (is("torch._utils", "_rebuild_tensor")) {
      builtin = Builtin::rebuild_tensor, meaning = "rebuilds a tensor";
    } else if (is("torch._utils", "_rebuild_tensor_v2")) {
      builtin = Builtin::rebuild_tensor_v2, meaning = "rebuilds a tensor";
    } else if (is("torch._utils", "_rebuild_tensor_v3")) {
      builtin = Builtin::rebuild_tensor_v3, meaning = "rebuilds a tensor";
    } else if (is("torch._utils", "_rebuild_parameter") || is("torch._utils", "_rebuild_parameter_with_state")) {
      builtin = Builtin::rebuild_parameter, meaning = "rebuilds an nn.Parameter (its tensor)";
    } else if (is("torch._tensor", "_rebuild_from_type_v2")) {
      builtin = Builtin::rebuild_from_type, meaning = "rebuilds a tensor subclass (its tensor)";
    } else if (is("torch.storage", "_load_from_bytes")) {
      builtin = Builtin::unsupported, meaning = "a storage pickled as a legacy torch.save inside the pickle";
    } else if (module == "torch" || module == "torch.cuda" || module == "torch.storage") {
      for (const StorageClass& storage : kStorageClasses) {
        if (name == storage.name && (module != "torch.storage" || storage.dtype == -1)) {
          builtin = storage.dtype == -2 ? Builtin::unsupported : Builtin::storage_type;
          meaning = storage.dtype == -2 ? "a storage type convbridge does not carry" : "a storage type";
          code = storage.dtype;
        }
      }
      if (module == "torch") {
        for (const DTypeName& dtype : kDTypeNames) {
          if (name == dtype.name) {
            builtin = dtype.dtype == -2 ? Builtin::unsupported : Builtin::dtype;
            meaning = dtype.dtype == -2 ? "a dtype convbridge does not carry" : "a dtype";
            code = dtype.dtype;
          }
        }
      }
    }
    PickleGlobal report;
    report.name = qualified;
    report.meaning = meaning;
    report.known = builtin != Builtin::inert;
    globals_.push_back(report);
    found = global_table_.emplace(qualified, GlobalEntry{builtin, globals_.size() - 1}).first;
    if (builtin == Builtin::storage_type || builtin == Builtin::dtype) {
      // Storage types and dtypes are values in their own right (a persistent id or _rebuild_tensor_v3 argument).
      CONVBRIDGE_TRY(const ValueId id, make_scalar(builtin == Builtin::storage_type ? Kind::storage_type : Kind::dtype, code));
      values_[id].text = qualified;
      typed_global_values_.emplace(globals_.size() - 1, id);
    }
  }
  ++globals_[found->second.report].references;
  if (auto typed = typed_global_values_.find(found->second.report); typed != typed_global_values_.end()) {
    return typed->second;
  }
  CONVBRIDGE_TRY(const ValueId id, make_scalar(Kind::global, static_cast<int64_t>(found->second.report)));
  values_[id].text = qualified;
  return id;
}

// A call the pickle asks for: interpreted for the fixed table, recorded (never made) for every other global.
Result<ValueId> Machine::call(ValueId callable, ValueId arguments, const char* how) {
  const Value& target = values_[callable];
  if (target.kind != Kind::global) {
    if (target.kind == Kind::storage_type || target.kind == Kind::dtype) {
      return fail(fmt::format("{} calls {}; torch.save never does", how, target.text));
    }
    return fail(fmt::format("{} calls {}: only named globals are callable", how, describe(callable)));
  }
  if (values_[arguments].kind != Kind::tuple) {
    return fail(fmt::format("{} passes {} as the arguments, not a tuple", how, describe(arguments)));
  }
  const PickleGlobal& report = globals_[static_cast<size_t>(target.number)];
  const Builtin builtin = global_table_.at(report.name).builtin;
  const std::vector<ValueId> args = values_[arguments].items;
  const auto iterable_items = [&](ValueId id) -> Result<std::vector<ValueId>> {
    const Value& v = values_[id];
    if (v.kind == Kind::list || v.kind == Kind::tuple || v.kind == Kind::set) return v.items;
    return fail(fmt::format("{} of {} needs a list or tuple, not {}", how, report.name, describe(id)));
  };
  switch (builtin) {
    case Builtin::ordered_dict: {
      if (args.size() > 1) return fail(fmt::format("{} passes {} arguments to {}", how, args.size(), report.name));
      Value dict;
      dict.kind = Kind::dict;
      CONVBRIDGE_TRY(const ValueId id, make(std::move(dict)));
      if (args.size() == 1) {
        if (values_[args[0]].kind == Kind::dict) {
          const std::vector<ValueId> pairs = values_[args[0]].items;
          for (size_t i = 0; i + 1 < pairs.size(); i += 2) CONVBRIDGE_CHECK(set_item(id, pairs[i], pairs[i + 1], how));
        } else {
          CONVBRIDGE_TRY(const auto pairs, iterable_items(args[0]));
          for (ValueId pair : pairs) {
            const Value& entry = values_[pair];
            if ((entry.kind != Kind::tuple && entry.kind != Kind::list) || entry.items.size() != 2) {
              return fail(fmt::format("{} of {}: an item is {}, not a (key, value) pair", how, report.name, describe(pair)));
            }
            CONVBRIDGE_CHECK(set_item(id, entry.items[0], entry.items[1], how));
          }
        }
      }
      return id;
    }
    case Builtin::set:
    case Builtin::list:
    case Builtin::tuple: {
      if (args.size() > 1) return fail(fmt::format("{} passes {} arguments to {}", how, args.size(), report.name));
      Value out;
      out.kind = builtin == Builtin::set ? Kind::set : builtin == Builtin::list ? Kind::list : Kind::tuple;
      if (args.size() == 1) {
        CONVBRIDGE_TRY(out.items, iterable_items(args[0]));
      }
      return make(std::move(out));
    }
    case Builtin::codecs_encode: {
      if (args.size() != 2 || values_[args[0]].kind != Kind::text || values_[args[1]].kind != Kind::text ||
          (values_[args[1]].text != "latin1" && values_[args[1]].text != "latin-1")) {
        return fail(fmt::format("{} of _codecs.encode needs (str, 'latin1')", how));
      }
      const auto bytes = utf8_to_latin1(values_[args[0]].text);
      if (!bytes) return fail("_codecs.encode: the text is not Latin-1");
      Value out;
      out.kind = Kind::bytes;
      out.text = *bytes;
      return make(std::move(out));
    }
    case Builtin::rebuild_tensor:
      if (args.size() != 4) return fail(fmt::format("{} passes {} arguments to {} (4 expected)", how, args.size(), report.name));
      return rebuild_tensor(args, std::nullopt, report.name.c_str());
    case Builtin::rebuild_tensor_v2:
      if (args.size() != 6 && args.size() != 7) {
        return fail(fmt::format("{} passes {} arguments to {} (6 or 7 expected)", how, args.size(), report.name));
      }
      return rebuild_tensor(args, std::nullopt, report.name.c_str());
    case Builtin::rebuild_tensor_v3: {
      if (args.size() != 7 && args.size() != 8) {
        return fail(fmt::format("{} passes {} arguments to {} (7 or 8 expected)", how, args.size(), report.name));
      }
      const Value& dtype = values_[args[6]];
      if (dtype.kind != Kind::dtype) return fail(fmt::format("{}: its dtype argument is {}", report.name, describe(args[6])));
      return rebuild_tensor(args, static_cast<DType>(dtype.number), report.name.c_str());
    }
    case Builtin::rebuild_parameter: {
      if (args.size() < 3 || args.size() > 4 || values_[args[0]].kind != Kind::tensor) {
        return fail(fmt::format("{} of {} needs (tensor, requires_grad, hooks[, state])", how, report.name));
      }
      return args[0];
    }
    case Builtin::rebuild_from_type: {
      if (args.size() != 4 || values_[args[2]].kind != Kind::tuple) {
        return fail(fmt::format("{} of {} needs (function, type, args, state)", how, report.name));
      }
      CONVBRIDGE_TRY(const ValueId rebuilt, call(args[0], args[2], how));
      if (values_[rebuilt].kind != Kind::tensor) {
        return fail(fmt::format("{} of {} did not rebuild a tensor", how, report.name));
      }
      return rebuilt;
    }
    case Builtin::storage_type:
    case Builtin::dtype:
      return fail(fmt::format("{} calls {}; torch.save never does", how, report.name));
    case Builtin::unsupported:
      return file_error(label_, ErrorCode::unsupported,
                        fmt::format("the pickle uses {} ({}), which convbridge does not read", report.name, report.meaning));
    case Builtin::inert:
      break;
  }
  ++globals_[static_cast<size_t>(target.number)].refused_calls;
  Value object;
  object.kind = Kind::object;
  object.callable = callable;
  object.arguments = arguments;
  return make(std::move(object));
}

Result<ValueId> Machine::rebuild_tensor(const std::vector<ValueId>& args, std::optional<DType> explicit_dtype,
                                        const char* function) {
  const Value& storage_value = values_[args[0]];
  if (storage_value.kind != Kind::storage) {
    return fail(fmt::format("{}: its storage argument is {}", function, describe(args[0])));
  }
  const auto integer_tuple = [&](ValueId id, const char* what) -> Result<std::vector<int64_t>> {
    const Value& v = values_[id];
    if (v.kind != Kind::tuple) return fail(fmt::format("{}: {} is {}, not a tuple", function, what, describe(id)));
    std::vector<int64_t> out;
    for (ValueId item : v.items) {
      const Value& entry = values_[item];
      if (entry.kind != Kind::integer || entry.number < 0) {
        return fail(fmt::format("{}: {} holds {}, not a non-negative integer", function, what, describe(item)));
      }
      out.push_back(entry.number);
    }
    return out;
  };
  Tensor tensor;
  tensor.storage = static_cast<size_t>(storage_value.number);
  // A typed storage's dtype is the tensor's (v2); v3 names it (its storage is untyped, or typed the same way).
  const int storage_dtype = static_cast<int>(storage_value.real);
  if (explicit_dtype) {
    tensor.dtype = *explicit_dtype;
  } else if (storage_dtype >= 0) {
    tensor.dtype = static_cast<DType>(storage_dtype);
  } else {
    return fail(fmt::format("{} rebuilds a tensor on an untyped storage without naming its dtype", function));
  }
  const Value& offset = values_[args[1]];
  if (offset.kind != Kind::integer || offset.number < 0) {
    return fail(fmt::format("{}: storage_offset is {}", function, describe(args[1])));
  }
  tensor.storage_offset = offset.number;
  CONVBRIDGE_TRY(tensor.sizes, integer_tuple(args[2], "size"));
  CONVBRIDGE_TRY(tensor.strides, integer_tuple(args[3], "stride"));
  if (tensor.sizes.size() != tensor.strides.size() || tensor.sizes.size() > 64) {
    return fail(fmt::format("{}: size {} and stride {} do not fit together (or have more than 64 dimensions)", function,
                            shape_string(tensor.sizes), shape_string(tensor.strides)));
  }
  const auto numel = checked_product(tensor.sizes);
  if (!numel) return fail(fmt::format("{}: size {} overflows 64 bits", function, shape_string(tensor.sizes)));
  tensor.numel = *numel;
  const int64_t element_size = dtype_info(tensor.dtype).size;
  const int64_t storage_bytes = storages_[tensor.storage].bytes;
  if (tensor.numel > 0) {
    // The last element the view touches: storage_offset + sum((size - 1) * stride), inside the storage.
    std::optional<int64_t> last = 0;
    for (size_t d = 0; d < tensor.sizes.size() && last; ++d) {
      const auto step = checked_mul(tensor.sizes[d] - 1, tensor.strides[d]);
      last = step ? checked_add(*last, *step) : std::nullopt;
    }
    const auto extent = last ? checked_add(*last, 1) : std::nullopt;
    const auto end = extent ? checked_add(tensor.storage_offset, *extent) : std::nullopt;
    const auto end_bytes = end ? checked_mul(*end, element_size) : std::nullopt;
    if (!end_bytes || *end_bytes > storage_bytes) {
      return fail(fmt::format("{}: a {} view with storage_offset {}, size {} and stride {} reaches past its storage "
                              "'{}' ({} bytes)",
                              function, dtype_info(tensor.dtype).name, tensor.storage_offset, shape_string(tensor.sizes),
                              shape_string(tensor.strides), printable(storages_[tensor.storage].key), storage_bytes));
    }
    tensor.extent_elements = *extent;
  }
  tensors_.push_back(std::move(tensor));
  return make_scalar(Kind::tensor, static_cast<int64_t>(tensors_.size() - 1));
}

// torch/serialization.py persistent_load: ('storage', storage_type, key, location, numel).
Result<ValueId> Machine::persistent_load(ValueId pid) {
  const Value& id = values_[pid];
  if (id.kind != Kind::tuple || id.items.size() != 5 || values_[id.items[0]].kind != Kind::text ||
      values_[id.items[0]].text != "storage") {
    return fail(fmt::format("a persistent id that is not ('storage', type, key, location, numel) but {}", describe(pid)));
  }
  const Value& type = values_[id.items[1]];
  const Value& key = values_[id.items[2]];
  const Value& location = values_[id.items[3]];
  const Value& numel = values_[id.items[4]];
  if (type.kind == Kind::global &&
      global_table_.at(globals_[static_cast<size_t>(type.number)].name).builtin == Builtin::unsupported) {
    return file_error(label_, ErrorCode::unsupported,
                      fmt::format("a storage of type {} (complex or quantized), which convbridge does not carry",
                                  globals_[static_cast<size_t>(type.number)].name));
  }
  if (type.kind != Kind::storage_type) return fail(fmt::format("a persistent id whose storage type is {}", describe(id.items[1])));
  if (key.kind != Kind::text || key.text.empty() || key.text.size() > 64 ||
      !std::all_of(key.text.begin(), key.text.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; })) {
    return fail(fmt::format("a storage key that is {} '{}', not a short alphanumeric string", describe(id.items[2]),
                            printable(key.text)));
  }
  if (location.kind != Kind::text) return fail(fmt::format("a storage location that is {}", describe(id.items[3])));
  if (numel.kind != Kind::integer || numel.number < 0) {
    return fail(fmt::format("storage '{}' has {} as its element count", key.text, describe(id.items[4])));
  }
  StorageRequest request;
  if (type.number >= 0) request.dtype = static_cast<DType>(type.number);
  request.key = key.text;
  request.location = location.text;
  request.numel = numel.number;
  CONVBRIDGE_TRY(const int64_t bytes, resolver_(request));
  size_t index = 0;
  if (auto found = storage_by_key_.find(request.key); found != storage_by_key_.end()) {
    index = found->second;
    if (storages_[index].bytes != bytes) return fail(fmt::format("storage '{}' is declared with two sizes", key.text));
  } else {
    storages_.push_back(Storage{request.key, bytes});
    index = storages_.size() - 1;
    storage_by_key_.emplace(request.key, index);
  }
  CONVBRIDGE_TRY(const ValueId storage, make_scalar(Kind::storage, static_cast<int64_t>(index)));
  values_[storage].real = static_cast<double>(type.number);  // the storage's element type (-1: untyped)
  return storage;
}

// ---- container mutation -----------------------------------------------------------------------------------------

// A canonical text for a dict key, equal for keys Python treats as equal (1 == True; a tuple by its items).
std::string Machine::key_of(ValueId id, int depth) const {
  const Value& v = values_[id];
  switch (v.kind) {
    case Kind::none: return "n";
    case Kind::boolean:
    case Kind::integer: return fmt::format("i{}", v.number);
    case Kind::big_integer: return "I" + v.text;
    case Kind::real:
      // Range first: converting a double outside int64's range is undefined (found by fuzz_torch_checkpoint).
      if (std::abs(v.real) < 9e15 && v.real == std::trunc(v.real)) {
        return fmt::format("i{}", static_cast<int64_t>(v.real));
      }
      return fmt::format("f{}", v.real);
    case Kind::text: return "s" + v.text;
    case Kind::bytes: return "b" + v.text;
    case Kind::global: return "g" + v.text;
    case Kind::tuple: {
      if (depth > 8 || v.items.size() > 64) break;
      std::string key = "t(";
      for (ValueId item : v.items) key += key_of(item, depth + 1) + ",";
      return key + ")";
    }
    default: break;
  }
  return fmt::format("#{}", id);  // by identity
}

Status Machine::set_item(ValueId target, ValueId key, ValueId item, const char* opcode) {
  if (values_[target].kind != Kind::dict) {
    // Python would call the target's __setitem__, which for anything but a dict may run code (CVE-2026-24747).
    return fail(fmt::format("{} on {}, not a dict", opcode, describe(target)));
  }
  std::string canonical = key_of(key, 0);
  CONVBRIDGE_CHECK(charge(canonical.size() + 48 + 2 * sizeof(ValueId)));
  auto& index = dict_index_[target];
  auto& items = values_[target].items;
  if (auto found = index.find(canonical); found != index.end()) {
    items[found->second + 1] = item;  // Python keeps the first key and the last value
    return Ok{};
  }
  index.emplace(std::move(canonical), items.size());
  items.push_back(key);
  items.push_back(item);
  return Ok{};
}

Status Machine::append_items(ValueId target, std::span<const ValueId> items, const char* opcode) {
  Value& list = values_[target];
  const bool is_set = list.kind == Kind::set;
  if (list.kind != Kind::list && !(is_set && std::string_view(opcode) == "ADDITEMS")) {
    // Python would call the target's append or extend method.
    return fail(fmt::format("{} on {}, not a {}", opcode, describe(target),
                            std::string_view(opcode) == "ADDITEMS" ? "set" : "list"));
  }
  CONVBRIDGE_CHECK(charge(items.size() * sizeof(ValueId)));
  values_[target].items.insert(values_[target].items.end(), items.begin(), items.end());
  return Ok{};
}

Status Machine::build(ValueId target, ValueId state) {
  Value& object = values_[target];
  switch (object.kind) {
    case Kind::object:
      // Python would call __setstate__ or update __dict__; here the state is kept as the object's attributes.
      if (object.state == kNoValue) {
        object.state = state;
        return Ok{};
      }
      if (values_[object.state].kind == Kind::dict && values_[state].kind == Kind::dict) {
        const std::vector<ValueId> pairs = values_[state].items;
        for (size_t i = 0; i + 1 < pairs.size(); i += 2) CONVBRIDGE_CHECK(set_item(object.state, pairs[i], pairs[i + 1], "BUILD"));
        return Ok{};
      }
      values_[target].state = state;
      return Ok{};
    case Kind::dict:    // OrderedDict's _metadata attribute (nn.Module.state_dict): not an item
    case Kind::tensor:  // a Parameter's or tensor subclass's Python attributes
      return Ok{};
    default:
      return fail(fmt::format("BUILD on {} (Python would call its __setstate__)", describe(target)));
  }
}

// ---- the interpreter --------------------------------------------------------------------------------------------

Status Machine::run(std::span<const std::byte> program) {
  size_t at = 0;
  const size_t end = program.size();
  const auto need = [&](size_t n) -> Status {
    if (end - at < n) return fail(fmt::format("needs {} more bytes; the pickle ends", n));
    return Ok{};
  };
  const auto read_line = [&]() -> Result<std::string> {
    const size_t limit = std::min(end, at + limits_.max_line);
    for (size_t i = at; i < limit; ++i) {
      if (program[i] == std::byte{'\n'}) {
        std::string line(reinterpret_cast<const char*>(program.data() + at), i - at);
        at = i + 1;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return line;
      }
    }
    return fail(fmt::format("a text argument without a newline within {} bytes", limits_.max_line));
  };
  const auto read_bytes = [&](uint64_t n) -> Result<std::string> {
    if (n > end - at) return fail(fmt::format("declares {} bytes of data but only {} remain", n, end - at));
    std::string out(reinterpret_cast<const char*>(program.data() + at), static_cast<size_t>(n));
    at += static_cast<size_t>(n);
    return out;
  };
  const auto push_text = [&](std::string text, bool unicode) -> Status {
    Value value;
    if (unicode && !is_valid_utf8(text)) return fail("a string that is not valid UTF-8");
    // Protocol 2's str (BINSTRING) is text when it decodes as UTF-8; Python 3 reads it as ASCII or latin-1.
    value.kind = unicode || is_valid_utf8(text) ? Kind::text : Kind::bytes;
    value.text = std::move(text);
    CONVBRIDGE_TRY(const ValueId id, make(std::move(value)));
    return push(id);
  };
  const auto push_bytes = [&](std::string bytes) -> Status {
    Value value;
    value.kind = Kind::bytes;
    value.text = std::move(bytes);
    CONVBRIDGE_TRY(const ValueId id, make(std::move(value)));
    return push(id);
  };
  const auto push_integer = [&](int64_t number) -> Status {
    CONVBRIDGE_TRY(const ValueId id, make_scalar(Kind::integer, number));
    return push(id);
  };
  const auto push_long = [&](const std::string& bytes) -> Status {
    const auto value = decode_long(std::as_bytes(std::span<const char>(bytes)));
    if (value) return push_integer(*value);
    Value big;
    big.kind = Kind::big_integer;
    big.text = bytes;
    CONVBRIDGE_TRY(const ValueId id, make(std::move(big)));
    return push(id);
  };
  const auto push_decimal = [&](std::string text, bool allow_bool) -> Status {
    if (!text.empty() && text.back() == 'L') text.pop_back();
    if (allow_bool && (text == "00" || text == "01")) {
      CONVBRIDGE_TRY(const ValueId id, make_scalar(Kind::boolean, text == "01"));
      return push(id);
    }
    int64_t number = 0;
    const char* first = text.data() + (text.starts_with('+') ? 1 : 0);
    const auto [stop, error] = std::from_chars(first, text.data() + text.size(), number);
    if (text.empty() || stop != text.data() + text.size()) return fail(fmt::format("'{}' is not an integer", printable(text)));
    if (error == std::errc::result_out_of_range) {
      Value big;
      big.kind = Kind::big_integer;
      big.text = text;
      CONVBRIDGE_TRY(const ValueId id, make(std::move(big)));
      return push(id);
    }
    if (error != std::errc{}) return fail(fmt::format("'{}' is not an integer", printable(text)));
    return push_integer(number);
  };
  const auto memo_put = [&](uint64_t key) -> Status {
    CONVBRIDGE_TRY(const ValueId id, top());
    ValueId* slot = nullptr;
    if (key < limits_.max_memo) {
      if (memo_dense_.size() <= key) memo_dense_.resize(std::max<size_t>(key + 1, memo_dense_.size() * 2), kNoValue);
      slot = &memo_dense_[key];
    } else if (auto found = memo_sparse_.find(key); found != memo_sparse_.end()) {
      slot = &found->second;
    }
    if (!slot || *slot == kNoValue) {
      if (memo_entries_ >= limits_.max_memo) return fail(fmt::format("the memo exceeds {} entries", limits_.max_memo));
      ++memo_entries_;
      if (!slot) slot = &memo_sparse_[key];
    }
    *slot = id;
    return Ok{};
  };
  const auto memo_get = [&](uint64_t key) -> Status {
    ValueId id = kNoValue;
    if (key < memo_dense_.size()) {
      id = memo_dense_[key];
    } else if (auto found = memo_sparse_.find(key); found != memo_sparse_.end()) {
      id = found->second;
    }
    if (id == kNoValue) return fail(fmt::format("memo entry {} was never stored", key));
    return push(id);  // shared, not copied
  };
  const auto memo_key = [&](const std::string& text) -> Result<uint64_t> {
    uint32_t key = 0;
    const auto [stop, error] = std::from_chars(text.data(), text.data() + text.size(), key);
    if (text.empty() || error != std::errc{} || stop != text.data() + text.size()) {
      return fail(fmt::format("memo key '{}' is not an integer below 2^32", printable(text)));
    }
    return uint64_t{key};
  };
  const auto make_tuple = [&](std::vector<ValueId> items) -> Status {
    Value tuple;
    tuple.kind = Kind::tuple;
    tuple.items = std::move(items);
    CONVBRIDGE_TRY(const ValueId id, make(std::move(tuple)));
    return push(id);
  };
  const auto pop_n = [&](size_t n) -> Result<std::vector<ValueId>> {
    const size_t floor = marks_.empty() ? 0 : marks_.back();
    if (stack_.size() - floor < n) return fail(fmt::format("needs {} stack entries above the mark", n));
    std::vector<ValueId> items(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
    stack_.resize(stack_.size() - n);
    return items;
  };

  while (true) {
    if (at >= end) return fail("the pickle ends without STOP");
    position_ = at;
    const auto code = std::to_integer<unsigned char>(program[at++]);
    opcode_ = kOpcodeNames[code] ? kOpcodeNames[code] : "?";
    switch (code) {
      case 0x80: {  // PROTO
        CONVBRIDGE_CHECK(need(1));
        protocol_ = std::to_integer<int>(program[at++]);
        if (protocol_ > 5) return fail(fmt::format("protocol {} (at most 5 exists)", protocol_));
        break;
      }
      case 0x95: {  // FRAME: a length hint only
        CONVBRIDGE_CHECK(need(8));
        const uint64_t length = load_u64(program.data() + at);
        at += 8;
        if (length > end - at) return fail(fmt::format("a frame of {} bytes where {} remain", length, end - at));
        break;
      }
      case '.': {  // STOP
        CONVBRIDGE_TRY(root_, pop());
        return Ok{};
      }
      case '(':
        if (marks_.size() >= limits_.max_marks) return fail(fmt::format("more than {} open MARKs", limits_.max_marks));
        marks_.push_back(stack_.size());
        break;
      case '0': {
        CONVBRIDGE_TRY(const ValueId dropped, pop());
        (void)dropped;
        break;
      }
      case '1': {
        CONVBRIDGE_TRY(const auto dropped, pop_to_mark());
        (void)dropped;
        break;
      }
      case '2': {
        CONVBRIDGE_TRY(const ValueId id, top());
        CONVBRIDGE_CHECK(push(id));
        break;
      }
      case 'N':
      case 0x88:
      case 0x89: {
        ValueId& shared = code == 'N' ? none_ : code == 0x88 ? true_ : false_;
        if (shared == kNoValue) {
          CONVBRIDGE_TRY(shared, make_scalar(code == 'N' ? Kind::none : Kind::boolean, code == 0x88));
        }
        CONVBRIDGE_CHECK(push(shared));
        break;
      }
      case 'K':
        CONVBRIDGE_CHECK(need(1));
        CONVBRIDGE_CHECK(push_integer(std::to_integer<int64_t>(program[at])));
        at += 1;
        break;
      case 'M':
        CONVBRIDGE_CHECK(need(2));
        CONVBRIDGE_CHECK(push_integer(load_u16(program.data() + at)));
        at += 2;
        break;
      case 'J':
        CONVBRIDGE_CHECK(need(4));
        CONVBRIDGE_CHECK(push_integer(static_cast<int32_t>(load_u32(program.data() + at))));
        at += 4;
        break;
      case 0x8a: {  // LONG1
        CONVBRIDGE_CHECK(need(1));
        const auto n = std::to_integer<uint64_t>(program[at++]);
        CONVBRIDGE_TRY(const std::string bytes, read_bytes(n));
        CONVBRIDGE_CHECK(push_long(bytes));
        break;
      }
      case 0x8b: {  // LONG4
        CONVBRIDGE_CHECK(need(4));
        const int32_t n = static_cast<int32_t>(load_u32(program.data() + at));
        at += 4;
        if (n < 0) return fail("a negative length");
        CONVBRIDGE_TRY(const std::string bytes, read_bytes(static_cast<uint64_t>(n)));
        CONVBRIDGE_CHECK(push_long(bytes));
        break;
      }
      case 'I':
      case 'L': {
        CONVBRIDGE_TRY(std::string text, read_line());
        CONVBRIDGE_CHECK(push_decimal(std::move(text), code == 'I'));
        break;
      }
      case 'G': {
        CONVBRIDGE_CHECK(need(8));
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = bits << 8 | std::to_integer<uint64_t>(program[at + static_cast<size_t>(i)]);
        at += 8;
        CONVBRIDGE_TRY(const ValueId id, make_scalar(Kind::real, 0));
        values_[id].real = std::bit_cast<double>(bits);
        CONVBRIDGE_CHECK(push(id));
        break;
      }
      case 'F': {
        CONVBRIDGE_TRY(const std::string text, read_line());
        double real = 0;
        const auto [stop, error] = std::from_chars(text.data(), text.data() + text.size(), real);
        if (text.empty() || error != std::errc{} || stop != text.data() + text.size()) {
          return fail(fmt::format("'{}' is not a float", printable(text)));
        }
        CONVBRIDGE_TRY(const ValueId id, make_scalar(Kind::real, 0));
        values_[id].real = real;
        CONVBRIDGE_CHECK(push(id));
        break;
      }
      case 0x8c:    // SHORT_BINUNICODE
      case 'U':     // SHORT_BINSTRING
      case 'C': {   // SHORT_BINBYTES
        CONVBRIDGE_CHECK(need(1));
        const auto n = std::to_integer<uint64_t>(program[at++]);
        CONVBRIDGE_TRY(std::string text, read_bytes(n));
        CONVBRIDGE_CHECK(code == 'C' ? push_bytes(std::move(text)) : push_text(std::move(text), code == 0x8c));
        break;
      }
      case 'X':    // BINUNICODE
      case 'T':    // BINSTRING
      case 'B': {  // BINBYTES
        CONVBRIDGE_CHECK(need(4));
        uint64_t n = load_u32(program.data() + at);
        if (code == 'T' && static_cast<int32_t>(n) < 0) return fail("a negative length");
        at += 4;
        CONVBRIDGE_TRY(std::string text, read_bytes(n));
        CONVBRIDGE_CHECK(code == 'B' ? push_bytes(std::move(text)) : push_text(std::move(text), code == 'X'));
        break;
      }
      case 0x8d:    // BINUNICODE8
      case 0x8e:    // BINBYTES8
      case 0x96: {  // BYTEARRAY8
        CONVBRIDGE_CHECK(need(8));
        const uint64_t n = load_u64(program.data() + at);
        at += 8;
        CONVBRIDGE_TRY(std::string text, read_bytes(n));
        CONVBRIDGE_CHECK(code == 0x8d ? push_text(std::move(text), true) : push_bytes(std::move(text)));
        break;
      }
      case 'S': {  // STRING: a quoted repr with backslash escapes
        CONVBRIDGE_TRY(const std::string line, read_line());
        if (line.size() < 2 || (line.front() != '\'' && line.front() != '"') || line.back() != line.front()) {
          return fail("the STRING argument is not quoted");
        }
        std::string out;
        for (size_t i = 1; i + 1 < line.size(); ++i) {
          if (line[i] != '\\' || i + 2 >= line.size()) {
            out += line[i];
            continue;
          }
          const char e = line[++i];
          if (e == 'n') out += '\n';
          else if (e == 't') out += '\t';
          else if (e == 'r') out += '\r';
          else if (e == '0') out += '\0';
          else if (e == 'x' && i + 2 < line.size() && hex_digit(line[i + 1]) >= 0 && hex_digit(line[i + 2]) >= 0) {
            out += static_cast<char>(hex_digit(line[i + 1]) * 16 + hex_digit(line[i + 2]));
            i += 2;
          } else {
            out += e;
          }
        }
        CONVBRIDGE_CHECK(push_text(std::move(out), false));
        break;
      }
      case 'V': {  // UNICODE: raw-unicode-escape (\uXXXX, \UXXXXXXXX; other bytes are Latin-1)
        CONVBRIDGE_TRY(const std::string line, read_line());
        std::string out;
        for (size_t i = 0; i < line.size(); ++i) {
          const size_t digits = line[i] == '\\' && i + 1 < line.size() ? (line[i + 1] == 'u' ? 4 : line[i + 1] == 'U' ? 8 : 0) : 0;
          if (digits && i + 1 + digits < line.size() + 0 && i + 2 + digits <= line.size()) {
            uint32_t code_point = 0;
            bool valid = true;
            for (size_t k = 0; k < digits; ++k) {
              const int d = hex_digit(line[i + 2 + k]);
              valid = valid && d >= 0;
              code_point = code_point * 16 + static_cast<uint32_t>(std::max(d, 0));
            }
            if (!valid || code_point > 0x10FFFF || (code_point >= 0xD800 && code_point <= 0xDFFF)) {
              return fail("a malformed \\u escape in UNICODE");
            }
            append_utf8(out, code_point);
            i += 1 + digits;
          } else {
            out += latin1_to_utf8(std::string_view(&line[i], 1));
          }
        }
        CONVBRIDGE_CHECK(push_text(std::move(out), true));
        break;
      }
      case 0x97:
      case 0x98:
        return fail("out-of-band buffers (protocol 5) are not part of a torch.save file");
      case ']':
      case '}':
      case 0x8f:
      case ')': {
        Value container;
        container.kind = code == ']' ? Kind::list : code == '}' ? Kind::dict : code == 0x8f ? Kind::set : Kind::tuple;
        CONVBRIDGE_TRY(const ValueId id, make(std::move(container)));
        CONVBRIDGE_CHECK(push(id));
        break;
      }
      case 'l':
      case 't':
      case 0x91: {  // LIST, TUPLE, FROZENSET
        CONVBRIDGE_TRY(auto items, pop_to_mark());
        if (code == 't') {
          CONVBRIDGE_CHECK(make_tuple(std::move(items)));
          break;
        }
        Value container;
        container.kind = code == 'l' ? Kind::list : Kind::set;
        container.items = std::move(items);
        CONVBRIDGE_TRY(const ValueId id, make(std::move(container)));
        CONVBRIDGE_CHECK(push(id));
        break;
      }
      case 0x85:
      case 0x86:
      case 0x87: {
        CONVBRIDGE_TRY(auto items, pop_n(code - 0x84u));
        CONVBRIDGE_CHECK(make_tuple(std::move(items)));
        break;
      }
      case 'd': {  // DICT
        CONVBRIDGE_TRY(const auto items, pop_to_mark());
        if (items.size() % 2) return fail("DICT with an odd number of items");
        Value dict;
        dict.kind = Kind::dict;
        CONVBRIDGE_TRY(const ValueId id, make(std::move(dict)));
        for (size_t i = 0; i < items.size(); i += 2) CONVBRIDGE_CHECK(set_item(id, items[i], items[i + 1], "DICT"));
        CONVBRIDGE_CHECK(push(id));
        break;
      }
      case 'a': {  // APPEND
        CONVBRIDGE_TRY(const ValueId item, pop());
        CONVBRIDGE_TRY(const ValueId list, top());
        CONVBRIDGE_CHECK(append_items(list, std::span<const ValueId>(&item, 1), "APPEND"));
        break;
      }
      case 'e':
      case 0x90: {  // APPENDS, ADDITEMS
        CONVBRIDGE_TRY(const auto items, pop_to_mark());
        CONVBRIDGE_TRY(const ValueId target, top());
        CONVBRIDGE_CHECK(append_items(target, items, code == 'e' ? "APPENDS" : "ADDITEMS"));
        break;
      }
      case 's': {  // SETITEM
        CONVBRIDGE_TRY(const ValueId item, pop());
        CONVBRIDGE_TRY(const ValueId key, pop());
        CONVBRIDGE_TRY(const ValueId dict, top());
        CONVBRIDGE_CHECK(set_item(dict, key, item, "SETITEM"));
        break;
      }
      case 'u': {  // SETITEMS
        CONVBRIDGE_TRY(const auto items, pop_to_mark());
        if (items.size() % 2) return fail("SETITEMS with an odd number of items");
        CONVBRIDGE_TRY(const ValueId dict, top());
        if (values_[dict].kind != Kind::dict) return fail(fmt::format("SETITEMS on {}, not a dict", describe(dict)));
        for (size_t i = 0; i < items.size(); i += 2) CONVBRIDGE_CHECK(set_item(dict, items[i], items[i + 1], "SETITEMS"));
        break;
      }
      case 'c':
      case 'i': {  // GLOBAL, INST
        CONVBRIDGE_TRY(const std::string module, read_line());
        CONVBRIDGE_TRY(const std::string name, read_line());
        CONVBRIDGE_TRY(const ValueId global, resolve_global(module, name));
        if (code == 'c') {
          CONVBRIDGE_CHECK(push(global));
          break;
        }
        CONVBRIDGE_TRY(auto items, pop_to_mark());
        Value tuple;
        tuple.kind = Kind::tuple;
        tuple.items = std::move(items);
        CONVBRIDGE_TRY(const ValueId arguments, make(std::move(tuple)));
        CONVBRIDGE_TRY(const ValueId object, call(global, arguments, "INST"));
        CONVBRIDGE_CHECK(push(object));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        CONVBRIDGE_TRY(const ValueId name, pop());
        CONVBRIDGE_TRY(const ValueId module, pop());
        if (values_[name].kind != Kind::text || values_[module].kind != Kind::text) {
          return fail(fmt::format("STACK_GLOBAL needs two strings, not {} and {}", describe(module), describe(name)));
        }
        CONVBRIDGE_TRY(const ValueId global, resolve_global(values_[module].text, values_[name].text));
        CONVBRIDGE_CHECK(push(global));
        break;
      }
      case 'o': {  // OBJ: MARK cls args...
        CONVBRIDGE_TRY(auto items, pop_to_mark());
        if (items.empty()) return fail("OBJ without a class");
        Value tuple;
        tuple.kind = Kind::tuple;
        tuple.items.assign(items.begin() + 1, items.end());
        CONVBRIDGE_TRY(const ValueId arguments, make(std::move(tuple)));
        CONVBRIDGE_TRY(const ValueId object, call(items[0], arguments, "OBJ"));
        CONVBRIDGE_CHECK(push(object));
        break;
      }
      case 'R':
      case 0x81: {  // REDUCE, NEWOBJ
        CONVBRIDGE_TRY(const ValueId arguments, pop());
        CONVBRIDGE_TRY(const ValueId callable, pop());
        CONVBRIDGE_TRY(const ValueId object, call(callable, arguments, code == 'R' ? "REDUCE" : "NEWOBJ"));
        CONVBRIDGE_CHECK(push(object));
        break;
      }
      case 0x92: {  // NEWOBJ_EX: cls, args, kwargs
        CONVBRIDGE_TRY(const ValueId keywords, pop());
        CONVBRIDGE_TRY(const ValueId arguments, pop());
        CONVBRIDGE_TRY(const ValueId callable, pop());
        if (values_[keywords].kind != Kind::dict) return fail("NEWOBJ_EX keywords are not a dict");
        CONVBRIDGE_TRY(const ValueId object, call(callable, arguments, "NEWOBJ_EX"));
        CONVBRIDGE_CHECK(push(object));
        break;
      }
      case 'b': {  // BUILD
        CONVBRIDGE_TRY(const ValueId state, pop());
        CONVBRIDGE_TRY(const ValueId target, top());
        CONVBRIDGE_CHECK(build(target, state));
        break;
      }
      case 'p': {
        CONVBRIDGE_TRY(const std::string text, read_line());
        CONVBRIDGE_TRY(const uint64_t key, memo_key(text));
        CONVBRIDGE_CHECK(memo_put(key));
        break;
      }
      case 'q':
        CONVBRIDGE_CHECK(need(1));
        CONVBRIDGE_CHECK(memo_put(std::to_integer<uint64_t>(program[at++])));
        break;
      case 'r':
        CONVBRIDGE_CHECK(need(4));
        CONVBRIDGE_CHECK(memo_put(load_u32(program.data() + at)));
        at += 4;
        break;
      case 0x94:  // MEMOIZE: Python's key is len(memo)
        CONVBRIDGE_CHECK(memo_put(memo_entries_));
        break;
      case 'g': {
        CONVBRIDGE_TRY(const std::string text, read_line());
        CONVBRIDGE_TRY(const uint64_t key, memo_key(text));
        CONVBRIDGE_CHECK(memo_get(key));
        break;
      }
      case 'h':
        CONVBRIDGE_CHECK(need(1));
        CONVBRIDGE_CHECK(memo_get(std::to_integer<uint64_t>(program[at++])));
        break;
      case 'j':
        CONVBRIDGE_CHECK(need(4));
        CONVBRIDGE_CHECK(memo_get(load_u32(program.data() + at)));
        at += 4;
        break;
      case 'P': {  // PERSID: a text id (torch writes BINPERSID with a tuple; this one cannot be a storage)
        CONVBRIDGE_TRY(const std::string text, read_line());
        Value id;
        id.kind = Kind::text;
        id.text = text;
        CONVBRIDGE_TRY(const ValueId pid, make(std::move(id)));
        CONVBRIDGE_TRY(const ValueId storage, persistent_load(pid));
        CONVBRIDGE_CHECK(push(storage));
        break;
      }
      case 'Q': {
        CONVBRIDGE_TRY(const ValueId pid, pop());
        CONVBRIDGE_TRY(const ValueId storage, persistent_load(pid));
        CONVBRIDGE_CHECK(push(storage));
        break;
      }
      case 0x82:
      case 0x83:
      case 0x84:
        return fail("copyreg extension codes name globals indirectly; torch.save never writes them");
      default:
        return fail(fmt::format("unknown opcode 0x{:02x}", code));
    }
  }
}

// ---- naming the tensors -----------------------------------------------------------------------------------------

namespace {

std::string join_path(const std::vector<std::string>& path) {
  std::string name;
  for (const std::string& part : path) {
    if (!name.empty()) name += '.';
    name += part;
  }
  return name;
}

}  // namespace

Result<std::vector<NamedTensor>> Machine::named_tensors(int64_t& skipped_values) const {
  std::vector<NamedTensor> out;
  std::vector<bool> visited(values_.size(), false);
  std::vector<std::string> path;
  skipped_values = 0;
  if (root_ == kNoValue) return out;
  // kNoValue marks "not computed yet"; a node being computed counts 1 (a cycle adds nothing more).
  std::vector<uint64_t> expanded(values_.size(), UINT64_MAX);
  CONVBRIDGE_TRY(const uint64_t tree_size, expanded_size(root_, 0, expanded));
  const uint64_t limit = std::max<uint64_t>(10'000'000, limits_.max_expansion * values_.size());
  if (tree_size > limit) {
    return file_error(label_, ErrorCode::invalid_argument,
                      fmt::format("the pickle's {} values expand to more than {} when its shared references are "
                                  "copied (a billion laughs); refused",
                                  values_.size(), limit));
  }
  CONVBRIDGE_CHECK(walk(root_, path, 0, visited, out, skipped_values));
  return out;
}

// The number of nodes of the object tree under `id` if every shared reference were a copy, saturating at 2^62.
Result<uint64_t> Machine::expanded_size(ValueId id, int depth, std::vector<uint64_t>& memo) const {
  if (depth > limits_.max_nesting) {
    return file_error(label_, ErrorCode::invalid_argument,
                      fmt::format("the pickle nests containers deeper than {} levels", limits_.max_nesting));
  }
  if (memo[id] != UINT64_MAX) return memo[id];
  memo[id] = 1;  // in progress: a cycle back here counts once
  const Value& value = values_[id];
  constexpr uint64_t kSaturated = uint64_t{1} << 62;
  uint64_t total = 1;
  const auto add = [&](ValueId child) -> Status {
    if (child == kNoValue) return Ok{};
    CONVBRIDGE_TRY(const uint64_t size, expanded_size(child, depth + 1, memo));
    total = std::min(kSaturated, total + size);
    return Ok{};
  };
  for (ValueId child : value.items) CONVBRIDGE_CHECK(add(child));
  if (value.kind == Kind::object) {
    CONVBRIDGE_CHECK(add(value.arguments));
    CONVBRIDGE_CHECK(add(value.state));
  }
  memo[id] = total;
  return total;
}

Status Machine::walk(ValueId id, std::vector<std::string>& path, int depth, std::vector<bool>& visited,
                     std::vector<NamedTensor>& out, int64_t& skipped) const {
  if (depth > limits_.max_nesting) {
    return file_error(label_, ErrorCode::invalid_argument,
                      fmt::format("the pickle nests containers deeper than {} levels (at '{}')", limits_.max_nesting,
                                  printable(join_path(path))));
  }
  const Value& value = values_[id];
  if (value.kind == Kind::tensor) {
    out.push_back(NamedTensor{path.empty() ? std::string("tensor") : join_path(path), static_cast<size_t>(value.number)});
    return Ok{};
  }
  const bool container = value.kind == Kind::dict || value.kind == Kind::list || value.kind == Kind::tuple ||
                         value.kind == Kind::object;
  if (!container) {
    ++skipped;
    return Ok{};
  }
  if (visited[id]) return Ok{};  // shared or cyclic: walked once
  visited[id] = true;
  const auto key_text = [&](ValueId key) -> std::string {
    const Value& k = values_[key];
    switch (k.kind) {
      case Kind::text: return k.text;
      case Kind::bytes: return latin1_to_utf8(k.text);
      case Kind::integer: return fmt::format("{}", k.number);
      case Kind::boolean: return k.number ? "True" : "False";
      case Kind::none: return "None";
      case Kind::real: return fmt::format("{}", k.real);
      default: return fmt::format("<{}>", kind_name(k.kind));
    }
  };
  const auto walk_dict = [&](const Value& dict, bool module_attributes) -> Status {
    for (size_t i = 0; i + 1 < dict.items.size(); i += 2) {
      std::string key = key_text(dict.items[i]);
      // nn.Module keeps its tensors in these attribute dicts; state_dict() names skip them.
      const bool transparent = module_attributes && (key == "_parameters" || key == "_buffers" || key == "_modules");
      if (!transparent) path.push_back(std::move(key));
      const Status walked = walk(dict.items[i + 1], path, depth + 1, visited, out, skipped);
      if (!transparent) path.pop_back();
      if (!walked) return walked;
    }
    return Ok{};
  };
  switch (value.kind) {
    case Kind::dict: return walk_dict(value, false);
    case Kind::list:
    case Kind::tuple:
      for (size_t i = 0; i < value.items.size(); ++i) {
        path.push_back(fmt::format("{}", i));
        const Status walked = walk(value.items[i], path, depth + 1, visited, out, skipped);
        path.pop_back();
        if (!walked) return walked;
      }
      return Ok{};
    case Kind::object: {
      if (value.state == kNoValue) {
        ++skipped;
        return Ok{};
      }
      const Value& state = values_[value.state];
      if (state.kind == Kind::dict) {
        if (visited[value.state]) return Ok{};
        visited[value.state] = true;
        return walk_dict(state, true);
      }
      return walk(value.state, path, depth + 1, visited, out, skipped);
    }
    default: return Ok{};
  }
}

}  // namespace convbridge::io::pickle
