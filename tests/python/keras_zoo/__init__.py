"""Keras 3 models for the Keras -> PyTorch conversion tests (issue 13): keras.applications built with weights=None
(APPLICATIONS, this module) and small hand-built Functional and Sequential models covering every layer kind and
layout-sensitive op (SMALL, keras_zoo/small.py).

Every model is a KerasCase: a builder returning a fresh keras.Model, deterministic in its seed, with weights drawn
away from Keras's defaults (see randomize and preserve_signal), and the input shapes to evaluate it at, in Keras's
own layout (N, *spatial, C), one shape per model input.

Why the weights are redrawn: with weights=None every BatchNormalization has moving_mean 0, moving_variance 1, gamma
1, beta 0; every bias is 0; EfficientNet's Normalization layer has mean 0 and variance 1; ConvNeXt's LayerScale is
1e-6. A converter that dropped a BatchNorm, a bias, the Normalization or a whole ConvNeXt residual branch would then
still match Keras. And with Keras's default initialisers the signal of a deep net fades: measured on MobileNetV2
at 64x64 (include_top=False, random BatchNorm statistics), two different inputs gave outputs differing by 1.6e-7
relative, so a comparison at 1e-4 could not tell a wrong layer from a right one. preserve_signal rescales each
kernel so its layer's output has unit standard deviation (the layer-sequential unit-variance init of Mishkin &
Matas, 2016, as tests/python/zoo does for the PyTorch zoo).

Profiles, chosen by the environment variable CONVBRIDGE_KERAS_ZOO_PROFILE:
- ci (default): include_top=False, input_shape=(None, None, 3), one model evaluated at two sizes (odd and even);
  MobileNetV2 also built at a fixed odd size (its correct_pad differs between known and unknown sizes);
- full: the published models (include_top=True) at 224x224 (InceptionV3: 299x299) and at an input one pixel larger
  or smaller (the other parity), each a model of its own since include_top needs a static input size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import keras  # noqa: E402

Shape = tuple  # a tensor shape, batch first, Keras layout

PROFILE = os.environ.get("CONVBRIDGE_KERAS_ZOO_PROFILE", "ci")
if PROFILE not in ("ci", "full"):
    raise ValueError(f"CONVBRIDGE_KERAS_ZOO_PROFILE={PROFILE!r}: use 'ci' or 'full'")


@dataclass(frozen=True)
class KerasCase:
    """One Keras model and the inputs to compare it at.

    build(): the model as constructed (Keras's own initialisers); model() gives it with randomised weights.
    evaluations: for each evaluation, the input shapes (Keras layout, batch first), one per entry of model.inputs.
        A model with None sizes is converted once and evaluated at every entry; a model with fixed sizes has one.
    example_shape: passed to convert()/to_torch() as example_shape (Keras layout) for models with None spatial
        sizes whose default example (64 per None size) does not suit them; None: the converter's default.
    input_kind: "normal" (standard normal inputs), "image" (uniform in [0, 255]: for models that rescale images
        themselves, whose Normalization would otherwise swamp a N(0, 1) input), "smooth" (see smooth_field: the
        keras.applications, whose global pooling averages i.i.d. noise into nearly the same features for every
        input) or "smooth_image" (127.5 + 50 * smooth, clipped to [0, 255]: EfficientNet, ConvNeXt).
    moves_channels: True when the model itself moves data across the channel axis (Reshape, Permute, Flatten into
        a rank-3 tensor, ...): runtime transposes are then allowed in the PyTorch module.
    signal: whether model() runs preserve_signal (deep nets; the small models are shallow enough without it).
    seed: the seed of Keras's initialisers (keras.utils.set_random_seed) and of randomize.
    """

    name: str
    build: Callable[[], keras.Model] = field(repr=False)
    evaluations: tuple
    example_shape: Shape | None = None
    input_kind: str = "normal"
    moves_channels: bool = False
    signal: bool = False
    seed: int = 0

    def random_inputs(self, evaluation: int, seed: int = 0) -> list[np.ndarray]:
        """float32 inputs for evaluation `evaluation`, one per model input, deterministic in (name, seed)."""
        rng = np.random.default_rng([seed, evaluation, *self.name.encode()])
        arrays = []
        for shape in self.evaluations[evaluation]:
            if self.input_kind == "image":
                array = rng.uniform(0.0, 255.0, shape)
            elif self.input_kind == "smooth":
                array = smooth_field(rng, shape)
            elif self.input_kind == "smooth_image":
                array = np.clip(127.5 + 50.0 * smooth_field(rng, shape), 0.0, 255.0)
            else:
                assert self.input_kind == "normal", self.input_kind
                array = rng.standard_normal(shape)
            arrays.append(array.astype(np.float32))
        return arrays

    def model(self) -> keras.Model:
        """A fresh model: built under keras.utils.set_random_seed(seed), then randomize(seed), then (signal)
        preserve_signal on inputs of the first evaluation's shapes (their own seed, not the tests')."""
        keras.utils.set_random_seed(self.seed)
        model = self.build()
        randomize(model, self.seed)
        if self.signal:
            preserve_signal(model, self.random_inputs(0, seed=SIGNAL_SEED))
        return model


def smooth_field(rng: np.random.Generator, shape, cells: int = 2) -> np.ndarray:
    """An image-like input (N, H, W, C): 2 x a bilinear interpolation of N(0, 1) values on a (cells + 1)^2 grid
    spanning the image, plus 0.5 x N(0, 1) per pixel. Measured on the full profile (include_top, logits): two
    i.i.d. N(0, 1) inputs give outputs differing by only 0.5-1.3% relative for InceptionV3, ResNet50 and
    DenseNet121 (global pooling averages the noise away), two of these by 5-35% for every model."""
    n, h, w, c = shape
    coarse = rng.standard_normal((n, cells + 1, cells + 1, c))
    ys, xs = np.linspace(0.0, cells, h), np.linspace(0.0, cells, w)
    y0, x0 = np.minimum(ys.astype(int), cells - 1), np.minimum(xs.astype(int), cells - 1)
    fy, fx = (ys - y0)[None, :, None, None], (xs - x0)[None, None, :, None]
    corner = lambda dy, dx: coarse[:, y0 + dy][:, :, x0 + dx]  # noqa: E731
    field = (corner(0, 0) * (1 - fy) * (1 - fx) + corner(1, 0) * fy * (1 - fx)
             + corner(0, 1) * (1 - fy) * fx + corner(1, 1) * fy * fx)
    return 2.0 * field + 0.5 * rng.standard_normal(shape)


SIGNAL_SEED = 12345  # inputs preserve_signal calibrates on; the tests draw theirs with other seeds


# ---- weights away from their defaults -------------------------------------------------------------------------


def walk_layers(model: keras.Model):
    """Every layer of the model, nested models' layers included (the nested models themselves too), in order."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from walk_layers(layer)


