"""Helpers shared by the whole-model tests (test_model_api, test_model_ops, test_models_zoo): layouts, the
difference measure the issue states (max |diff| / max |PyTorch|), and weights drawn away from their defaults."""

import numpy as np
import torch
from torch import nn


def channels_last(array: np.ndarray) -> np.ndarray:
    """(N, C, *spatial) -> (N, *spatial, C); ranks below 3 unchanged."""
    return np.ascontiguousarray(array.transpose([0, *range(2, array.ndim), 1])) if array.ndim >= 3 else array


def relative_difference(got, want) -> float:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"shapes: Keras {got.shape}, PyTorch {want.shape}"
    if want.size == 0:
        return 0.0
    return float(np.max(np.abs(got - want))) / max(float(np.max(np.abs(want))), 1e-30)


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter and float buffer drawn away from its default: biases in [-1, 1]; norm weights, PReLU slopes
    and layer scales in [0.25, 1.75]; BatchNorm running_mean ~ N(0, 0.25), running_var in [0.5, 2]."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.rand(p.shape, generator=g) * 2 - 1)
            elif p.ndim <= 1 or "scale" in name or name.endswith("gamma"):
                p.copy_(torch.rand(p.shape, generator=g) * 1.5 + 0.25)
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.5)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) * 1.5 + 0.5)
    return model
