#!/usr/bin/env python3
"""Prints (or writes into README.md) the tables of which configurations become which constructs, both ways.

Every row is produced by the planner: each layer is translated with the installed convbridge package and the
constructs are read out of the Keras and tf.nn code it emits. `--write` updates README.md between the
mapping-table markers; `--check` exits 1 when README.md is out of date
(tests/python/test_package.py::test_readme_mapping_table_is_current runs it).
"""

import argparse
import ast
import json
import sys
from pathlib import Path

import convbridge

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN, END = "<!-- mapping-table:begin -->", "<!-- mapping-table:end -->"
REVERSE_BEGIN, REVERSE_END = "<!-- reverse-table:begin -->", "<!-- reverse-table:end -->"

LAYER_BEGIN, LAYER_END = "<!-- layer-table:begin -->", "<!-- layer-table:end -->"

# The layers around the convolutions, both directions: (text, input shape in the source's layout or None).
LAYER_ROWS = [
    ("nn.MaxPool2d(2)", None),
    ("nn.MaxPool2d(3, 2, 1)", None),
    ("nn.MaxPool2d(3, 2, 1, ceil_mode=True)", (1, 64, 55, 55)),
    ("nn.MaxPool2d(3, 2, 1, ceil_mode=True)", None),
    ("nn.MaxPool1d(3, dilation=2)", None),
    ("nn.AvgPool2d(3, 1, 1)", None),
    ("nn.AvgPool2d(3, 1, 1, count_include_pad=False)", (1, 8, 32, 32)),
    ("nn.AvgPool2d(2, ceil_mode=True)", None),
    ("nn.AdaptiveAvgPool2d(1)", None),
    ("nn.AdaptiveAvgPool2d((4, 5))", None),
    ("keras.layers.MaxPooling2D(3, 2, padding='same')", (None, None, None, 8)),
    ("keras.layers.AveragePooling2D(3, 1, padding='same')", (None, None, None, 8)),
    ("keras.layers.GlobalAveragePooling2D()", (None, None, None, 8)),
    ("nn.BatchNorm2d(64)", None),
    ("nn.GroupNorm(4, 32)", None),
    ("nn.InstanceNorm2d(16)", None),
    ("nn.LayerNorm((16, 8, 8))", (2, 16, 8, 8)),
    ("keras.layers.BatchNormalization()", None),
    ("keras.layers.LayerNormalization()", (None, None, None, 32)),
    ("keras.layers.GroupNormalization(groups=4)", (None, None, None, 32)),
    ("nn.Upsample(scale_factor=2, mode='nearest')", None),
    ("nn.Upsample(scale_factor=2, mode='bilinear')", None),
    ("nn.Upsample(scale_factor=2, mode='bilinear', align_corners=True)", None),
    ("nn.Upsample(size=(7, 9), mode='bicubic')", None),
    ("keras.layers.UpSampling2D(2, interpolation='bilinear')", (None, None, None, 3)),
    ("keras.layers.Resizing(7, 9, interpolation='nearest')", (None, 5, 5, 3)),
    ("nn.ZeroPad2d((1, 2, 0, 1))", None),
    ("nn.ReflectionPad2d(2)", None),
    ("nn.ZeroPad2d((-1, 1, 0, 0))", None),
    ("keras.layers.Cropping2D(((1, 0), (0, 2)))", (None, None, None, 3)),
    ("nn.PixelShuffle(2)", None),
    ("tf.nn.depth_to_space(x, 2)", (None, None, None, 8)),
    ("nn.LeakyReLU()", None),
    ("nn.GELU(approximate='tanh')", None),
    ("nn.PReLU(16)", (None, 16, None, None)),
    ("nn.Softmax(dim=1)", None),
    ("keras.layers.LeakyReLU()", (None, None, None, 8)),
    ("keras.layers.ReLU(max_value=6.0)", (None, None, None, 8)),
]

REVERSE_ROWS = [
    ("keras.layers.Conv2D(16, 3, padding='same')", (None, None, None, 3)),
    ("keras.layers.Conv2D(16, 4, padding='same')", (None, None, None, 3)),
    ("keras.layers.Conv2D(16, 3, strides=2, padding='same')", (None, None, None, 3)),
    ("keras.layers.Conv2D(16, 3, strides=2, padding='same')", (1, 224, 224, 3)),
    ("keras.layers.Conv2D(16, 3, strides=2, padding='same')", (1, 225, 225, 3)),
    ("keras.layers.Conv1D(8, 3, padding='causal', dilation_rate=2)", (None, None, 4)),
    ("keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding='same')", (None, None, None, 8)),
    ("keras.layers.SeparableConv2D(32, 3, padding='same')", (None, None, None, 8)),
    ("keras.layers.Conv2DTranspose(8, 4, strides=2, padding='same')", (None, None, None, 16)),
    ("keras.layers.Conv2DTranspose(8, 3, strides=2, padding='same')", (None, None, None, 16)),
    ("keras.layers.Conv1DTranspose(8, 2, strides=3)", (None, None, 16)),
    ("keras.layers.Conv2D(32, 3, padding='same', activation='leaky_relu')", (None, None, None, 3)),
    ("keras.layers.DepthwiseConv2D(3, padding='same', activation='relu6')", (None, None, None, 32)),
]

