#!/usr/bin/env python3
"""Builds the weight-file catalogue: malicious and malformed checkpoints, safetensors and .npz files, and a few
valid ones, byte by byte with the standard library only (no torch, no numpy), so it runs on any machine.

    python3 tests/hostile/make_hostile_files.py OUT_DIR

writes OUT_DIR/hostile/<name>.<ext>, OUT_DIR/valid/<name>.<ext> and OUT_DIR/catalogue.json:

    {"marker": "<path a hostile pickle would create if anything ran it>",
     "hostile": [{"name", "file", "fragment", "code", "what"}],    # every one must be refused: exit 2,
                                                                  # an error containing `fragment`, no output
     "valid":   [{"name", "file", "tensors": [{"name", "dtype", "shape", "hex"}]}]}  # read bit for bit

The pickles that try to run code are real attacks: `pickle.loads` would run them (their command creates the
marker file), so this script only writes them and checks with pickletools (which decodes without executing) that
they are well-formed pickles. Tests read them with convbridge's reader only, and check that the marker never
appears. Formats: torch/serialization.py and caffe2/serialize/inline_container.cc (torch.save zip), PKWARE APPNOTE
(zip), the safetensors README "Format", numpy/lib/format.py (.npy).
"""

import io
import json
import os
import pickletools
import struct
import sys
import zipfile
import zlib

# ---- pickle opcodes (CPython Lib/pickletools.py) -----------------------------------------------------------------

PROTO2 = b"\x80\x02"
MARK, STOP, TUPLE, EMPTY_TUPLE, EMPTY_LIST, EMPTY_DICT = b"(", b".", b"t", b")", b"]", b"}"
TUPLE1, TUPLE2, TUPLE3 = b"\x85", b"\x86", b"\x87"
REDUCE, BUILD, NEWOBJ, SETITEM, SETITEMS, APPEND, APPENDS = b"R", b"b", b"\x81", b"s", b"u", b"a", b"e"
NEWFALSE, NEWTRUE, NONE, BINPERSID, STACK_GLOBAL, MEMOIZE, DUP = b"\x89", b"\x88", b"N", b"Q", b"\x93", b"\x94", b"2"


