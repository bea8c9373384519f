"""Differential tests of the normalization family against the real PyTorch and Keras/TensorFlow.

Both directions, generated configurations (seeded per case: random.Random(seed + index), so a failure reproduces
from its message), input sizes known and unknown, batch sizes 1-3, odd, even and minimal spatial sizes:
- PyTorch module (random weights and running statistics, variance positive) -> convbridge.to_keras and the emitted
  keras_code()/tf_code(), compared with the module in float64 (m.double()) moved to channels_last;
- Keras layer (built, weights randomized) -> convbridge.to_torch and the emitted torch_code(), compared with the
  Keras layer (float32) and a float64 reference computed here with numpy;
- configurations the frameworks reject are rejected by convbridge too; one named test per fact of
  docs/layers/normalization.md asserts the real frameworks' behaviour.

CONVBRIDGE_OPS_CASES (default 1) multiplies the generated case counts.

Tolerance: every output here is (x - mean) / sqrt(var + eps) * gamma + beta with x ~ N(0, 1) (or the running mean
+ N(0, 1) spread), |gamma| <= 1.5, |beta| <= 1, running variances in [0.5, 2], and at least 2 elements per
statistic with eps >= 1e-5, so outputs are O(1) up to |x - mean| / sqrt(eps) in the worst case of a 2-element
set. float32 rounding of the statistics (sums of at most a few thousand terms) and of the affine step is ~1e-6
relative; ATOL = RTOL = 1e-4 leaves a wide margin, while a wrong axis, eps, group split or weight layout changes
outputs by O(0.1) or more (the fact tests below show such naive translations missing by more than 0.1).
"""

import inspect
import json
import os
import random

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
import torch
from torch import nn

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import convbridge  # noqa: E402

MULTIPLIER = max(1, int(os.environ.get("CONVBRIDGE_OPS_CASES", "1")))
ATOL = 1e-4
RTOL = 1e-4
torch.set_num_threads(1)


def to_channels_last(x):
    return np.moveaxis(np.asarray(x), 1, -1)


def to_channels_first(x):
    return np.moveaxis(np.asarray(x), -1, 1)


def randomize_torch(module, rng):
    """Random affine parameters and running statistics (variance positive), seeded."""
    g = torch.Generator().manual_seed(rng.randrange(2**31))
    with torch.no_grad():
        for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
            if name == "num_batches_tracked":
                continue
            if name == "running_var":
                tensor.copy_(torch.rand(tensor.shape, generator=g) * 1.5 + 0.5)
            elif name == "weight":
                tensor.copy_(torch.rand(tensor.shape, generator=g) * 2.0 - 0.5)
            else:
                tensor.copy_(torch.rand(tensor.shape, generator=g) * 2.0 - 1.0)
    return module.eval()


def randomize_keras(layer, rng):
    values = []
    for variable in layer.weights:
        name = variable.path.rsplit("/", 1)[-1]
        shape = tuple(variable.shape)
        if name == "moving_variance":
            values.append(np.asarray([rng.uniform(0.5, 2.0) for _ in range(int(np.prod(shape)))]).reshape(shape))
        elif name == "gamma":
            values.append(np.asarray([rng.uniform(-0.5, 1.5) for _ in range(int(np.prod(shape)))]).reshape(shape))
        else:
            values.append(np.asarray([rng.uniform(-1.0, 1.0) for _ in range(int(np.prod(shape)))]).reshape(shape))
    layer.set_weights([v.astype(np.float32) for v in values])
    return layer


def random_input(shape, rng):
    return np.random.default_rng(rng.randrange(2**31)).standard_normal(shape).astype(np.float32)


def assert_close(actual, expected, what):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL, err_msg=what)


# ---- PyTorch -> Keras ---------------------------------------------------------------------------------------------