def randomize(model: keras.Model, seed: int = 0) -> keras.Model:
    """Draws every normalization statistic, affine parameter, layer scale and bias away from its default:

    - BatchNormalization: moving_mean ~ N(0, 0.1), moving_variance ~ U(0.5, 1.5), gamma ~ U(0.5, 1.5) with 15%
      negated, beta ~ U(-0.5, 0.5);
    - LayerNormalization: gamma ~ U(0.5, 1.5), beta ~ U(-0.5, 0.5);
    - Normalization with weights (adapt-style, e.g. EfficientNet's) that was not adapted: per-channel mean ~
      U(0.3, 0.6), variance ~ U(0.04, 0.09) (the scale of [0, 1] images, as EfficientNet's Rescaling(1/255)
      feeds it), then finalize_state(): Keras computes with constants taken from the variables when the layer is
      built, so assigning the variables alone changes get_weights() but not what the layer computes (measured,
      Keras 3.15). An adapted layer (count > 0) keeps the statistics adapt() gave it;
    - ConvNeXt's LayerScale: gamma ~ U(0.5, 1.5) (its init 1e-6 would make every residual branch invisible);
    - PReLU: alpha ~ U(0.05, 0.5);
    - every bias of a convolution or Dense layer ~ U(-0.2, 0.2) (Keras initialises them to zero).
    Kernels keep Keras's initialisation (see preserve_signal). Returns the model."""
    rng = np.random.default_rng(seed)
    for layer in walk_layers(model):
        kind = type(layer).__name__
        if kind == "Normalization" and any(v.name == "count" and int(v.numpy()) > 0 for v in layer.weights):
            continue  # adapted
        changed = False
        for variable in layer.weights:
            name = variable.name
            shape = tuple(variable.shape)
            value = None
            if kind == "BatchNormalization":
                value = {
                    "moving_mean": lambda: rng.normal(0.0, 0.1, shape),
                    "moving_variance": lambda: rng.uniform(0.5, 1.5, shape),
                    "gamma": lambda: rng.uniform(0.5, 1.5, shape) * np.where(rng.random(shape) < 0.15, -1.0, 1.0),
                    "beta": lambda: rng.uniform(-0.5, 0.5, shape),
                }[name]()
            elif kind == "LayerNormalization":
                value = rng.uniform(0.5, 1.5, shape) if name == "gamma" else rng.uniform(-0.5, 0.5, shape)
            elif kind == "Normalization":
                if name == "mean":
                    value = rng.uniform(0.3, 0.6, shape)
                elif name == "variance":
                    value = rng.uniform(0.04, 0.09, shape)
            elif kind == "LayerScale":
                value = rng.uniform(0.5, 1.5, shape)
            elif kind == "PReLU":
                value = rng.uniform(0.05, 0.5, shape)
            elif name == "bias":
                value = rng.uniform(-0.2, 0.2, shape)
            if value is not None:
                variable.assign(np.asarray(value, dtype=variable.dtype))
                changed = True
        if changed and kind == "Normalization":
            layer.finalize_state()
    return model