def GLOBAL(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def INST(module, name):
    return b"i" + module.encode() + b"\n" + name.encode() + b"\n"


def U(text):  # BINUNICODE
    data = text.encode("utf-8") if isinstance(text, str) else text
    return b"X" + struct.pack("<I", len(data)) + data


def I(value):
    if 0 <= value < 256:
        return b"K" + bytes([value])
    if -(2**31) <= value < 2**31:
        return b"J" + struct.pack("<i", value)
    data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data


def BINPUT(n):
    return b"q" + bytes([n])


def BINGET(n):
    return b"h" + bytes([n])


def int_tuple(values):
    return MARK + b"".join(I(v) for v in values) + TUPLE


def storage_pid(key, numel, storage="FloatStorage", module="torch"):
    return MARK + U("storage") + GLOBAL(module, storage) + U(key) + U("cpu") + I(numel) + TUPLE + BINPERSID


def rebuild_v2(pid, offset, size, stride):
    """torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks)."""
    return (GLOBAL("torch._utils", "_rebuild_tensor_v2") + MARK + pid + I(offset) + int_tuple(size) +
            int_tuple(stride) + NEWFALSE + GLOBAL("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE + TUPLE + REDUCE)


def state_dict(entries):
    """An OrderedDict of name -> pickled value, as nn.Module.state_dict() pickles (REDUCE + SETITEMS)."""
    body = b"".join(U(name) + value for name, value in entries)
    return GLOBAL("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE + MARK + body + SETITEMS


def program(body):
    return PROTO2 + body + STOP


# ---- zip archives -----------------------------------------------------------------------------------------------

def torch_zip(records, prefix="archive", compress=()):
    """A torch.save-style zip: <prefix>/<name> for each record, stored (or deflated for names in `compress`)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in records:
            info = zipfile.ZipInfo(f"{prefix}/{name}", date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED if name in compress else zipfile.ZIP_STORED
            archive.writestr(info, data)
    return buffer.getvalue()


def checkpoint(pickle_bytes, storages=(), prefix="archive", extra=(), byteorder=b"little", compress=()):
    records = [("data.pkl", pickle_bytes), ("byteorder", byteorder)]
    records += [(f"data/{key}", data) for key, data in storages]
    records += [("version", b"3\n")] + list(extra)
    return torch_zip(records, prefix, compress)


def raw_zip(members, comment=b""):
    """A zip written by hand: members are dicts with name, data and optional overrides of what the headers say
    (method, size, compressed_size, local_offset, flags, local_name), for layouts zipfile refuses to write."""
    out = bytearray()
    central = bytearray()
    for member in members:
        name = member["name"].encode()
        data = member["data"]
        offset = len(out)
        method = member.get("method", 0)
        size = member.get("size", len(data) if method == 0 else member["size"])
        compressed = member.get("compressed_size", len(data))
        flags = member.get("flags", 0)
        crc = zlib.crc32(member.get("crc_data", data)) if method == 0 else member.get("crc", 0)
        local_name = member.get("local_name", member["name"]).encode()
        if not member.get("skip_local"):
            out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, method, 0, 0x5021, crc, compressed, size,
                               len(local_name), 0) + local_name + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, flags, method, 0, 0x5021, crc, compressed,
                               size, len(name), 0, 0, 0, 0, 0, member.get("local_offset", offset)) + name
    directory_offset = len(out)
    count = len(members)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), directory_offset,
                       len(comment)) + comment
    return bytes(out)


# ---- safetensors and .npy ---------------------------------------------------------------------------------------

def safetensors(header, data, header_size=None):
    text = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text) if header_size is None else header_size) + text + data


def npy(descr, shape, data, fortran=False, header_text=None, version=(1, 0)):
    text = header_text if header_text is not None else (
        "{'descr': %r, 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, repr(tuple(shape))))
    text = text.encode("latin-1") if isinstance(text, str) else text
    fixed = 10 if version[0] == 1 else 12
    padding = (-(fixed + len(text) + 1)) % 64
    text = text + b" " * padding + b"\n"
    length = struct.pack("<H", len(text)) if version[0] == 1 else struct.pack("<I", len(text))
    return b"\x93NUMPY" + bytes(version) + length + text + data


def npz(members, compress=False):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            archive.writestr(info, data)
    return buffer.getvalue()


def floats(*values):
    return struct.pack(f"<{len(values)}f", *values)


# ---- the catalogue ----------------------------------------------------------------------------------------------

def build(marker):
    hostile = []  # (name, extension, bytes, fragment, code, what, wellformed_pickle or None)
    command = f"touch {marker}"
    weight = storage_pid("0", 4)
    good_tensor = rebuild_v2(weight, 0, (2, 2), (2, 1))
    good_storage = [("0", floats(1, 2, 3, 4))]

    def add(name, data, fragment, what, code="invalid_argument", extension="pt", pickle_bytes=None):
        hostile.append(dict(name=name, extension=extension, data=data, fragment=fragment, code=code, what=what,
                            pickle=pickle_bytes))

    def add_pickle(name, body, fragment, what, code="invalid_argument", storages=good_storage, raw_program=None):
        pickle_bytes = raw_program if raw_program is not None else program(body)
        # Large pickles (the bombs) are deflated, as a zip may be: the file stays small, the reader inflates it.
        compress = ("data.pkl",) if len(pickle_bytes) > 65536 else ()
        add(name, checkpoint(pickle_bytes, storages, compress=compress), fragment, what, code, pickle_bytes=pickle_bytes)

    # Pickles that run a command if anything executes them: each names a global that can run code.
    cmd = MARK + U(command) + TUPLE
    add_pickle("reduce_posix_system", GLOBAL("posix", "system") + cmd + REDUCE,
               "names posix.system, which can run code", "os.system as pickle writes it on Linux, via REDUCE")
    add_pickle("reduce_os_system", GLOBAL("os", "system") + cmd + REDUCE, "names os.system", "os.system via REDUCE")
    add_pickle("reduce_builtins_eval", GLOBAL("builtins", "eval") + MARK + U(f"__import__('os').system({command!r})") +
               TUPLE + REDUCE, "names builtins.eval", "builtins.eval via REDUCE")
    add_pickle("reduce_py2_builtin_exec", GLOBAL("__builtin__", "exec") + MARK + U("import os") + TUPLE + REDUCE,
               "names __builtin__.exec", "Python 2's module name for builtins")
    add_pickle("stack_global_builtins_exec", U("builtins") + U("exec") + STACK_GLOBAL + MARK +
               U(f"import os; os.system({command!r})") + TUPLE + REDUCE,
               "names builtins.exec", "STACK_GLOBAL (protocol 4) with the names on the stack")
    add_pickle("stack_global_memoized_names", U("pos") + BINPUT(1) + U("ix") + BINPUT(2) + U("posix") + U("system") +
               STACK_GLOBAL + cmd + REDUCE, "names posix.system", "names assembled from memoized strings")
    add_pickle("inst_subprocess_popen", MARK + MARK + U("touch") + U(marker) + b"l" + INST("subprocess", "Popen"),
               "names subprocess.Popen", "INST builds and calls in one opcode")
    add_pickle("obj_subprocess_check_output", MARK + GLOBAL("subprocess", "check_output") + MARK + U("touch") +
               U(marker) + b"l" + b"o", "names subprocess.check_output", "OBJ: MARK class args... o")
    add_pickle("newobj_subprocess_popen", GLOBAL("subprocess", "Popen") + MARK + MARK + U("touch") + U(marker) + b"l" +
               TUPLE + NEWOBJ, "names subprocess.Popen", "NEWOBJ cls(*args)")
    add_pickle("build_setstate_gadget", GLOBAL("copyreg", "_reconstructor") + MARK + GLOBAL("argparse", "Namespace") +
               GLOBAL("builtins", "object") + NONE + TUPLE + REDUCE + EMPTY_DICT + U("__setstate__") +
               GLOBAL("os", "system") + SETITEM + BUILD + U(command) + BUILD,
               "names os.system", "BUILD installs __setstate__ = os.system, then BUILD calls it")
    add_pickle("getattr_gadget", GLOBAL("builtins", "getattr") + MARK + GLOBAL("argparse", "Namespace") + EMPTY_TUPLE +
               REDUCE + U("system") + TUPLE + REDUCE, "names builtins.getattr", "getattr reaches any attribute")
    add_pickle("importlib_import_module", GLOBAL("importlib", "import_module") + MARK + U("os") + TUPLE + REDUCE,
               "names importlib.import_module", "imports a module by name")
    add_pickle("operator_methodcaller", GLOBAL("operator", "methodcaller") + MARK + U("system") + U(command) + TUPLE +
               REDUCE, "names operator.methodcaller", "a call gadget from the operator module")
    add_pickle("torch_load_nested", GLOBAL("torch", "load") + MARK + U("/tmp/evil.pt") + TUPLE + REDUCE,
               "names torch.load", "torch.load inside a checkpoint (weights_only is not passed on)")
    add_pickle("torch_jit_load", GLOBAL("torch.jit", "load") + MARK + U("/tmp/evil.pt") + TUPLE + REDUCE,
               "names torch.jit.load", "CVE-2025-32434's path: TorchScript ignores weights_only")
    add_pickle("numpy_runstring", GLOBAL("numpy.testing._private.utils", "runstring") + MARK +
               U(f"import os; os.system({command!r})") + EMPTY_DICT + TUPLE + REDUCE,
               "names numpy.testing._private.utils.runstring", "numpy's exec wrapper")
    add_pickle("pickle_loads_nested", GLOBAL("pickle", "loads") + MARK + b"C\x01." + TUPLE + REDUCE,
               "names pickle.loads", "a pickle inside the pickle")
    add_pickle("hidden_in_state_dict", state_dict([("w", good_tensor), ("evil", GLOBAL("posix", "system") + cmd +
                                                                        REDUCE)]),
               "names posix.system", "one REDUCE of os.system among real tensors")

    # The machine's own limits and rules.
    add_pickle("stack_bomb", None, "the stack exceeds", "2 Mi pushes with no pop",
               raw_program=PROTO2 + MARK + NONE * (2**21 + 1) + STOP)
    add_pickle("memo_bomb", NONE + MEMOIZE * (2**21 + 1), "the memo exceeds", "2 Mi MEMOIZE entries")
    add_pickle("mark_bomb", MARK * (2**20 + 1), "open MARKs", "a million open MARKs")
    laughs = EMPTY_LIST + BINPUT(0) + b"0"
    for level in range(1, 40):  # level n is a list of 10 references to level n - 1
        laughs += EMPTY_LIST + MARK + BINGET(level - 1) * 10 + APPENDS + BINPUT(level) + b"0"
    laughs += BINGET(39)
    add_pickle("billion_laughs", EMPTY_DICT + U("w") + good_tensor + SETITEM + U("laughs") + laughs + SETITEM,
               "billion laughs", "10^39 references through shared lists")
    deep = EMPTY_LIST * 100_000 + APPEND * 99_999
    add_pickle("deep_nesting", deep, "deeper than", "100,000 lists nested in each other")
    add_pickle("setitem_on_list", EMPTY_LIST + U("k") + U("v") + SETITEM, "SETITEM on a list, not a dict",
               "SETITEM would call list.__setitem__")
    add_pickle("setitem_on_tensor", good_tensor + U("requires_grad") + NEWTRUE + SETITEM, "SETITEM on a tensor",
               "CVE-2026-24747: SETITEM on a non-dict")
    add_pickle("setitems_on_inert_object", GLOBAL("argparse", "Namespace") + EMPTY_TUPLE + NEWOBJ + MARK + U("k") +
               U("v") + SETITEMS, "SETITEMS on an inert argparse.Namespace object", "SETITEMS on an object")
    add_pickle("appends_on_dict", EMPTY_DICT + MARK + U("x") + APPENDS, "APPENDS on a dict, not a list",
               "APPENDS would call dict.extend")
    add_pickle("build_on_list", EMPTY_LIST + EMPTY_DICT + BUILD, "BUILD on a list", "BUILD would call __setstate__")
    add_pickle("reduce_on_tuple", EMPTY_TUPLE + EMPTY_TUPLE + REDUCE, "REDUCE calls a tuple",
               "REDUCE of something that is not a named global")
    add_pickle("storage_type_called", GLOBAL("torch", "FloatStorage") + MARK + I(1000000000) + TUPLE + REDUCE,
               "calls torch.FloatStorage", "a storage constructor called for its allocation")
    add_pickle("load_from_bytes", GLOBAL("torch.storage", "_load_from_bytes") + MARK + b"C\x02\x80\x02" + TUPLE + REDUCE,
               "torch.storage._load_from_bytes", "a legacy torch.save hidden in bytes", code="unsupported")
    add_pickle("persistent_id_not_storage", MARK + U("module") + U("x") + TUPLE + BINPERSID,
               "a persistent id that is not ('storage'", "persistent_load of something else")
    add_pickle("storage_record_missing", rebuild_v2(storage_pid("7", 4), 0, (4,), (1,)), "has no record",
               "a persistent id naming no zip entry")
    add_pickle("storage_shorter_than_numel", rebuild_v2(storage_pid("0", 1000), 0, (4,), (1,)),
               "declares 1000 elements of 4 bytes but its record", "CVE-2026-24747: numel vs record size")
    add_pickle("storage_key_path", rebuild_v2(storage_pid("../../etc/passwd", 4), 0, (4,), (1,)),
               "not a short alphanumeric string", "a storage key that is a path")
    add_pickle("tensor_past_storage", rebuild_v2(weight, 0, (10,), (1,)), "reaches past its storage",
               "a (10,) view of a 4-element storage")
    add_pickle("tensor_offset_past_storage", rebuild_v2(weight, 3, (2,), (1,)), "reaches past its storage",
               "storage_offset 3 + 2 elements of 4")
    add_pickle("tensor_stride_past_storage", rebuild_v2(weight, 0, (2, 2), (4, 1)), "reaches past its storage",
               "a stride that walks off the storage")
    add_pickle("tensor_extent_overflow", rebuild_v2(weight, 0, (2, 2), (2**62, 1)),
               "reaches past its storage", "an extent that overflows 64 bits")
    add_pickle("tensor_negative_offset", rebuild_v2(weight, -1, (1,), (1,)), "storage_offset is",
               "a negative storage_offset")
    add_pickle("tensor_size_stride_mismatch", rebuild_v2(weight, 0, (2, 2), (1,)), "do not fit together",
               "size and stride of different lengths")
    add_pickle("duplicate_tensor_names", EMPTY_DICT + MARK + U("a.b") + good_tensor + U("a") + EMPTY_DICT + U("b") +
               good_tensor + SETITEM + SETITEMS, "two tensors are both named 'a.b'", "names that collide when joined")
    add_pickle("unknown_opcode", b"\xff", "unknown opcode 0xff", "a byte that is no opcode")
    add("no_stop", checkpoint(PROTO2 + EMPTY_DICT, good_storage), "ends without STOP", "a truncated pickle")
    add_pickle("binunicode_length_past_end", b"X\xff\xff\xff\xff", "declares 4294967295 bytes",
               "a length past the pickle's end")
    add_pickle("binunicode_invalid_utf8", U(b"\xc3\x28"), "not valid UTF-8", "a malformed string")
    add_pickle("extension_opcode", b"\x82\x01", "copyreg extension codes", "EXT1 names a global indirectly")
    add("protocol_6", checkpoint(b"\x80\x06" + NONE + STOP, good_storage), "protocol 6", "a protocol that does not exist")
    add_pickle("out_of_band_buffer", b"\x97", "out-of-band buffers", "protocol 5 NEXT_BUFFER")

    # Archives around the pickle.
    sd = program(state_dict([("w", good_tensor)]))
    add("torchscript_archive", torch_zip([("data.pkl", sd), ("constants.pkl", program(EMPTY_TUPLE)),
                                          ("code/__torch__.py", b"def forward(self): pass\n"), ("version", b"3\n")]),
        "TorchScript archive", "torch.jit.save output: code, not a checkpoint", code="unsupported")
    add("legacy_torch_save", bytes.fromhex("80028a0a6cfc9c46f9206aa850192e") + program(EMPTY_DICT),
        "legacy torch.save file", "the pre-1.6 stacked-pickle format", code="unsupported")
    add("bare_pickle_os_system", program(GLOBAL("posix", "system") + cmd + REDUCE), "a bare pickle",
        "a plain pickle.dump, not a torch.save zip", code="unsupported")
    tar = bytearray(1024)
    tar[0:8] = b"pickle\0\0"
    tar[257:262] = b"ustar"
    add("legacy_tar", bytes(tar), "a tar archive", "torch.save's oldest (tar) format", code="unsupported")
    add("byteorder_bogus", checkpoint(sd, good_storage, byteorder=b"middle"), "the byteorder record says 'middle'",
        "a byteorder record that is neither little nor big")
    add("no_data_pkl", torch_zip([("other.pkl", sd)]), "neither a torch.save checkpoint",
        "an archive directory without data.pkl")
    add("no_prefix_directory", raw_zip([dict(name="data.pkl", data=sd)]), "neither a torch.save checkpoint",
        "data.pkl at the top level")

    # Zip layouts.
    pkl = dict(name="archive/data.pkl", data=sd)
    store = dict(name="archive/data/0", data=floats(1, 2, 3, 4))
    good = raw_zip([pkl, store])
    add("zip_trailing_bytes", good + b"GARBAGE", "no end-of-central-directory record at the end",
        "bytes after the end record (a polyglot)")
    add("zip_truncated", good[: len(good) // 2], "no end-of-central-directory record",
        "half a checkpoint")
    # An entry whose local header and data sit inside another entry's data (how non-recursive zip bombs reuse
    # bytes): data.pkl carries, after its STOP, a complete local header and data for archive/data/0.
    inner_name = b"archive/data/0"
    inner = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x5021, zlib.crc32(floats(1, 2, 3, 4)), 16, 16,
                        len(inner_name), 0) + inner_name + floats(1, 2, 3, 4)
    outer = dict(name="archive/data.pkl", data=sd + inner)
    add("zip_entries_overlap", raw_zip([outer, dict(name="archive/data/0", data=floats(1, 2, 3, 4), skip_local=True,
                                                    local_offset=30 + len("archive/data.pkl") + len(sd))]),
        "overlap", "an entry inside another entry's bytes")
    add("zip_entry_past_end", raw_zip([pkl, dict(store, compressed_size=2**31, size=2**31)]),
        "runs past the entries' area", "an entry larger than the archive")
    add("zip_bomb_declared_size", raw_zip([pkl, dict(name="archive/data/0", method=8,
                                                     data=zlib.compress(b"\0" * 4096)[2:-4], size=2**32 - 2)]),
        "more than deflate can produce (a zip bomb)", "4 GiB declared from a few bytes of deflate")
    add("zip_duplicate_names", raw_zip([pkl, store, dict(name="archive/data/0", data=floats(9, 9, 9, 9))]),
        "two entries are named 'archive/data/0'", "which duplicate a reader takes is ambiguous")
    add("zip_local_name_differs", raw_zip([pkl, dict(store, local_name="archive/data/X")]),
        "its local header names another file", "central and local headers disagree")
    add("zip_encrypted", raw_zip([pkl, dict(store, flags=1)]), "is encrypted", "an encrypted entry")
    add("zip_method_bzip2", raw_zip([pkl, dict(store, method=12, size=16)]), "compression method 12",
        "a compression method no torch file uses")
    many = bytearray(good[:-22])
    many += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 60000, 60000, 46 * 60000, 0, 0)
    add("zip_entry_count_lie", bytes(many), "does not end where the end record starts",
        "an end record whose entry count and directory size do not fit the file")
    add("zip_empty", raw_zip([]), "an empty zip", "no entries at all")

    # safetensors header attacks (safetensors/src/tensor.rs SafeTensorError variants in the fragments).
    st_header = {"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}
    st_data = floats(1, 2, 3, 4)
    add("st_header_too_large", safetensors(st_header, st_data, header_size=2**63), "HeaderTooLarge",
        "a header size of 2^63", extension="safetensors")
    add("st_header_past_end", safetensors(st_header, st_data, header_size=10**6), "InvalidHeaderLength",
        "a header size past the end of the file", extension="safetensors")
    add("st_header_not_json", safetensors(b"{not json", b""), "not valid JSON", "a broken header",
        extension="safetensors")
    add("st_header_not_object", safetensors(b"[1, 2]", b""), "not a weight file", "a header that is a list",
        extension="safetensors")
    add("st_duplicate_key", safetensors(b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                                        b'"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', floats(1, 2)),
        "appears twice", "two tensors under one name", extension="safetensors")
    add("st_offsets_overlap", safetensors({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                           "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}},
                                          floats(1, 2, 3)), "InvalidOffset", "overlapping tensors",
        extension="safetensors")
    add("st_offsets_gap", safetensors({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                                       "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}},
                                      floats(1, 2, 3)), "InvalidOffset", "a hole between tensors",
        extension="safetensors")
    add("st_offsets_out_of_range", safetensors({"a": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}},
                                               floats(1)), "MetadataIncompleteBuffer", "offsets past the file",
        extension="safetensors")
    add("st_offsets_reversed", safetensors({"a": {"dtype": "F32", "shape": [0], "data_offsets": [4, 0]}}, floats(1)),
        "InvalidOffset", "end before begin", extension="safetensors")
    add("st_bad_dtype", safetensors({"a": {"dtype": "F33", "shape": [1], "data_offsets": [0, 4]}}, floats(1)),
        "unknown dtype 'F33'", "a dtype that does not exist", extension="safetensors")
    add("st_shape_overflow", safetensors({"a": {"dtype": "F32", "shape": [2**32, 2**32, 2**32], "data_offsets": [0, 4]}},
                                         floats(1)), "ValidationOverflow", "a shape product past 64 bits",
        code="overflow", extension="safetensors")
    add("st_shape_bytes_mismatch", safetensors({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}},
                                               floats(1, 2)), "TensorInvalidInfo", "shape x dtype != byte count",
        extension="safetensors")
    add("st_trailing_bytes", safetensors(st_header, st_data + b"<html>polyglot</html>"), "MetadataIncompleteBuffer",
        "bytes after the last tensor (a polyglot)", extension="safetensors")
    add("st_metadata_not_string", safetensors({"__metadata__": {"k": 1}, **st_header}, st_data),
        "__metadata__ values must be strings", "free-form metadata", extension="safetensors")
    add("st_header_invalid_utf8", safetensors(b'{"\xff":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', floats(1)),
        "not valid UTF-8", "a header that is not UTF-8", extension="safetensors")
    add("st_negative_shape", safetensors({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, floats(1)),
        "a negative number", "a negative size", extension="safetensors")
    add("st_three_offsets", safetensors({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}}, floats(1)),
        "not [begin, end]", "data_offsets with three entries", extension="safetensors")
    add("st_missing_dtype", safetensors({"a": {"shape": [1], "data_offsets": [0, 4]}}, floats(1)), "lacks \"dtype\"",
        "a tensor without its dtype", extension="safetensors")
    add("st_complex_dtype", safetensors({"a": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}, floats(1, 2)),
        "C64, which convbridge does not carry", "a dtype the format has and convbridge does not", code="unsupported",
        extension="safetensors")

    # .npz members.
    member = npy("<f4", (2,), floats(1, 2))
    add("npz_object_array", npz([("a.npy", npy("|O", (1,), b"\x80\x02N."))]), "an object array",
        "a pickled object array (numpy needs allow_pickle=True)", extension="npz")
    add("npz_structured_dtype", npz([("a.npy", npy(None, (1,), b"\0" * 8,
                                                   header_text="{'descr': [('x', '<f4'), ('y', '<f4')], "
                                                               "'fortran_order': False, 'shape': (1,), }"))]),
        "a structured dtype", "a record dtype", code="unsupported", extension="npz")
    add("npz_header_code", npz([("a.npy", npy(None, (1,), b"\0" * 4,
                                              header_text="{'descr': __import__('os').system(%r), "
                                                          "'fortran_order': False, 'shape': (1,), }" % command))]),
        "expected a quoted string", "a header that numpy would pass to ast.literal_eval", extension="npz")
    add("npz_huge_header", npz([("a.npy", npy("<f4", (1,), floats(1), header_text="{'descr': '<f4', 'fortran_order': "
                                              "False, 'shape': (1,), " + " " * 20000 + "}", version=(2, 0)))]),
        "numpy reads at most 10000", "a 20 kB header", extension="npz")
    add("npz_data_size_mismatch", npz([("a.npy", npy("<f4", (3,), floats(1, 2)))]), "holds 8 data bytes but",
        "fewer bytes than the shape needs", extension="npz")
    add("npz_shape_overflow", npz([("a.npy", npy("<f4", (2**40, 2**40), floats(1)))]), "more bytes than fit",
        "a shape past 64 bits", code="overflow", extension="npz")
    add("npz_extra_key", npz([("a.npy", npy(None, (1,), floats(1), header_text="{'descr': '<f4', 'fortran_order': "
                                            "False, 'shape': (1,), 'x': 1, }"))]), "the header has a key 'x'",
        "a key numpy does not write", extension="npz")
    add("npz_complex", npz([("a.npy", npy("<c8", (1,), floats(1, 2)))]), "dtype '<c8'", "complex numbers",
        code="unsupported", extension="npz")
    add("npz_bad_magic", npz([("a.npy", b"NOTNUMPY" + member[8:])]), "no \\x93NUMPY magic", "a member that is not .npy",
        extension="npz")
    add("npz_version_9", npz([("a.npy", member[:6] + b"\x09\x00" + member[8:])]), "format version 9.0",
        "a .npy version that does not exist", extension="npz")
    add("npz_not_npy_member", npz([("a.npy", member), ("README.txt", b"hello")]), "is not NAME.npy",
        "a member that is not an array", extension="npz")

    valid = []
    tensors = [("w", "float32", (2, 2), floats(1, 2, 3, 4))]
    valid.append(dict(name="torch_state_dict", extension="pt",
                      data=checkpoint(program(state_dict([("w", good_tensor)])), good_storage), tensors=tensors))
    # A nested training checkpoint: an inert argparse.Namespace, a transposed view and an offset view sharing one
    # storage, an int64 scalar, a float16 tensor, DDP 'module.' names, int keys, and a big-endian twin below.
    shared = storage_pid("1", 6)
    ckpt = EMPTY_DICT + MARK
    ckpt += U("model") + state_dict([("module.conv.weight", good_tensor),
                                     ("module.bn.num_batches_tracked",
                                      rebuild_v2(storage_pid("2", 1, "LongStorage"), 0, (), ()))])
    ckpt += U("optimizer") + EMPTY_DICT + MARK + U("state") + EMPTY_DICT + I(0) + EMPTY_DICT + U("momentum_buffer") + \
        rebuild_v2(shared, 1, (2, 2), (1, 2)) + SETITEM + SETITEM + U("param_groups") + EMPTY_LIST + SETITEMS
    ckpt += U("args") + GLOBAL("argparse", "Namespace") + EMPTY_TUPLE + NEWOBJ + EMPTY_DICT + U("lr") + \
        b"G" + struct.pack(">d", 0.1) + SETITEM + BUILD
    ckpt += U("half") + rebuild_v2(storage_pid("3", 2, "HalfStorage"), 0, (2,), (1,)) + U("epoch") + I(3)
    ckpt += SETITEMS
    storages = [("0", floats(1, 2, 3, 4)), ("1", floats(10, 11, 12, 13, 14, 15)), ("2", struct.pack("<q", 7)),
                ("3", struct.pack("<2e", 0.5, -2.0))]
    nested = [("model.module.conv.weight", "float32", (2, 2), floats(1, 2, 3, 4)),
              ("model.module.bn.num_batches_tracked", "int64", (), struct.pack("<q", 7)),
              ("optimizer.state.0.momentum_buffer", "float32", (2, 2), floats(11, 13, 12, 14)),
              ("half", "float16", (2,), struct.pack("<2e", 0.5, -2.0))]
    valid.append(dict(name="torch_training_checkpoint", extension="pth", data=checkpoint(program(ckpt), storages,
                                                                                      prefix="my_run"),
                      tensors=nested))

    def big_endian(data, size):
        return b"".join(data[i:i + size][::-1] for i in range(0, len(data), size))

    swapped = [(key, big_endian(data, 8 if key == "2" else 2 if key == "3" else 4)) for key, data in storages]
    valid.append(dict(name="torch_big_endian", extension="pt",
                      data=checkpoint(program(ckpt), swapped, byteorder=b"big"), tensors=nested))
    valid.append(dict(name="torch_deflated", extension="pt",
                      data=checkpoint(program(ckpt), storages, compress=("data.pkl", "data/1")), tensors=nested))
    # Protocol 0's text opcodes (INT, LONG, FLOAT, STRING, UNICODE, PUT, GET, DICT, TUPLE) around one tensor.
    text_tensor = (b"ctorch._utils\n_rebuild_tensor_v2\np2\n((Vstorage\np3\nctorch\nFloatStorage\np4\nV0\nVcpu\nI4\n"
                   b"tp5\nQI0\n(I2\nI2\ntp6\n(I2\nI1\ntp7\nI00\nccollections\nOrderedDict\n(tRp8\ntRp9\n")
    protocol0 = (b"(dp0\nVw\np1\n" + text_tensor + b"sVlr\nF0.5\nsS'name\\n'\nS'abc'\nsVbig\n"
                 b"L123456789012345678901234567890L\nsVflag\nI01\nsVagain\ng9\ns.")
    valid.append(dict(name="torch_protocol0_text_opcodes", extension="pt",
                      data=checkpoint(protocol0, good_storage),
                      tensors=[("w", "float32", (2, 2), floats(1, 2, 3, 4)), ("again", "float32", (2, 2), floats(1, 2, 3, 4))]))
    # Protocol 4: FRAME, SHORT_BINUNICODE, STACK_GLOBAL and MEMOIZE, as pickle.dumps(protocol=4) writes them.
    def short(text):
        return b"\x8c" + bytes([len(text)]) + text.encode()
    body4 = (short("collections") + MEMOIZE + short("OrderedDict") + MEMOIZE + STACK_GLOBAL + MEMOIZE + EMPTY_TUPLE +
             REDUCE + MEMOIZE + MARK + short("w") + MEMOIZE + good_tensor + SETITEMS + STOP)
    protocol4 = b"\x80\x04\x95" + struct.pack("<Q", len(body4)) + body4
    valid.append(dict(name="torch_protocol4_frames", extension="pt", data=checkpoint(protocol4, good_storage),
                      tensors=[("w", "float32", (2, 2), floats(1, 2, 3, 4))]))
    # torch.save(model): modules are copyreg._reconstructor objects whose state keeps tensors in _parameters and
    # _modules (skipped in the names, as state_dict() does); a tied weight is the same memoized tensor twice.
    def module(state):
        return (GLOBAL("copyreg", "_reconstructor") + MARK + GLOBAL("mymodels", "Net") + GLOBAL("builtins", "object") +
                NONE + TUPLE + REDUCE + EMPTY_DICT + MARK + U("training") + NEWTRUE + state + SETITEMS + BUILD)
    bias = rebuild_v2(storage_pid("1", 2), 0, (2,), (1,))
    inner_module = module(U("_parameters") + state_dict([("bias", bias)]))
    outer_module = module(U("_parameters") + state_dict([("weight", good_tensor + BINPUT(200))]) + U("_modules") +
                          state_dict([("fc", inner_module)]))
    tied = EMPTY_DICT + MARK + U("encoder") + outer_module + U("decoder_weight") + BINGET(200) + SETITEMS
    valid.append(dict(name="torch_whole_module_tied", extension="pt",
                      data=checkpoint(program(tied), good_storage + [("1", floats(5, 6))]),
                      tensors=[("encoder.weight", "float32", (2, 2), floats(1, 2, 3, 4)),
                               ("encoder.fc.bias", "float32", (2,), floats(5, 6)),
                               ("decoder_weight", "float32", (2, 2), floats(1, 2, 3, 4))]))
    st = {"b": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]},
          "i": {"dtype": "I64", "shape": [1], "data_offsets": [4, 12]},
          "e": {"dtype": "F32", "shape": [0, 3], "data_offsets": [12, 12]},
          "__metadata__": {"format": "pt"}}
    valid.append(dict(name="safetensors_mixed", extension="safetensors",
                      data=safetensors(st, b"\x80\x3f\x00\xc0" + struct.pack("<q", -5)),
                      tensors=[("b", "bfloat16", (2,), b"\x80\x3f\x00\xc0"), ("i", "int64", (1,), struct.pack("<q", -5)),
                               ("e", "float32", (0, 3), b"")]))
    # A float dict key far outside int64 (found by fuzz_torch_checkpoint: its canonical key once overflowed).
    valid.append(dict(name="torch_float_key", extension="pt",
                      data=checkpoint(program(EMPTY_DICT + b"G" + struct.pack(">d", 1e300) + good_tensor + SETITEM),
                                      good_storage),
                      tensors=[("1e+300", "float32", (2, 2), floats(1, 2, 3, 4))]))
    # A header of 128 bytes: the file starts with byte 0x80, as a pickle does (found by fuzz_torch_checkpoint: the
    # format was once recognized in the wrong order).
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, separators=(",", ":")).encode()
    valid.append(dict(name="safetensors_header_size_0x80", extension="safetensors",
                      data=safetensors(header + b" " * (128 - len(header)), floats(7)),
                      tensors=[("w", "float32", (1,), floats(7))]))
    fortran = npy("<i4", (2, 3), struct.pack("<6i", 0, 3, 1, 4, 2, 5), fortran=True)
    valid.append(dict(name="npz_mixed", extension="npz",
                      data=npz([("x.npy", npy("<f8", (2,), struct.pack("<2d", 1.5, -1))),
                                ("f.npy", fortran), ("be.npy", npy(">u2", (2,), struct.pack(">2H", 1, 2))),
                                ("s.npy", npy("|b1", (), b"\x01"))]),
                      tensors=[("x", "float64", (2,), struct.pack("<2d", 1.5, -1)),
                               ("f", "int32", (2, 3), struct.pack("<6i", 0, 1, 2, 3, 4, 5)),
                               ("be", "uint16", (2,), struct.pack("<2H", 1, 2)), ("s", "bool", (), b"\x01")]))
    valid.append(dict(name="npz_compressed", extension="npz",
                      data=npz([("z.npy", npy("<f4", (256,), b"\0" * 1024))], compress=True),
                      tensors=[("z", "float32", (256,), b"\0" * 1024)]))
    return hostile, valid


def check_pickle(data):
    """pickletools decodes every opcode without executing any: a hostile pickle is a real pickle."""
    for _ in pickletools.genops(data):
        pass


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = os.path.abspath(sys.argv[1])
    marker = os.path.join(out, "EXECUTED-MARKER")
    hostile, valid = build(marker)
    os.makedirs(os.path.join(out, "hostile"), exist_ok=True)
    os.makedirs(os.path.join(out, "valid"), exist_ok=True)
    if os.path.exists(marker):
        os.remove(marker)
    catalogue = {"marker": marker, "hostile": [], "valid": []}
    names = set()
    for entry in hostile:
        assert entry["name"] not in names, entry["name"]
        names.add(entry["name"])
        if entry["pickle"] is not None and entry["name"] not in ("no_stop", "unknown_opcode",
                                                                 "binunicode_length_past_end", "protocol_6",
                                                                 "binunicode_invalid_utf8", "extension_opcode",
                                                                 "out_of_band_buffer"):
            check_pickle(entry["pickle"])
        path = os.path.join(out, "hostile", f"{entry['name']}.{entry['extension']}")
        with open(path, "wb") as file:
            file.write(entry["data"])
        catalogue["hostile"].append({key: entry[key] for key in ("name", "fragment", "code", "what")} |
                                    {"file": os.path.relpath(path, out)})
    for entry in valid:
        if entry["extension"] in ("pt", "pth"):
            with zipfile.ZipFile(io.BytesIO(entry["data"])) as archive:
                check_pickle(archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl"))))
        path = os.path.join(out, "valid", f"{entry['name']}.{entry['extension']}")
        with open(path, "wb") as file:
            file.write(entry["data"])
        catalogue["valid"].append({"name": entry["name"], "file": os.path.relpath(path, out),
                                   "tensors": [{"name": n, "dtype": d, "shape": list(s), "hex": b.hex()}
                                               for n, d, s, b in entry["tensors"]]})
    with open(os.path.join(out, "catalogue.json"), "w") as file:
        json.dump(catalogue, file, indent=1)
    print(f"{len(hostile)} hostile and {len(valid)} valid weight files in {out}")


if __name__ == "__main__":
    main()