def torch_case(rng):
    """(text, module constructor, input shape NCHW, input_shape given to convbridge or None)."""
    kind = rng.choice(["bn", "bn", "in", "gn", "ln"])
    rank = rng.choice([1, 2, 2, 3])
    batch = rng.choice([1, 2, 3])
    spatial = [rng.choice([1, 2, 3, 4, 5]) for _ in range(rank)]
    if rank == 3:
        spatial = [rng.choice([1, 2, 3]) for _ in range(rank)]
    eps = rng.choice([1e-5, 1e-3, 1.001e-5, 0.1])
    if kind == "bn":
        channels = rng.randint(1, 6)
        if rank == 1 and rng.random() < 0.3:
            spatial = []  # BatchNorm1d on (N, C)
        momentum = rng.choice([0.1, 0.01, 0.3])
        affine = rng.random() < 0.7
        track = rng.random() < 0.8
        if not track:
            batch = max(batch, 2)
        text = f"nn.BatchNorm{rank}d({channels}, eps={eps!r}, momentum={momentum!r}, affine={affine}, " \
               f"track_running_stats={track})"
    elif kind == "in":
        channels = rng.randint(1, 6)
        affine = rng.random() < 0.5
        track = rng.random() < 0.3
        spatial = [max(2, s) for s in spatial]
        text = f"nn.InstanceNorm{rank}d({channels}, eps={eps!r}, affine={affine}, track_running_stats={track})"
    elif kind == "gn":
        groups = rng.choice([1, 2, 3])
        channels = groups * rng.randint(1, 3)
        spatial = spatial or [2]
        text = f"nn.GroupNorm({groups}, {channels}, eps={eps!r}, affine={rng.random() < 0.7})"
    else:
        channels = rng.randint(1, 5)
        k = rng.randint(1, rank + 1)
        full = [channels] + spatial
        normalized = tuple(full[len(full) - k:])
        if all(v == 1 for v in normalized):
            normalized = tuple(full)  # at least 2 elements
            if all(v == 1 for v in normalized):
                spatial[-1] = 2
                full = [channels] + spatial
                normalized = tuple(full[len(full) - k:])
        affine = rng.random() < 0.7
        text = f"nn.LayerNorm({normalized!r}, eps={eps!r}, elementwise_affine={affine}, bias={rng.random() < 0.7})"
    shape = (batch, channels, *spatial)
    # Keras layers fix their input rank when built: without an input shape convbridge builds for the rank the
    # PyTorch class demands (BatchNorm3d: 5-D), and for 4-D input where the class takes any rank (GroupNorm),
    # so those get at least the rank; BatchNorm1d on (N, C) too (BatchNorm1d alone means (N, C, L)).
    unknown_sizes = (None, channels) + (None,) * len(spatial)
    choice = rng.random()
    if kind == "ln" or choice < 0.4:
        given = shape
    elif choice < 0.7 or (kind == "gn" and len(spatial) != 2) or (kind == "bn" and not spatial):
        given = unknown_sizes
    else:
        given = None
    return text, shape, given


def build_torch_module(text):
    return eval(text, {"nn": nn})  # the text is generated above from literals


TORCH_CASES = 420 * MULTIPLIER


@pytest.mark.parametrize("index", range(0, TORCH_CASES, 20))
def test_torch_to_keras(index):
    for i in range(index, min(index + 20, TORCH_CASES)):
        rng = random.Random(1000 + i)
        text, shape, given = torch_case(rng)
        module = randomize_torch(build_torch_module(text), rng)
        x = random_input(shape, rng)
        what = f"case {i}: {text} on {shape}, input_shape={given}"
        expected = to_channels_last(module.double()(torch.from_numpy(x).double()).detach().numpy())
        module.float()
        layer = convbridge.to_keras(module, input_shape=given)
        assert_close(layer(to_channels_last(x)), expected, what + " (to_keras)")
        if i % 4 == 0:  # the emitted code, for a quarter of the cases (it re-runs the same plan)
            plan = convbridge.translate(module, input_shape=given)
            weights = {name: getattr(module, name).detach().numpy() for name in plan.source_weight_names}
            namespace = {}
            exec(plan.keras_code(), namespace)
            made = namespace["make_layer"](**weights)
            assert_close(made(to_channels_last(x)), expected, what + " (keras_code)")
            if json.loads(plan.to_json())["steps"][0]["function"]:  # a tf function form (batch norm) exists
                namespace = {}
                exec(plan.tf_code(), namespace)
                assert_close(namespace["layer"](to_channels_last(x), **weights), expected, what + " (tf_code)")


