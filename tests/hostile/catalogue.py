"""The hostile-input catalogue (catalogue.json next to this file), for the Python and CLI runners.

Each entry is an object:
  name         unique test name
  layer        the layer text, PyTorch ("nn.Conv2d(...)") or Keras ("keras.layers.Conv2D(...)"): a string, or a
               generated text (below). Text that names a Keras layer (names_keras_layer: keras.layers./layers./
               tf.keras.layers./tfkl. or a bare Keras class name) goes to the Keras front-end, as in the CLI; a
               tf.nn call (names_tf_nn_call) to the tf.nn front-end, which without filters_shape reports the text's
               own error first, else the missing --filters-shape (tf_nn_call_needs_filters_shape).
  filters_shape optional, tf.nn calls only: the --filters-shape text (a string or a generated text), e.g. "3,3,4,8"
               (conv*: *kernel, in_channels, out_channels; depthwise_conv2d: height, width, in_channels,
               channel_multiplier; conv*_transpose: *kernel, out_channels, in_channels). Python passes the ints it
               denotes as filters_shape=(...), or the text itself when it denotes no sequence of ints (mark those
               "value_error").
  input_shape  optional --input-shape text, a string or a generated text. PyTorch: N,C,*spatial. Keras:
               N,*spatial,C (channels_last), None for unknown sizes; the CLI needs it for a Keras layer (its last
               entry is the input channel count), so Keras entries give it even when the layer text is at fault.
  stage        where the input is rejected.
               PyTorch: "parse" (parse_pytorch_layer), "shape" (parse_input_shape) or "plan" (plan_torch_to_tf, i.e.
               the checks PyTorch makes on a forward pass).
               Keras: "parse" (parse_keras_layer), "shape" (parse_input_shape(text, allow_unknown=True), then the
               CLI's own check that the channel count, the last entry, is not None) or "plan"
               (plan_keras_to_torch(layer, in_channels=last entry, shape), i.e. the checks Keras makes on build and
               call: input rank, input channels divisible by groups, an empty output).
               tf.nn (with filters_shape): "filters-shape" (parse_filters_shape), "parse" (parse_tf_nn_call(text,
               filters shape)), "shape" (parse_input_shape(text, allow_unknown=True)) or "plan"
               (plan_tf_nn_to_torch(call, input shape or none): the checks TensorFlow makes on the call's tensors),
               in this order, as the CLI (tools/convbridge/cli.cpp translate_tf_nn). Without filters_shape: "parse".
               A filters_shape on a PyTorch or Keras layer: "filters-shape" (the CLI refuses it before the layer).
  code         the convbridge::ErrorCode: syntax, unknown_argument, invalid_argument, input_shape, overflow,
               unsupported
  fragment     text the error message must contain (it names the argument and the value at fault)
  python       optional: "same" (default; convbridge.translate raises ValueError with the CLI's message) or
               "value_error" (the Python API cannot receive the same input, e.g. --input-shape or --filters-shape
               text that denotes no sequence of ints, or bytes that are not UTF-8, or checks it with messages of
               its own, e.g. input_shape, filters_shape: it must still raise
               ValueError, and python -m convbridge prints the CLI's message)

A generated text is {"prefix": str, "repeat": str, "times": int, "suffix": str, "text": str, "encoding": str}
(every key optional): prefix + repeat * times + suffix (or text), encoded with `encoding` ("utf-8" by default;
"latin-1" turns code points below 256 into single bytes, for bytes that are not UTF-8).

  python3 catalogue.py argv [catalogue.json]   prints, per entry, NUL-terminated fields for cli_catalogue_test.sh:
                                              name, fragment, skip reason ("" to run), argument count, arguments
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

CATALOGUE = Path(__file__).with_name("catalogue.json")

# Linux refuses a single argv string longer than MAX_ARG_STRLEN (32 pages): longer texts are library-only.
MAX_ARGUMENT_BYTES = 128 * 1024 - 1


def expand(spec) -> bytes | None:
    if spec is None:
        return None
    if isinstance(spec, str):
        return spec.encode("utf-8")
    text = spec.get("text", spec.get("prefix", "") + spec.get("repeat", "") * spec.get("times", 0) + spec.get("suffix", ""))
    return text.encode(spec.get("encoding", "utf-8"))


@dataclass(frozen=True)
class Entry:
    name: str
    layer: bytes
    input_shape: bytes | None
    stage: str
    code: str
    fragment: str
    python: str
    filters_shape: bytes | None = None

    def cli_arguments(self) -> list[bytes]:
        arguments = [b"translate", self.layer]
        if self.input_shape is not None:
            arguments += [b"--input-shape", self.input_shape]
        if self.filters_shape is not None:
            arguments += [b"--filters-shape", self.filters_shape]
        return arguments

    def cli_skip_reason(self) -> str:
        for argument in self.cli_arguments():
            if b"\0" in argument:
                return "a NUL byte cannot be passed on a command line"
            if len(argument) > MAX_ARGUMENT_BYTES:
                return f"an argument of {len(argument)} bytes exceeds Linux's per-argument limit"
        return ""


def catalogue_files() -> list[Path]:
    """catalogue.json, then each layer family's catalogue_<family>.json, in name order."""
    return [CATALOGUE] + sorted(CATALOGUE.parent.glob("catalogue_*.json"))


def load(path: Path | None = None) -> list[Entry]:
    """The entries of one file, or of every catalogue file (the default)."""
    raws = []
    for file in ([Path(path)] if path is not None else catalogue_files()):
        raws += json.loads(file.read_text(encoding="utf-8"))
    entries = []
    for raw in raws:
        entries.append(Entry(raw["name"], expand(raw["layer"]), expand(raw.get("input_shape")), raw["stage"],
                             raw["code"], raw["fragment"], raw.get("python", "same"),
                             expand(raw.get("filters_shape"))))
    names = [entry.name for entry in entries]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"duplicate catalogue names: {duplicates}")
    return entries


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] != "argv":
        print(__doc__, file=sys.stderr)
        return 2
    out = sys.stdout.buffer
    for entry in load(Path(argv[2]) if len(argv) > 2 else None):
        skip = entry.cli_skip_reason()
        arguments = [] if skip else entry.cli_arguments()
        fields = [entry.name.encode(), entry.fragment.encode(), skip.encode(), str(len(arguments)).encode(), *arguments]
        out.write(b"".join(field + b"\0" for field in fields))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