ROWS = [
    ("nn.Conv2d(3, 16, 3)", None),
    ("nn.Conv2d(3, 16, 3, padding='same')", None),
    ("nn.Conv2d(3, 16, 4, padding='same')", None),
    ("nn.Conv2d(3, 16, 4, padding=2)", None),
    ("nn.Conv2d(3, 16, 3, stride=2, padding=1)", None),
    ("nn.Conv2d(3, 16, 3, stride=2, padding=1)", (1, 3, 224, 224)),
    ("nn.Conv2d(3, 16, 3, stride=2, padding=1)", (1, 3, 225, 225)),
    ("nn.Conv1d(4, 8, 5, stride=2, padding=2)", None),
    ("nn.Conv3d(4, 8, 3, padding=(1, 0, 1))", None),
    ("nn.Conv2d(3, 16, 3, padding=1, padding_mode='reflect')", None),
    ("nn.Conv2d(3, 16, 3, padding=1, padding_mode='replicate')", None),
    ("nn.Conv2d(3, 16, 3, padding=1, padding_mode='circular')", None),
    ("nn.Conv2d(16, 32, 3, stride=2, dilation=2)", None),
    ("nn.Conv2d(16, 32, 3, padding=1, groups=16)", None),
    ("nn.Conv1d(8, 8, 5, groups=8)", None),
    ("nn.Conv3d(8, 8, 3, groups=8)", None),
    ("nn.Conv2d(16, 32, 3, groups=4)", None),
    ("nn.Conv3d(16, 32, 3, groups=4)", None),
    ("nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1)", None),
    ("nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)", None),
    ("nn.ConvTranspose2d(16, 8, 2, stride=2)", None),
    ("nn.ConvTranspose1d(4, 4, 3, stride=3, output_padding=2)", None),
    ("nn.ConvTranspose1d(4, 4, 3, dilation=3, output_padding=2)", None),
    ("nn.ConvTranspose3d(8, 8, 3, stride=2, padding=1, groups=4)", None),
]

def _function(code, name):
    return next(node for node in ast.parse(code).body if isinstance(node, ast.FunctionDef) and node.name == name)


def _assigns(node, name):
    """Whether `node` is `name = ...`."""
    return isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and node.targets[0].id == name


def _is_default(keyword):
    """Keyword arguments left out of the table: the bias flag and values that are Keras' defaults."""
    value = ast.literal_eval(keyword.value) if isinstance(keyword.value, (ast.Constant, ast.Tuple)) else None
    if keyword.arg == "use_bias":
        return True
    if keyword.arg in ("dilation_rate", "dilations", "strides"):
        return value == 1 or (isinstance(value, tuple) and all(v == 1 for v in value))
    return keyword.arg == "groups" and value == 1


def _render(call):
    call = ast.Call(func=call.func, args=call.args, keywords=[k for k in call.keywords if not _is_default(k)])
    return ast.unparse(call).replace("keras.layers.", "")


def keras_constructs(code):
    """The layers make_layer returns, in order, as written in the emitted code."""
    body = _function(code, "make_layer").body
    conv = next(n.value for n in body if _assigns(n, "conv"))
    returned = body[-1].value
    items = returned.args[0].elts if isinstance(returned, ast.Call) else [returned]
    # keras.Input only fixes what the Sequential accepts (None sizes, or the one size a plan is for): not a layer.
    items = [item for item in items if not (isinstance(item, ast.Call) and ast.unparse(item.func) == "keras.Input")]
    return [_render(conv if isinstance(item, ast.Name) else item) for item in items]


def tf_constructs(code):
    """The TF operations conv() applies to x, in order (weight checks, kernel and bias lines left out)."""
    found = []
    for statement in _function(code, "conv").body:
        if not (_assigns(statement, "x") or _assigns(statement, "y")):
            continue
        value = statement.value
        text = ast.unparse(value)
        if text.startswith(("tf.convert_to_tensor", "tf.nn.bias_add")):
            continue
        if isinstance(value, ast.Call) and ast.unparse(value.func) == "tf.concat":
            conv_call = value.args[0].elt
            conv_call.keywords = [k for k in conv_call.keywords if k.arg != "output_shape"]
            text = f"per group: {_render(conv_call)}, then tf.concat"
        elif isinstance(value, ast.Call):
            # axis: tf.squeeze's; dilations only where they are not 1 (tf.nn.convolution's dilated convs)
            # groups: tf_conv's, where it is not 1
            keep = [k for k in value.keywords if k.arg in ("padding", "mode", "strides", "stride", "axis")
                    or (k.arg in ("dilations", "groups") and not _is_default(k))]
            if ast.unparse(value.func) == "tf_conv":
                value.args = value.args[:1]
            text = ast.unparse(ast.Call(func=value.func, args=value.args[:1] if "nn." in ast.unparse(value.func)
                                        else value.args, keywords=keep))
        found.append(text)
    return found