# ---- Keras -> PyTorch ---------------------------------------------------------------------------------------------

def keras_case(rng):
    kind = rng.choice(["bn", "bn", "gn", "ln"])
    rank = rng.choice([0, 1, 2, 2, 3])
    batch = rng.choice([1, 2, 3])
    spatial = [rng.choice([1, 2, 3, 4, 5]) for _ in range(rank)]
    channels = rng.randint(1, 6)
    eps = rng.choice([1e-3, 1e-5, 1.001e-5, 0.01])
    center, scale = rng.random() < 0.7, rng.random() < 0.7
    if kind == "bn":
        axis = -1 if rng.random() < 0.8 or rank == 0 else rank + 1
        momentum = rng.choice([0.99, 0.9, 0.5])
        text = f"keras.layers.BatchNormalization(axis={axis}, momentum={momentum!r}, epsilon={eps!r}, " \
               f"center={center}, scale={scale})"
    elif kind == "gn":
        groups = rng.choice([1, 2, 3, -1])
        channels = (abs(groups) if groups > 0 else 1) * rng.randint(1, 3)
        if rank == 0:
            rank, spatial = 1, [rng.choice([2, 3, 4])]
        text = f"keras.layers.GroupNormalization(groups={groups}, epsilon={eps!r}, center={center}, scale={scale})"
    else:
        if channels == 1:
            channels = 2
        text = f"keras.layers.LayerNormalization(axis=-1, epsilon={eps!r}, center={center}, scale={scale})"
    shape_cl = (batch, *spatial, channels)
    given = rng.choice([shape_cl, (None, *([None] * rank), channels)])
    return text, shape_cl, given


KERAS_CASES = 300 * MULTIPLIER


@pytest.mark.parametrize("index", range(0, KERAS_CASES, 20))
def test_keras_to_torch(index):
    for i in range(index, min(index + 20, KERAS_CASES)):
        rng = random.Random(5000 + i)
        text, shape_cl, given = keras_case(rng)
        layer = eval(text, {"keras": keras})
        layer.build(shape_cl)
        randomize_keras(layer, rng)
        x = random_input(shape_cl, rng)
        what = f"case {i}: {text} on {shape_cl}, input_shape={given}"
        expected = np.asarray(layer(x))
        group_size = shape_cl[-1] // (shape_cl[-1] if "groups=-1" in text else int(text.split("groups=")[1].split(",")[0])) \
            if "GroupNormalization" in text else 2
        if group_size * int(np.prod(shape_cl[1:-1])) == 1:
            # nn.GroupNorm rejects one-value groups even in eval; Keras outputs beta there.
            if None not in given:
                with pytest.raises(ValueError, match="single value"):
                    convbridge.to_torch(layer, input_shape=given)
            continue
        module = convbridge.to_torch(layer, input_shape=given)
        with torch.no_grad():
            got = module(torch.from_numpy(to_channels_first(x).copy())).numpy()
        assert_close(to_channels_last(got), expected, what + " (to_torch)")
        if i % 4 == 0:
            plan = convbridge.translate(layer, input_shape=given)
            by_name = {v.path.rsplit("/", 1)[-1]: np.asarray(v) for v in layer.weights}
            namespace = {}
            exec(plan.torch_code(), namespace)
            if plan.source_weight_names:
                made = namespace["make_module"](**{n: by_name[n] for n in plan.source_weight_names})
            elif "channels" in inspect.signature(namespace["make_module"]).parameters:  # the text alone lacks C
                made = namespace["make_module"](shape_cl[-1])
            else:
                made = namespace["make_module"]()
            with torch.no_grad():
                got = made(torch.from_numpy(to_channels_first(x).copy())).numpy()
            assert_close(to_channels_last(got), expected, what + " (torch_code)")