# Layers computing activation(linear(x) + bias), and the kernel preserve_signal rescales.
_KERNELS = {
    "Conv1D": "kernel", "Conv2D": "kernel", "Conv3D": "kernel",
    "Conv1DTranspose": "kernel", "Conv2DTranspose": "kernel", "Conv3DTranspose": "kernel",
    "DepthwiseConv1D": "kernel", "DepthwiseConv2D": "kernel",
    "SeparableConv1D": "pointwise_kernel", "SeparableConv2D": "pointwise_kernel",
    "Dense": "kernel",
}


def preserve_signal(model: keras.Model, inputs: list[np.ndarray]) -> keras.Model:
    """Rescales each convolution's and Dense layer's kernel, in the order the forward pass meets them, so that its
    output before the bias has unit standard deviation on `inputs`, with the rescaled output passed on to the next
    layer: one eager inference pass with each layer's call wrapped for the duration (as
    tests/python/zoo.preserve_signal does with forward hooks). One positive scalar per layer: the kernels keep
    their random structure. Returns the model."""
    done: set[int] = set()
    wrapped = []

    def wrap(layer, kernel_name):
        original_call = layer.call

        def call(*args, **kwargs):
            if id(layer) in done:
                return original_call(*args, **kwargs)
            done.add(id(layer))
            activation = layer.activation
            object.__setattr__(layer, "activation", None)  # the linear part alone
            try:
                out = original_call(*args, **kwargs)
            finally:
                object.__setattr__(layer, "activation", activation)
            bias = layer.bias if layer.bias is not None else 0.0
            centered = out - bias
            scale = float(keras.ops.std(centered))
            if scale > 0:
                kernel = getattr(layer, kernel_name)
                kernel.assign(kernel / scale)
                centered = centered / scale
            out = centered + bias
            return activation(out) if activation is not None else out

        object.__setattr__(layer, "call", call)
        wrapped.append(layer)

    for layer in walk_layers(model):
        kernel_name = _KERNELS.get(type(layer).__name__)
        if kernel_name is not None:
            wrap(layer, kernel_name)
    try:
        model(inputs if len(inputs) > 1 else inputs[0], training=False)
    finally:
        for layer in wrapped:
            object.__delattr__(layer, "call")
    return model


