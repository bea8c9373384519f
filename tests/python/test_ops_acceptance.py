"""Issue #11's acceptance checks for the layers around the convolutions, end to end through the CLI and the Python
API, plus invariants every op-set plan keeps whatever its family:

- each of the issue's five commands prints an exact plan, code and a passing verification;
- every step of every plan in the README's layer table calls something that exists in the real framework (a
  keras.layers class, a torch.nn module, a tf function) or one of convbridge's own layers;
- the emitted code, executed, computes what the live object built by to_keras / to_torch computes, and both match
  the real source layer.

The per-family differential suites (test_ops_<family>.py) test the semantics at scale; this file tests the
plumbing they share.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import keras
import tensorflow as tf

import convbridge
from convbridge import keras_layers, torch_modules
from conftest import run_cli

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import mapping_table  # noqa: E402  (scripts/mapping_table.py: the README's layer table rows)

ISSUE_COMMANDS = [
    ("nn.MaxPool2d(3, 2, 1, ceil_mode=True)", "1,64,55,55"),
    ("nn.AvgPool2d(3, 1, 1)", None),
    ("nn.Upsample(scale_factor=2, mode='bilinear', align_corners=True)", None),
    ("keras.layers.AveragePooling2D(3, 1, padding='same')", "None,None,None,8"),
    ("keras.layers.BatchNormalization()", None),
]


@pytest.mark.parametrize("text,shape", ISSUE_COMMANDS)
def test_issue_command_prints_plan_code_and_passing_verification(text, shape):
    args = ["translate", text] + ([] if shape is None else ["--input-shape", shape])
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^Verification \(reference engine, float64, seed 0\): PASS", proc.stdout, re.M), proc.stdout
    code_marker = "Keras code:" if text.startswith("nn.") else "PyTorch code:"
    assert code_marker in proc.stdout, proc.stdout
    assert ("def make_layer(" if text.startswith("nn.") else "def make_module(") in proc.stdout
    assert proc.stderr == "", proc.stderr


def _callee_exists(callee: str, target: str) -> bool:
    if callee.startswith("convbridge."):
        return hasattr(keras_layers if target == "Keras" else torch_modules, callee.split(".", 1)[1])
    if callee.startswith("keras.layers."):
        return hasattr(keras.layers, callee.split(".")[-1])
    if callee.startswith("nn."):
        return hasattr(torch.nn, callee.split(".")[-1])
    if callee.startswith("tf."):
        obj = tf
        for part in callee.split(".")[1:]:
            obj = getattr(obj, part, None)
            if obj is None:
                return False
        return True
    return False


@pytest.mark.parametrize("text,shape", mapping_table.LAYER_ROWS)
def test_every_step_calls_something_that_exists(text, shape):
    plan = convbridge.translate(text, input_shape=shape)
    described = json.loads(plan.to_json())
    target = plan.target_framework
    for step in described["steps"]:
        assert _callee_exists(step["call"]["callee"], target), step["call"]["code"]
        if step["function"] is not None:
            assert _callee_exists(step["function"]["callee"], "Keras"), step["function"]["code"]
    assert plan.verify()["passed"], plan.verify()["summary"]


def _channels_first_shape(plan, shape):
    """A concrete PyTorch-layout input for a plan: its own sizes where known, else small odd ones."""
    described = json.loads(plan.to_json())
    known = described["channels_first_input"]
    rank = len(known) - 2 if known else (described["source"].get("rank") or 2)
    # The channel count the layer fixes (nn.BatchNorm2d(64): its weights are (64,)), else any.
    weights = described["source_weights"]
    channels = weights[0]["shape"][0] if weights and plan.source_framework == "PyTorch" else 8
    channels = channels if channels > 0 else 8
    concrete = [2, channels] + [7 + i for i in range(rank)]
    for i, value in enumerate(known):
        if value > 0:
            concrete[i] = value
    return concrete


def _source_weights(plan, rng, channels=8):
    """Random source weights in the plan's source layouts (positive, so variances are valid); a shape entry the
    plan leaves open (-1 or 0: the channel count) becomes `channels`."""
    weights = []
    for weight in json.loads(plan.to_json())["source_weights"]:
        shape = [channels if v <= 0 else v for v in weight["shape"]] or [channels]
        weights.append(rng.uniform(0.5, 1.5, shape).astype(np.float32))
    return weights


@pytest.mark.parametrize("text,shape", mapping_table.LAYER_ROWS)
def test_emitted_code_and_live_object_agree(text, shape, tmp_path):
    plan = convbridge.translate(text, input_shape=shape)
    nchw = _channels_first_shape(plan, shape)
    rng = np.random.default_rng(11)
    x = rng.standard_normal(nchw).astype(np.float32)
    x_last = np.moveaxis(x, 1, -1)
    namespace = {}
    if plan.target_framework == "Keras":
        built = None if plan.source_weight_names else convbridge.to_keras(text, input_shape=shape)
        exec(compile(plan.keras_code(), str(tmp_path / "layer.py"), "exec"), namespace)
        names = plan.source_weight_names
        source = _source_weights(plan, rng)
        emitted = namespace["make_layer"](*source) if names else namespace["make_layer"]()
        if names:  # the live object from text has default weights: give it the same ones
            built = convbridge._op_layers.build_keras(plan, source)
        np.testing.assert_allclose(np.asarray(emitted(x_last)), np.asarray(built(x_last)), rtol=0, atol=1e-6)
    else:
        built = None if plan.source_weight_names else convbridge.to_torch(text, input_shape=shape)
        exec(compile(plan.torch_code(), str(tmp_path / "module.py"), "exec"), namespace)
        names = plan.source_weight_names
        channels = nchw[1]
        source = _source_weights(plan, rng, channels)
        emitted = namespace["make_module"](*source) if names else namespace["make_module"]()
        if names:  # the channel count from the weights, as to_torch takes it from a built layer
            sized = convbridge._impl.plan_op_layer(text, None if shape is None else list(
                -1 if v is None else v for v in shape), channels)
            built = convbridge._op_layers.build_torch(sized, source, channels)
        with torch.no_grad():
            np.testing.assert_allclose(emitted(torch.from_numpy(x)).numpy(), built(torch.from_numpy(x)).numpy(),
                                       rtol=0, atol=1e-6)