# ---- rejected configurations --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, argument", [
    ("nn.GroupNorm(4, 6)", "num_groups"),
    ("nn.BatchNorm2d(0)", "num_features"),
    ("nn.LayerNorm((4, 0))", "normalized_shape"),
])
def test_torch_rejects_and_so_does_convbridge(text, argument):
    with pytest.raises(Exception):
        build_torch_module(text)(torch.zeros(2, 6, 4, 4))
    with pytest.raises(ValueError, match=argument):
        convbridge.translate(text)


def test_keras_rejects_groups_zero_and_so_does_convbridge():
    with pytest.raises(ValueError, match="groups"):
        keras.layers.GroupNormalization(groups=0)
    with pytest.raises(ValueError, match="groups"):
        convbridge.translate("keras.layers.GroupNormalization(groups=0)")


def test_keras_rejects_more_groups_than_channels_and_so_does_convbridge():
    with pytest.raises(ValueError, match="cannot be more than the number of channels"):
        keras.layers.GroupNormalization(groups=32).build((None, 4, 4, 16))
    with pytest.raises(ValueError, match="cannot be more than the number of channels"):
        convbridge.translate("keras.layers.GroupNormalization()", input_shape=(None, 4, 4, 16))


def test_layer_norm_without_input_shape_asks_for_it():
    with pytest.raises(ValueError, match="needs the input shape"):
        convbridge.to_keras(nn.LayerNorm((3, 4, 4)))


def test_momentum_none_is_refused_for_keras():
    with pytest.raises(ValueError, match="momentum=None"):
        convbridge.to_keras(nn.BatchNorm2d(3, momentum=None))


def test_rms_scaling_is_refused():
    with pytest.raises(ValueError, match="rms_scaling"):
        convbridge.translate("keras.layers.LayerNormalization(rms_scaling=True)")


# ---- facts (docs/layers/normalization.md) -------------------------------------------------------------------------

def test_fact_default_eps_torch_1e5_keras_1e3():
    assert nn.BatchNorm2d(3).eps == 1e-5 and nn.LayerNorm(3).eps == 1e-5 and nn.GroupNorm(1, 3).eps == 1e-5
    assert keras.layers.BatchNormalization().epsilon == 1e-3
    assert keras.layers.LayerNormalization().epsilon == 1e-3
    assert keras.layers.GroupNormalization().epsilon == 1e-3
    # convbridge copies eps in both directions.
    assert "epsilon=1e-05" in convbridge.translate("nn.BatchNorm2d(3)").keras_code()
    assert "eps=0.001" in convbridge.translate("keras.layers.BatchNormalization()").torch_code()


def test_fact_keras_applications_resnet_uses_eps_1_001e5():
    model = keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3), include_top=False)
    epsilons = {layer.epsilon for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)}
    assert epsilons == {1.001e-5}


def test_fact_naive_eps_is_not_exact():
    """Translating with each framework's default eps instead of copying it changes the output."""
    torch.manual_seed(0)
    module = randomize_torch(nn.BatchNorm2d(4), random.Random(1))
    module.running_var.fill_(1e-3)  # small variances: where eps matters
    x = np.random.default_rng(0).standard_normal((2, 4, 3, 3)).astype(np.float32)
    expected = to_channels_last(module(torch.from_numpy(x)).detach().numpy())
    naive = keras.layers.BatchNormalization()  # Keras' default epsilon 1e-3
    naive.build((None, 3, 3, 4))
    naive.set_weights([module.weight.detach().numpy(), module.bias.detach().numpy(),
                       module.running_mean.numpy(), module.running_var.numpy()])
    assert np.abs(np.asarray(naive(to_channels_last(x))) - expected).max() > 0.1
    assert_close(convbridge.to_keras(module)(to_channels_last(x)), expected, "copied eps")


