"""PyTorch capture: torch.export of an nn.Module in eval mode -> the graph JSON the C++ model front-end parses
(src/frontends/pytorch/export_graph.cpp), plus the parameter values. This is the only torch-specific part of whole
model conversion: it records what torch.export says (each ATen call with every schema argument named, defaults
filled in, the output shapes, the module path and source line) and decides nothing about the conversion.

Graph JSON (format "convbridge.torch_export/1"):
  inputs:     [{"name", "shape"}]                      the user inputs, PyTorch layout
  parameters: [{"name", "target", "shape", "kind"}]    parameters, buffers and lifted constants
  nodes:      [{"name", "op", "args": {schema name: value}, "shapes": [[...]] (one per output),
                "module", "module_class", "source"}]
  outputs:    a structure of {"ref": node} in {"tuple"|"list": [...]} / {"dict": [[key, ...], ...]}
Values: JSON ints, floats, bools, null, strings, lists, and {"ref": name} for a tensor or node. A size that depends
on the input size (None in input_shape) is its symbolic expression as a string in shapes, and {"size": expr} or a
{"ref"} to a node of op "size" (torch.export's size arithmetic) in arguments.
"""

import json
import operator
import os

import torch

FORMAT = "convbridge.torch_export/1"


class CaptureError(ValueError):
    """The model cannot be captured (training mode, torch.export failure); names the cause."""


def _value(value):
    if isinstance(value, torch.fx.Node):
        return {"ref": value.name}
    if isinstance(value, (list, tuple)):
        return [_value(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return {"float": repr(value)} if value != value or value in (float("inf"), float("-inf")) else value
    if isinstance(value, (torch.SymInt, torch.SymFloat)):
        return {"size": _size(value)}
    if isinstance(value, torch.dtype):
        return str(value)
    if isinstance(value, (torch.device, torch.memory_format, torch.layout)):
        return str(value)
    raise CaptureError(f"cannot record argument {value!r} of type {type(value).__name__}")


def _named_arguments(node):
    """{schema argument name: value} with defaults filled, so the front-end never guesses positions."""
    target = node.target
    if target is operator.getitem:
        return {"self": _value(node.args[0]), "index": _value(node.args[1])}
    schema = getattr(target, "_schema", None)
    if schema is None:
        return {f"arg{i}": _value(a) for i, a in enumerate(node.args)} | {k: _value(v) for k, v in node.kwargs.items()}
    named = {}
    for index, argument in enumerate(schema.arguments):
        if index < len(node.args):
            value = node.args[index]
        elif argument.name in node.kwargs:
            value = node.kwargs[argument.name]
        elif argument.has_default_value():
            value = argument.default_value
        else:
            continue
        named[argument.name] = _value(value)
    return named


def _op_name(target):
    if target is operator.getitem:
        return "getitem"
    name = getattr(target, "_name", None) or getattr(target, "__name__", str(target))
    overload = getattr(target, "_overloadname", None)
    if name.startswith("aten::"):
        name = "aten." + name[len("aten::"):]  # "aten::transpose.int": the overload is already in _name
        if "." not in name[len("aten."):]:
            name += "." + (overload or "default")
    return name


def _size(size):
    """An int, or for a size that depends on the input size (torch.export's symbolic size) its expression, e.g.
    "s53" or "((s53//2)) + 1": equal strings are equal sizes, and that is all the front-end relies on."""
    if isinstance(size, int):
        return size
    expression = size.node.expr
    return int(expression) if getattr(expression, "is_number", False) else str(expression)


def _shape(tensor):
    return [_size(s) for s in tensor.shape]


def _shapes(value):
    if isinstance(value, torch.Tensor):
        return [_shape(value)]
    if isinstance(value, (list, tuple)):
        return [_shape(v) if isinstance(v, torch.Tensor) else None for v in value]
    return []


def _is_size_computation(node):
    """sym_size, arithmetic on sizes and the asserts torch.export adds about them: not tensor ops."""
    value = node.meta.get("val")
    if isinstance(value, (torch.SymInt, torch.SymFloat, torch.SymBool, int, float, bool)):
        return True
    name = _op_name(node.target)
    return value is None and ("assert" in name or "sym_constrain" in name)


def _module(node):
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return "", ""
    path, cls = list(stack.values())[-1]
    # torch.export writes paths as L['self'].layer1[0].conv1 in some versions: keep the dotted attribute path.
    path = path.replace("L['self'].", "").replace("L['self']", "")
    path = path.replace("[", ".").replace("]", "").replace("'", "")
    return path, cls if isinstance(cls, str) else f"{cls.__module__}.{cls.__qualname__}"


_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__))


def _source(node):
    """file:line: code of the innermost frame in the user's code (not in torch itself)."""
    trace = (node.meta.get("stack_trace") or "").strip().splitlines()
    for index in range(len(trace) - 1, -1, -1):
        line = trace[index].strip()
        if line.startswith("File ") and not line[len("File "):].strip('"').startswith(_TORCH_DIR):
            code = trace[index + 1].strip() if index + 1 < len(trace) else ""
            parts = line.split(",")
            where = parts[0][len("File "):].strip('"') + ":" + parts[1].strip().removeprefix("line ")
            return f"{where}: {code}" if code else where
    return ""


