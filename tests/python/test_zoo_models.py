"""The model zoo (tests/python/zoo) itself: every network builds in both profiles, the full-size ones have their
papers' published parameter counts (the proof that each follows its published architecture), the CI-size ones run
fast on their two CI inputs in eval mode with finite outputs of the right shape, and torch.export captures each
(the converter captures with torch.export)."""

from __future__ import annotations

import math
import time

import pytest
import torch

from zoo import ZOO, blocks, build, build_eval, count_parameters, mobile, randomize_batchnorm

NAMES = sorted(ZOO)

# Published parameter counts of the full-size (1000-class ImageNet) models: the papers' architectures as counted
# by their standard implementations.
PUBLISHED = {
    "resnet18": 11_689_512, "resnet50": 25_557_032, "mobilenet_v2": 3_504_872, "mobilenet_v3_small": 2_542_856,
    "efficientnet_b0": 5_288_548, "squeezenet1_0": 1_248_424, "densenet121": 7_978_856,
    "shufflenet_v2": 2_278_604, "vgg11_bn": 132_868_840, "alexnet": 61_100_840, "convnext_tiny": 28_589_128,
    "regnet_y": 4_344_144,  # RegNetY-400MF
    # GoogLeNet without auxiliary classifiers: 6.62M is the count of the torchvision variant, whose "5x5" branch
    # convs are 3x3; the zoo's default follows the paper (5x5), 16 * sum(reduce * out) = 380,928 weights more.
    "googlenet": 6_624_904,
}
GOOGLENET_PAPER_EXTRA = 16 * sum(r * o for r, o in [(16, 32), (32, 96), (16, 48), (24, 64), (24, 64), (32, 64),
                                                     (32, 128), (32, 128), (48, 128)])

CI_MAX_PARAMETERS = 500_000
CI_MAX_SECONDS = 1.0  # one forward; they take ~1-15 ms


def _count_on_meta(name: str, **extra) -> int:
    # Builds the full-size model without allocating or initialising its weights (VGG-11 alone has 133M).
    entry = ZOO[name]
    with torch.device("meta"):
        return count_parameters(entry.build(**entry.full, **extra))


def _inputs(name: str):
    g = torch.Generator().manual_seed(1234)
    return [torch.randn(shape, generator=g) for shape in ZOO[name].ci_inputs]


# ---- the registry --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_entry_is_well_formed(name):
    entry = ZOO[name]
    assert entry.name == name
    for profile in ("ci", "full"):
        assert set(entry.kwargs(profile)) >= {"width", "num_classes"}
        shapes = entry.inputs(profile)
        assert len(shapes) == 2 and len(shapes[0]) == len(shapes[1]) >= 3
        assert any(s % 2 == 1 for s in shapes[1][2:]), f"{profile} second input {shapes[1]} has no odd spatial size"
    assert entry.full["width"] == 1.0
    assert entry.moves_channels == (name == "shufflenet_v2")


def test_registry_has_at_least_the_seventeen_models():
    assert len(ZOO) >= 17
    assert {"resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "squeezenet1_0",
            "googlenet", "densenet121", "shufflenet_v2", "regnet_y", "vgg11_bn", "alexnet", "convnext_tiny", "unet",
            "seg_head", "audio_cnn_1d", "video_cnn_3d"} <= set(ZOO)


# ---- full profile: builds, published parameter counts ------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_full_profile_builds_with_published_parameter_count(name):
    n = _count_on_meta(name)
    assert n > 0
    if name == "googlenet":
        assert n == PUBLISHED[name] + GOOGLENET_PAPER_EXTRA
        n = _count_on_meta(name, kernel5=3)
    if name in PUBLISHED:
        assert abs(n - PUBLISHED[name]) <= 0.01 * PUBLISHED[name], f"{name}: {n:,} vs published {PUBLISHED[name]:,}"


def test_full_resnet18_forward_at_224():
    model = build_eval("resnet18", "full")
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, 1000) and torch.isfinite(y).all()


# ---- CI profile: small, fast, right shapes, exportable --------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_ci_profile_forward(name):
    entry = ZOO[name]
    model = build_eval(name, "ci")
    assert not model.training
    assert count_parameters(model) <= CI_MAX_PARAMETERS
    with torch.no_grad():
        for x in _inputs(name):
            start = time.perf_counter()
            y = model(x)
            seconds = time.perf_counter() - start
            assert tuple(y.shape) == entry.output_shape(tuple(x.shape), "ci")
            assert torch.isfinite(y).all()
            assert seconds < CI_MAX_SECONDS, f"{name} {tuple(x.shape)}: {seconds:.3f} s"
            # preserve_signal keeps activations O(1): the output is neither vanishing nor exploding
            assert 1e-2 < y.std() < 1e2


@pytest.mark.parametrize("name", NAMES)
def test_ci_profile_exports(name):
    model = build_eval(name, "ci")
    for x in _inputs(name):
        exported = torch.export.export(model, (x,))
        with torch.no_grad():
            torch.testing.assert_close(exported.module()(x), model(x), rtol=1e-5, atol=1e-5)


# ---- helpers: BatchNorm randomisation, build_eval determinism, the blocks' conventions ------------------------


def test_randomize_batchnorm_sets_non_trivial_statistics():
    model = randomize_batchnorm(build("resnet18"), seed=3)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns
    for bn in bns:
        assert 0.5 <= bn.running_var.min() and bn.running_var.max() <= 2.0
        assert bn.running_mean.abs().max() <= 0.5 and bn.running_mean.abs().max() > 0
        assert (bn.weight.abs() >= 0.5).all() and not torch.equal(bn.bias, torch.zeros_like(bn.bias))


def test_build_eval_is_deterministic_in_the_seed_and_keeps_the_callers_rng():
    x = _inputs("mobilenet_v3_small")[0]
    before = torch.random.get_rng_state()
    with torch.no_grad():
        a, b, c = (build_eval("mobilenet_v3_small", seed=s)(x) for s in (0, 0, 1))
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_stochastic_depth_is_identity_in_eval_and_drops_in_training():
    sd = blocks.StochasticDepth(0.5)
    x = torch.ones(64, 3, 2, 2)
    assert sd.eval()(x) is x
    y = sd.train()(x)
    kept = y.flatten(1).amax(1)
    assert set(kept.tolist()) <= {0.0, 2.0} and 0 < kept.count_nonzero() < 64


def test_channel_shuffle_moves_data_across_channels():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert mobile.channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]


def test_width_multiplier_keeps_grouped_convs_divisible():
    for name in NAMES:
        for width in (0.25, 0.3, 0.5, 0.75):
            entry = ZOO[name]
            with torch.device("meta"):
                model = entry.build(width=width, num_classes=7)
            for m in model.modules():
                if isinstance(m, torch.nn.modules.conv._ConvNd):
                    assert m.in_channels % m.groups == 0 and m.out_channels % m.groups == 0, (name, width, m)
    assert math.isclose(blocks.make_divisible(32 * 0.25, 8), 8)
