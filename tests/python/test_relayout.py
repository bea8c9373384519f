"""Weight re-layout through the bindings: bit for bit equal to numpy's transpose for every layout pair, in float32
and float64, reading the caller's array in place and returning an array that owns its buffer (never a view of the
input, never a float64 round trip for float32). Speed is bench/relayout_vs_numpy.py's business, not a test's."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import convbridge


def _bits(array):
    array = np.ascontiguousarray(array)
    return array.view(np.uint32 if array.dtype == np.float32 else np.uint64)


def _random_bits(shape, dtype, seed):
    """Every bit pattern, NaN payloads (signalling ones too) and denormals included."""
    unsigned = np.uint32 if dtype == np.float32 else np.uint64
    rng = np.random.default_rng(seed)
    return rng.integers(0, np.iinfo(unsigned).max, size=shape, dtype=unsigned, endpoint=True).view(dtype)


def _assert_owned_result(result, *sources):
    """A fresh array: it owns (through its capsule) a buffer no source shares."""
    assert result.flags.c_contiguous and result.flags.writeable
    for source in sources:
        assert not np.shares_memory(result, source)


# (PyTorch layer, numpy.transpose axes of its weight, the view the transpose reads)
LAYERS = [
    (lambda: torch.nn.Conv1d(6, 10, 5), (2, 1, 0), None),
    (lambda: torch.nn.Conv2d(12, 20, (3, 2), groups=4), (2, 3, 1, 0), None),
    (lambda: torch.nn.Conv3d(4, 8, (3, 1, 2)), (2, 3, 4, 1, 0), None),
    (lambda: torch.nn.Conv2d(8, 24, 3, groups=8), (2, 3, 0, 1), (8, 3, 3, 3)),  # depthwise: (kh, kw, C, M)
    (lambda: torch.nn.ConvTranspose2d(6, 10, 3), (2, 3, 1, 0), None),  # IOHW -> HWOI
    (lambda: torch.nn.ConvTranspose3d(4, 6, 2), (2, 3, 4, 1, 0), None),
    (lambda: torch.nn.Conv2d(96, 160, 3), (2, 3, 1, 0), None),  # over the 4x4 tiles and panel sizes
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("index", range(len(LAYERS)))
def test_convert_kernel_is_numpy_transpose_bit_for_bit(dtype, index):
    make, axes, view = LAYERS[index]
    module = make()
    plan = convbridge.translate(module)
    weight = _random_bits(tuple(module.weight.shape), dtype, index)
    expected = np.transpose(weight.reshape(view) if view else weight, axes)
    for given in (weight, torch.from_numpy(weight)):  # numpy, and a torch tensor through DLPack
        kernel = plan.convert_kernel(given)
        assert kernel.dtype == dtype and kernel.shape == expected.shape
        assert np.array_equal(_bits(kernel), _bits(expected))
        _assert_owned_result(kernel, weight)


def test_convert_weights_result_outlives_the_module():
    module = torch.nn.Conv2d(16, 32, 3)
    kernel = convbridge.convert_weights(module)["kernel"]
    expected = module.weight.detach().permute(2, 3, 1, 0).numpy().copy()
    _assert_owned_result(kernel, module.weight.detach().numpy())
    del module
    kernel += 0  # writeable, and its own memory: the module is gone
    assert np.array_equal(kernel, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_weight_is_numpy_transpose_bit_for_bit(dtype):
    plan = convbridge.translate("keras.layers.Conv2D(12, (3, 2))", input_shape=(None, None, None, 5))
    kernel = _random_bits((3, 2, 5, 12), dtype, 7)
    weight = plan.torch_weight(0, kernel)  # HWIO -> OIHW
    assert weight.dtype == dtype
    assert np.array_equal(_bits(weight), _bits(np.transpose(kernel, (3, 2, 0, 1))))
    _assert_owned_result(weight, kernel)


def test_a_non_contiguous_array_is_read_as_numpy_reads_it():
    module = torch.nn.Conv2d(4, 6, 3)
    plan = convbridge.translate(module)
    base = _random_bits((3, 3, 4, 6), np.float32, 3)
    weight = np.transpose(base, (3, 2, 0, 1))  # OIHW values in a strided view
    assert np.array_equal(_bits(plan.convert_kernel(weight)), _bits(base))


def test_layer_plan_target_weights_keep_float32_bits():
    # BatchNorm's four vectors go through the float32 path whole: a float64 round trip would quiet signalling NaNs.
    plan = convbridge.translate(torch.nn.BatchNorm2d(6))
    sources = [_random_bits((6,), np.float32, 11 + i) for i in range(len(plan.source_weight_names))]
    targets = [array for step in plan.target_weights(sources) for array in step]
    assert [array.dtype for array in targets] == [np.float32] * len(sources)
    assert [_bits(array).tobytes() for array in targets] == [_bits(source).tobytes() for source in sources]
    for array in targets:
        _assert_owned_result(array, *sources)


def test_wrong_shapes_are_value_errors():
    plan = convbridge.translate(torch.nn.Conv2d(4, 6, 3))
    with pytest.raises(ValueError, match=r"weight has shape \(6, 4, 3\); expected \(6, 4, 3, 3\)"):
        plan.convert_kernel(np.zeros((6, 4, 3), np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_result_over_32_mib_lives_in_its_own_huge_page_buffer_bit_for_bit(dtype):
    """From 32 MiB on the result comes from aligned_alloc with huge pages advised (python/src/bindings.cpp,
    allocate_output): same bits, and numpy owns and frees it like any other result."""
    module = torch.nn.Conv2d(1024, 1024, 3)  # 37.7 MB in float32
    plan = convbridge.translate(module)
    weight = _random_bits(tuple(module.weight.shape), dtype, 7)
    assert weight.nbytes >= 32 << 20
    for _ in range(3):  # allocated and freed repeatedly
        kernel = plan.convert_kernel(weight)
        assert np.array_equal(_bits(kernel), _bits(np.transpose(weight, (2, 3, 1, 0))))
        _assert_owned_result(kernel, weight)
        kernel[...] = 0  # writeable to its last element
    del kernel
