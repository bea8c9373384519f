"""Keras model adapter: a Keras 3 Functional or Sequential model as data for the C++ front-end
(convbridge._impl.plan_keras_model, src/frontends/keras/model_config.cpp): the model's own serialized config (what
a .keras file's config.json holds), every layer's weight names and shapes, and the shapes of its outputs; plus the
weights' values for the state_dict. Nothing here interprets layers: what the config names is read in C++ as data.
"""

import numpy as np


class CaptureError(ValueError):
    pass


def _is_graph_model(keras, model):
    """A Functional or Sequential model (they have a graph to read); a subclassed keras.Model has none."""
    from keras.src.models.functional import Functional

    return isinstance(model, (Functional, keras.Sequential))


def _walk(keras, model, prefix, shapes, values):
    for layer in model.layers:
        path = prefix + layer.name
        if isinstance(layer, keras.Model):
            if not _is_graph_model(keras, layer):
                raise CaptureError(f"layer '{path}' is a subclassed model ({type(layer).__name__}): its forward is "
                                   f"Python code with no graph to read; convbridge converts Functional and "
                                   f"Sequential models")
            _walk(keras, layer, path + "/", shapes, values)
            continue
        entries = []
        for variable in layer.weights:
            name = variable.name.split("/")[-1]
            entries.append([name, [int(s) for s in variable.shape]])
            values[f"{path}/{name}"] = np.asarray(variable.numpy())
        if entries:
            shapes[path] = entries


def capture(model):
    """({"format": "convbridge.keras_model/1", "model": config, "weights": {layer path: [[name, shape]]},
    "output_shapes": [...]}, {"<layer path>/<weight name>": array})."""
    import keras

    if not isinstance(model, keras.Model):
        raise CaptureError(f"{type(model).__name__} is not a keras.Model")
    if not _is_graph_model(keras, model):
        raise CaptureError(f"model '{model.name}' is a subclassed keras.Model ({type(model).__name__}): its call() "
                           f"is Python code with no graph to read; convbridge converts Functional and Sequential "
                           f"models (build it with keras.Input and layer calls, or keras.Sequential)")
    if not model.built:
        raise CaptureError(f"model '{model.name}' is not built: call model.build(input_shape) or give it a "
                           f"keras.Input before converting it")
    shapes, values = {}, {}
    _walk(keras, model, "", shapes, values)
    description = {
        "format": "convbridge.keras_model/1",
        "model": keras.saving.serialize_keras_object(model),
        "weights": shapes,
        "output_shapes": [[None if s is None else int(s) for s in output.shape] for output in model.outputs],
    }
    return description, values