def test_fact_momentum_conventions_one_step():
    """torch: new = (1 - m) * old + m * batch; Keras: new = k * old + (1 - k) * batch; k = 1 - m maps the means."""
    x = np.random.default_rng(3).standard_normal((4, 3, 5, 5)).astype(np.float32)
    torch_bn = nn.BatchNorm2d(3, momentum=0.1).train()
    torch_bn(torch.from_numpy(x))
    keras_bn = keras.layers.BatchNormalization(momentum=0.9)
    keras_bn(to_channels_last(x), training=True)
    batch_mean = x.mean(axis=(0, 2, 3))
    np.testing.assert_allclose(torch_bn.running_mean.numpy(), 0.1 * batch_mean, atol=1e-6)
    np.testing.assert_allclose(np.asarray(keras_bn.moving_mean), 0.1 * batch_mean, atol=1e-6)
    assert "momentum=0.9" in convbridge.translate("nn.BatchNorm2d(3, momentum=0.1)").keras_code()


def test_fact_training_variance_update_torch_unbiased_keras_biased():
    """Measured: PyTorch's running_var moves towards the unbiased batch variance, Keras' towards the biased one."""
    x = np.random.default_rng(4).standard_normal((2, 2, 2, 2)).astype(np.float32)  # n = 8 per channel
    n = 8
    torch_bn = nn.BatchNorm2d(2, momentum=1.0).train()
    torch_bn(torch.from_numpy(x))
    keras_bn = keras.layers.BatchNormalization(momentum=0.0)
    keras_bn(to_channels_last(x), training=True)
    biased = x.var(axis=(0, 2, 3))
    np.testing.assert_allclose(torch_bn.running_var.numpy(), biased * n / (n - 1), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(keras_bn.moving_variance), biased, rtol=1e-5)
    notes = " ".join(convbridge.translate("nn.BatchNorm2d(2)").explain().splitlines())
    assert "unbiased" in notes


def test_fact_track_running_stats_false_uses_batch_statistics_in_eval():
    module = nn.BatchNorm2d(3, track_running_stats=False, affine=False).eval()
    x = np.random.default_rng(5).standard_normal((3, 3, 4, 4)).astype(np.float32) * 3 + 2
    y = module(torch.from_numpy(x)).detach().numpy()
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = x.var(axis=(0, 2, 3), keepdims=True)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5), atol=1e-5)
    # a Keras BatchNormalization in inference uses its moving statistics instead: the naive translation is wrong
    naive = keras.layers.BatchNormalization(epsilon=1e-5, center=False, scale=False)
    assert np.abs(np.asarray(naive(to_channels_last(x))) - to_channels_last(y)).max() > 0.5
    assert_close(convbridge.to_keras(module)(to_channels_last(x)), to_channels_last(y), "batch statistics")


def test_fact_keras_batch_norm_weight_order():
    layer = keras.layers.BatchNormalization()
    layer.build((None, 4, 4, 3))
    assert [v.path.rsplit("/", 1)[-1] for v in layer.weights] == ["gamma", "beta", "moving_mean", "moving_variance"]
    centered = keras.layers.BatchNormalization(scale=False)
    centered.build((None, 4, 4, 3))
    assert [v.path.rsplit("/", 1)[-1] for v in centered.weights] == ["beta", "moving_mean", "moving_variance"]