def _structure(spec, leaves):
    """The model's output nesting from torch.export's out_spec (a pytree TreeSpec), its leaves the graph's flat
    outputs in order: tuples, lists and dicts keep their shape (a 1-element tuple stays a tuple)."""
    children = spec.children() if hasattr(spec, "children") else spec.children_specs
    if spec.type is None or not children and spec.num_leaves == 1 and spec.type not in (tuple, list, dict):
        return _outputs(next(leaves))
    items = [_structure(child, leaves) for child in children]
    if spec.type is dict:
        return {"dict": [[str(key), item] for key, item in zip(spec.context, items)]}
    if spec.type is list:
        return {"list": items}
    if spec.type is tuple or (isinstance(spec.type, type) and issubclass(spec.type, tuple)):
        return {"tuple": items}  # namedtuples too
    raise CaptureError(f"the model returns a {spec.type.__name__}; convbridge converts tensor outputs in tuples, "
                       f"lists and dicts")


def _outputs(value):
    if isinstance(value, torch.fx.Node):
        return {"ref": value.name}
    if isinstance(value, tuple):
        return {"tuple": [_outputs(v) for v in value]}
    if isinstance(value, list):
        return {"list": [_outputs(v) for v in value]}
    if isinstance(value, dict):
        return {"dict": [[str(k), _outputs(v)] for k, v in value.items()]}
    if value is None:
        return None
    raise CaptureError(f"the model returns a {type(value).__name__}; convbridge converts tensor outputs "
                       f"(in tuples, lists and dicts)")


def export(model, example_inputs, dynamic_dims=None):
    """torch.export.export of the model in eval mode, with errors that say what to do. dynamic_dims: per input,
    the axes whose size may vary (the None entries of the user's input_shape)."""
    training = [name for name, module in model.named_modules() if module.training]
    if training:
        which = f"the {type(model).__name__}" if training[0] == "" else \
            f"{type(model).__name__}.{training[0]} ({type(model.get_submodule(training[0])).__name__})"
        raise CaptureError(f"{which} is in training mode: call model.eval() first (convbridge converts inference: "
                           f"BatchNorm running statistics, Dropout off)")
    dynamic_shapes = None
    if dynamic_dims and any(dynamic_dims):
        dynamic_shapes = tuple({axis: torch.export.Dim.AUTO for axis in axes} or None for axes in dynamic_dims)
    try:
        with torch.no_grad():
            return torch.export.export(model, tuple(example_inputs), dynamic_shapes=dynamic_shapes)
    except Exception as error:  # torch.export raises many types; keep its message, say where it came from
        raise CaptureError(f"torch.export could not capture the {type(model).__name__}: "
                           f"{type(error).__name__}: {str(error).strip().splitlines()[0]}") from error


def capture(model, example_inputs, dynamic_dims=None):
    """(graph JSON text, {parameter name: numpy array}, exported program) for the model on these inputs."""
    program = export(model, example_inputs, dynamic_dims)
    signature = program.graph_signature
    state = program.state_dict
    constants = getattr(program, "constants", {})
    kinds = {}
    for spec in signature.input_specs:
        kinds[spec.arg.name] = (spec.kind.name.lower(), spec.target)
    inputs, parameters, nodes, values = [], [], [], {}
    for node in program.graph.nodes:
        if node.op == "placeholder":
            kind, target = kinds.get(node.name, ("user_input", None))
            value = node.meta.get("val")
            if kind == "user_input":
                if not isinstance(value, torch.Tensor):
                    raise CaptureError(f"input {node.name!r} is not a tensor; convbridge converts tensor inputs")
                shape = _shape(value)
                for axis in (dynamic_dims[len(inputs)] if dynamic_dims else ()):
                    if isinstance(shape[axis], int):
                        raise CaptureError(
                            f"input {node.name!r}: the model's forward fixes axis {axis} to {shape[axis]} "
                            f"(torch.export specialised it), so it converts for that size only: give it in "
                            f"input_shape instead of None")
                inputs.append({"name": node.name, "shape": shape})
                continue
            tensor = state.get(target) if target in state else constants.get(target)
            if tensor is None:
                raise CaptureError(f"no value for the model's {kind} {target!r}")
            tensor = tensor.detach().cpu()
            if tensor.dtype in (torch.float16, torch.bfloat16):
                tensor = tensor.float()
            values[node.name] = tensor.contiguous().numpy() if tensor.dtype.is_floating_point else \
                tensor.to(torch.float64).numpy()
            parameters.append({"name": node.name, "target": target, "kind": kind,
                               "shape": [int(s) for s in tensor.shape]})
        elif node.op == "call_function" and _is_size_computation(node):
            nodes.append({"name": node.name, "op": "size", "args": {}, "shapes": [], "module": "",
                          "module_class": "", "source": ""})
        elif node.op == "call_function":
            module, module_class = _module(node)
            nodes.append({"name": node.name, "op": _op_name(node.target), "args": _named_arguments(node),
                          "shapes": _shapes(node.meta.get("val")), "module": module, "module_class": module_class,
                          "source": _source(node)})
        elif node.op == "output":
            flat = list(node.args[0])
            try:
                structure = _structure(program.call_spec.out_spec, iter(flat))
            except (AttributeError, StopIteration):  # no spec: the flat outputs
                structure = _outputs(flat[0] if len(flat) == 1 else tuple(flat))
    graph = {"format": FORMAT, "model": type(model).__name__, "inputs": inputs, "parameters": parameters,
             "nodes": nodes, "outputs": structure}
    return json.dumps(graph), values, program


def node_outputs(program, example_inputs):
    """{node name: output tensor (or tuple)} of every call in the exported graph, for per-node verification."""
    module = program.module()
    recorded = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, node):
            result = super().run_node(node)
            if node.op == "call_function":
                recorded[node.name] = result
            return result

    with torch.no_grad():
        Recorder(module).run(*example_inputs)
    return recorded