def torch_constructs(code):
    """The modules make_module returns, in order, as written in the emitted PyTorch code."""
    body = _function(code, "make_module").body
    convs = {n.targets[0].id: n.value for n in body if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)
             and n.targets[0].id.startswith("conv")}
    returned = body[-1].value
    items = returned.args if isinstance(returned, ast.Call) and ast.unparse(returned.func) == "nn.Sequential" else [returned]
    rendered = []
    for item in items:
        call = convs[item.id] if isinstance(item, ast.Name) else item
        keep = [k for k in call.keywords if not (k.arg in ("dilation", "stride") and ast.unparse(k.value) in
                                                   ("(1,)", "(1, 1)", "(1, 1, 1)")) and not
                (k.arg == "groups" and ast.unparse(k.value) == "1") and k.arg != "bias"]
        rendered.append(ast.unparse(ast.Call(func=call.func, args=call.args, keywords=keep)))
    return rendered


def reverse_table():
    lines = ["| Keras layer | input shape | exact for | PyTorch modules |", "|---|---|---|---|"]
    for text, shape in REVERSE_ROWS:
        plan = convbridge.translate(text, input_shape=shape)
        modules = " → ".join(f"`{m}`" for m in torch_constructs(plan.torch_code()))
        exact = "every size" if json.loads(plan.to_json())["exact_for"] == "every_input_size" else "this size"
        shape_text = ",".join("None" if v is None else str(v) for v in shape)
        lines.append(f"| `{text}` | {shape_text} | {exact} | {modules} |")
    return "\n".join(lines)


def table():
    lines = ["| PyTorch layer | input shape | exact for | Keras layers | tf.nn operations |", "|---|---|---|---|---|"]
    for text, shape in ROWS:
        plan = convbridge.translate(text, input_shape=shape)
        keras = " → ".join(f"`{c}`" for c in keras_constructs(plan.keras_code()))
        tf_ops = " → ".join(f"`{c}`" for c in tf_constructs(plan.tf_code()))
        exact = "every size" if json.loads(plan.to_json())["exact_for"] == "every_input_size" else "this size"
        shape_text = "any" if shape is None else ",".join(map(str, shape))
        lines.append(f"| `{text}` | {shape_text} | {exact} | {keras} | {tf_ops} |")
    return "\n".join(lines)


def _step_code(call):
    """A step's call as printed in the table: ours without the package prefix, Keras' without keras.layers."""
    return call["code"].replace("keras.layers.", "")


def layer_table():
    lines = ["| layer | input shape | exact for | translation |", "|---|---|---|---|"]
    for text, shape in LAYER_ROWS:
        try:
            plan = convbridge.translate(text, input_shape=shape)
        except ValueError as error:  # a row the planner refuses is a table bug: say it loudly in the table
            lines.append(f"| `{text}` | | | error: {error} |")
            continue
        described = json.loads(plan.to_json())
        target = "Keras" if described["direction"] == "pytorch_to_keras" else "PyTorch"
        steps = " → ".join(f"`{_step_code(step['call'])}`" for step in described["steps"])
        if described["exact_for"] != "every_input_size":
            steps = "`ExpectInputSize` → " + steps
        exact = "every size" if described["exact_for"] == "every_input_size" else "this size"
        shape_text = "any" if shape is None else ",".join("None" if v is None else str(v) for v in shape)
        lines.append(f"| `{text}` | {shape_text} | {exact} | {target}: {steps} |")
    return "\n".join(lines)


def readme_with_table(readme, generated, begin=BEGIN, end_marker=END):
    start, end = readme.index(begin) + len(begin), readme.index(end_marker)
    return readme[:start] + "\n" + generated + "\n" + readme[end:]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="update README.md")
    group.add_argument("--check", action="store_true", help="exit 1 if README.md is out of date")
    args = parser.parse_args()
    generated, reverse, layers = table(), reverse_table(), layer_table()
    if not (args.write or args.check):
        print(generated + "\n\n" + reverse + "\n\n" + layers)
        return 0
    readme = README.read_text()
    updated = readme_with_table(readme_with_table(readme, generated), reverse, REVERSE_BEGIN, REVERSE_END)
    updated = readme_with_table(updated, layers, LAYER_BEGIN, LAYER_END)
    if args.check:
        if updated != readme:
            print("README.md's mapping table is out of date: run scripts/mapping_table.py --write", file=sys.stderr)
            return 1
        return 0
    README.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
