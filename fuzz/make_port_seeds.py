"""Writes the seeds of fuzz/corpus/fuzz_port/: for the port test twins (tests/python/port_twins.py) at a small
input size, {"model": capture of the Keras twin, "checkpoint": [[name, shape]] of its PyTorch twin's state_dict,
"torch_modules": {path: constructor}}, once correct and once mis-written; and two tiny .keras files (file name:
SHA-1 of the content, as libFuzzer names inputs). Needs keras, torch and the convbridge package:

    PYTHONPATH=build-python/pkg .venv/bin/python fuzz/make_port_seeds.py   # idempotent up to Keras' zip dates
"""
import hashlib
import json
import os
import sys
import tempfile

import keras

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "python"))

import port_twins  # noqa: E402
from convbridge import _keras_capture, _port  # noqa: E402


def write(directory, data):
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def main():
    directory = os.path.join(HERE, "corpus", "fuzz_port")
    os.makedirs(directory, exist_ok=True)
    for name, mistakes in [("vgg11", {}), ("vgg11", {"missing_bias": True}), ("mobilenet_v2", {}),
                           ("resnet18", {"same_at_stride2": True})]:
        torch_model = port_twins.build_torch(name, input_size=32)
        keras_model = port_twins.build_keras(name, 32, **mistakes).model
        description, _ = _keras_capture.capture(keras_model)
        seed = {"model": description,
                "checkpoint": [[k, list(v.shape)] for k, v in torch_model.state_dict().items()],
                "torch_modules": _port._module_texts(torch_model)}
        write(directory, json.dumps(seed, separators=(",", ":")).encode())
    with tempfile.TemporaryDirectory() as tmp:
        x = keras.Input((8, 8, 3))
        y = keras.layers.ZeroPadding2D(1)(x)
        y = keras.layers.Conv2D(4, 3, strides=2, use_bias=False, name="stem")(y)
        y = keras.layers.BatchNormalization(name="stem_bn")(y)
        inner = keras.Sequential([keras.Input((4, 4, 4)), keras.layers.DepthwiseConv2D(3, padding="same")], name="inner")
        y = keras.layers.Dense(3, name="head")(keras.layers.Flatten()(inner(keras.layers.ReLU()(y))))
        for model in (keras.Model(x, y, name="tiny"), keras.Sequential([keras.Input((5, 5, 2)), keras.layers.Conv2D(2, 3)])):
            path = os.path.join(tmp, "m.keras")
            model.save(path)
            with open(path, "rb") as f:
                write(directory, f.read())


if __name__ == "__main__":
    main()