def test_fact_layer_norm_trailing_dims_vs_keras_channel_axis():
    """nn.LayerNorm(C) on NCHW needs C last; normalized_shape (C, H, W) is Keras axis=[1, 2, 3] with gamma (H, W, C)."""
    x = np.random.default_rng(6).standard_normal((2, 3, 4, 5)).astype(np.float32)
    with pytest.raises(RuntimeError):
        nn.LayerNorm(3)(torch.from_numpy(x))  # trailing dim is W=5, not C
    module = randomize_torch(nn.LayerNorm((3, 4, 5)), random.Random(2))
    expected = to_channels_last(module.double()(torch.from_numpy(x).double()).detach().numpy())
    module.float()
    naive = keras.layers.LayerNormalization(axis=-1, epsilon=1e-5)  # channel LayerNorm: a different op
    assert np.abs(np.asarray(naive(to_channels_last(x))) - expected).max() > 0.1
    layer = convbridge.to_keras(module, input_shape=x.shape)
    assert_close(layer(to_channels_last(x)), expected, "LayerNorm((3, 4, 5))")
    keras_norm = [sub for sub in layer.layers if isinstance(sub, keras.layers.LayerNormalization)][0]
    assert keras_norm.axis == [1, 2, 3] and tuple(keras_norm.weights[0].shape) == (4, 5, 3)


def test_fact_keras_channel_layer_norm_is_convnext_permute():
    layer = keras.layers.LayerNormalization(epsilon=1e-6)
    x = np.random.default_rng(7).standard_normal((2, 4, 4, 6)).astype(np.float32)
    layer.build(x.shape)
    randomize_keras(layer, random.Random(3))
    expected = np.asarray(layer(x))
    gamma, beta = (np.asarray(v) for v in layer.weights)
    convnext = torch.nn.functional.layer_norm(torch.from_numpy(x), (6,), torch.from_numpy(gamma),
                                              torch.from_numpy(beta), 1e-6).numpy()
    assert_close(convnext, expected, "permute + F.layer_norm")
    module = convbridge.to_torch(layer)
    with torch.no_grad():
        got = module(torch.from_numpy(to_channels_first(x).copy())).numpy()
    assert_close(to_channels_last(got), expected, "ChannelsLayerNorm")
    torch.jit.script(module)


def test_fact_group_norm_contiguous_groups_equal_at_same_eps():
    x = np.random.default_rng(8).standard_normal((2, 3, 3, 8)).astype(np.float32)
    keras_gn = keras.layers.GroupNormalization(groups=4, epsilon=1e-5, center=False, scale=False)
    torch_gn = nn.GroupNorm(4, 8, eps=1e-5, affine=False)
    k = np.asarray(keras_gn(x))
    t = to_channels_last(torch_gn.double()(torch.from_numpy(to_channels_first(x).copy()).double()).numpy())
    assert np.abs(k - t).max() < 1e-5
    # strided (interleaved) groups would be a different op
    interleaved = to_channels_first(x).reshape(2, 2, 4, 3, 3).transpose(0, 2, 1, 3, 4).reshape(2, 8, 3, 3)
    t_interleaved = torch_gn(torch.from_numpy(interleaved.copy()).double()).numpy()
    t_interleaved = t_interleaved.reshape(2, 4, 2, 3, 3).transpose(0, 2, 1, 3, 4).reshape(2, 8, 3, 3)
    assert np.abs(to_channels_last(t_interleaved) - k).max() > 0.1


def test_fact_keras_center_only_batch_norm_needs_unit_torch_weight():
    layer = keras.layers.BatchNormalization(scale=False, epsilon=1e-3)
    x = np.random.default_rng(9).standard_normal((2, 3, 3, 4)).astype(np.float32)
    layer.build(x.shape)
    randomize_keras(layer, random.Random(4))
    module = convbridge.to_torch(layer)
    assert module.affine and torch.all(module.weight == 1)
    with torch.no_grad():
        got = module(torch.from_numpy(to_channels_first(x).copy())).numpy()
    assert_close(to_channels_last(got), np.asarray(layer(x)), "center only")
    assert "requires_grad_(False)" in convbridge.translate(layer).explain()


def test_issue_example_keras_batch_normalization_text():
    plan = convbridge.translate("keras.layers.BatchNormalization()")
    assert "nn.BatchNorm2d(channels, eps=0.001, momentum=0.01" in plan.torch_code()
    assert plan.exact_for_every_input_size