# ---- keras.applications ---------------------------------------------------------------------------------------

# name -> (constructor name, kwargs of the CI build (include_top=False), CI sizes (odd, even), full sizes, input kind).
# The full builds return logits (classifier_activation=None): Softmax is covered by the small models.
_APPLICATIONS = {
    # pooling varies across the CI builds so that rank-2 (pooled) and rank-4 outputs both occur.
    "resnet50": ("ResNet50", {"pooling": None}, (65, 64), (224, 225), "smooth"),
    "mobilenet_v2": ("MobileNetV2", {"pooling": "avg"}, (65, 64), (224, 225), "smooth"),
    "efficientnet_b0": ("EfficientNetB0", {"pooling": None}, (65, 64), (224, 225), "smooth_image"),
    "densenet121": ("DenseNet121", {"pooling": "max"}, (65, 64), (224, 225), "smooth"),
    "vgg16": ("VGG16", {"pooling": None}, (65, 64), (224, 225), "smooth"),
    # InceptionV3 needs at least 75x75. 75 ends at 1x1 after mixed8; 96 keeps 4x4 (even) after mixed3.
    "inception_v3": ("InceptionV3", {"pooling": "avg"}, (75, 96), (299, 300), "smooth"),
    "convnext_tiny": ("ConvNeXtTiny", {"pooling": None}, (65, 64), (224, 225), "smooth_image"),
}

def _application_case(name: str, label: str, constructor: str, kwargs: dict, sizes, kind: str,
                      example: int | None) -> KerasCase:
    """Batch 2 at the first size, 1 at the second."""
    evaluations = tuple(((2 if i == 0 else 1, s, s, 3),) for i, s in enumerate(sizes))
    return KerasCase(f"{name}-{label}", lambda: getattr(keras.applications, constructor)(weights=None, **kwargs),
                     evaluations, example_shape=None if example is None else (1, example, example, 3),
                     input_kind=kind, signal=True)


def application_cases(profile: str = PROFILE) -> dict[str, KerasCase]:
    """The keras.applications cases of a profile, by case name ("resnet50-dynamic", "vgg16-224", ...)."""
    cases = {}
    for name, (constructor, ci_kwargs, ci_sizes, full_sizes, kind) in _APPLICATIONS.items():
        if profile == "ci":
            # One model with None sizes, evaluated at both sizes. The converter verifies at example_shape (default
            # 64 per None size): InceptionV3 cannot run at 64, so it gets its first size.
            example = ci_sizes[0] if name == "inception_v3" else None
            case = _application_case(name, "dynamic", constructor,
                                     {"include_top": False, "input_shape": (None, None, 3), **ci_kwargs},
                                     ci_sizes, kind, example)
            cases[case.name] = case
            if name == "mobilenet_v2":
                # correct_pad pads (1, 1) for a known odd size but (0, 1) ("assumes even") for an unknown one.
                size = ci_sizes[0]
                case = _application_case(name, f"fixed{size}", constructor,
                                         {"include_top": False, "input_shape": (size, size, 3), **ci_kwargs},
                                         (size,), kind, None)
                cases[case.name] = case
        else:
            for size in full_sizes:
                case = _application_case(name, str(size), constructor,
                                         {"include_top": True, "input_shape": (size, size, 3),
                                          "classifier_activation": None},
                                         (size,), kind, None)
                cases[case.name] = case
    return cases


CI_APPLICATIONS: dict[str, KerasCase] = application_cases("ci")
FULL_APPLICATIONS: dict[str, KerasCase] = application_cases("full")
APPLICATIONS: dict[str, KerasCase] = CI_APPLICATIONS if PROFILE == "ci" else FULL_APPLICATIONS

from .small import SMALL  # noqa: E402,F401  (after KerasCase, which small.py uses)
