"""Writes the seeds of fuzz/corpus/fuzz_keras_model/: the descriptions convbridge._keras_capture.capture makes of
tiny Keras models (file name: SHA-1 of the content, as libFuzzer names inputs). Needs keras and the convbridge
package (the build's staged package will do):

    PYTHONPATH=build-python/pkg .venv/bin/python fuzz/make_keras_model_seeds.py   # idempotent
"""
import hashlib
import json
import os

import keras
from keras import layers

from convbridge import _keras_capture

HERE = os.path.dirname(os.path.abspath(__file__))


def functional():
    x = keras.Input((9, 8, 3), name="image")
    y = layers.ZeroPadding2D(((1, 0), (0, 1)), name="pad")(x)
    y = layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="conv")(y)
    y = layers.BatchNormalization(name="bn")(y)
    z = layers.DepthwiseConv2D(3, padding="same", name="dw")(y)
    y = layers.Add(name="add")([y, z])
    y = layers.Concatenate(name="cat")([y, z])
    y = layers.MaxPooling2D(2, padding="same", name="pool")(y)
    y = layers.Flatten(name="flat")(y)
    return keras.Model(x, layers.Dense(5, activation="softmax", name="fc")(y), name="functional")


def sequential():
    return keras.Sequential([keras.Input((None, None, 2)), layers.Conv2D(3, 3, padding="same", name="c"),
                             layers.LayerNormalization(name="ln"), layers.Dense(4, name="pointwise"),
                             layers.Rescaling(0.5, 1.0, name="rescale"), layers.GlobalAveragePooling2D(name="gap")],
                            name="sequential")


def nested_two_outputs():
    a, b = keras.Input((6, 6, 2), name="a"), keras.Input((6, 6, 2), name="b")
    inner = keras.Sequential([keras.Input((6, 6, 4)), layers.Conv2D(2, 1, name="inner_conv"),
                              layers.Normalization(mean=[0.5, 1.0], variance=[2.0, 4.0], name="norm")], name="inner")
    y = inner(layers.Concatenate(axis=-1, name="cat")([a, b]))
    y = layers.Permute((2, 1, 3), name="swap")(y)
    flat = layers.Reshape((36, 2), name="reshape")(y)
    return keras.Model([a, b], {"map": layers.Multiply(name="mul")([y, a]), "flat": flat}, name="nested")


def main():
    directory = os.path.join(HERE, "corpus", "fuzz_keras_model")
    os.makedirs(directory, exist_ok=True)
    for build in (functional, sequential, nested_two_outputs):
        description, _ = _keras_capture.capture(build())
        text = json.dumps(description, sort_keys=True).encode()
        with open(os.path.join(directory, hashlib.sha1(text).hexdigest()), "wb") as f:
            f.write(text)


if __name__ == "__main__":
    main()
