"""Framework facts the whole-model converter relies on, each checked against the real framework, and convbridge's
answer to each."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

import convbridge  # noqa: E402


def _resize_then_batchnorm(training_at_resize=None):
    x = keras.Input((4, 4, 3))
    kwargs = {} if training_at_resize is None else {"training": training_at_resize}
    y = keras.layers.Resizing(8, 8, interpolation="bilinear")(x, **kwargs)
    return keras.Model(x, keras.layers.BatchNormalization()(y))


def test_keras_resizing_puts_the_layers_after_it_in_training_mode():
    """Keras 3's image preprocessing layers declare call(data, training=True), and Layer.__call__ puts that default
    into the call context: model(x) then runs a later BatchNormalization on batch statistics and updates its
    moving mean (keras/src/layers/preprocessing/image_preprocessing/base_image_preprocessing_layer.py)."""
    model = _resize_then_batchnorm()
    x = np.random.default_rng(0).random((1, 4, 4, 3), dtype=np.float32)
    model(x)
    assert np.any(np.asarray(model.layers[-1].moving_mean) != 0.0)
    # Passing training=False at the Resizing call keeps model(x) an inference call.
    guarded = _resize_then_batchnorm(training_at_resize=False)
    guarded(x)
    assert np.all(np.asarray(guarded.layers[-1].moving_mean) == 0.0)


class _UpsampleThenNorm(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.norm = torch.nn.BatchNorm2d(4)

    def forward(self, x):
        return self.norm(torch.nn.functional.interpolate(self.conv(x), size=(12, 12), mode="bilinear"))


def test_converted_model_calls_stay_inference_after_a_resize():
    model = _UpsampleThenNorm().eval()
    with torch.no_grad():
        model.norm.running_mean.uniform_(-1, 1)
        model.norm.running_var.uniform_(0.5, 2)
    conversion = convbridge.convert(model, (2, 3, 8, 8))
    assert "layers.Resizing(" in conversion.keras_source() and "training=False" in conversion.keras_source()
    keras_model = conversion.keras_model
    norm = keras_model.get_layer("norm")
    before = np.asarray(norm.moving_mean).copy()
    x = torch.randn(2, 3, 8, 8)
    y = np.asarray(keras_model(x.permute(0, 2, 3, 1).numpy()))
    np.testing.assert_array_equal(np.asarray(norm.moving_mean), before)
    with torch.no_grad():
        expected = model(x).permute(0, 2, 3, 1).numpy()
    assert np.max(np.abs(y - expected)) <= 1e-4 * np.max(np.abs(expected))
