"""Registers convbridge's Keras layers (convbridge.keras_layers) with Keras' serialization as soon as keras is
imported, so that keras.models.load_model finds them in a new process after `import convbridge`, while importing
convbridge still imports neither keras nor TensorFlow.

Keras resolves a saved layer's "registered_name" ("convbridge>TorchReflectPad") only through its registry of custom
objects; it imports the module a config names only for keras' own packages (keras/src/saving/serialization_lib.py,
_retrieve_class_or_fn). So the registration must have happened before load_model runs: now if keras is already
imported, otherwise right after its import finishes, by a one-shot import hook.
"""

import importlib.abc
import importlib.util
import sys
import warnings


def _register():
    try:
        import convbridge.keras_layers  # noqa: F401  (its classes register themselves at import)
    except Exception as error:  # never break the user's `import keras` because of convbridge
        warnings.warn(f"convbridge could not register its Keras layers: {error}", RuntimeWarning, stacklevel=2)


class _RegisterAfterKerasImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: on the first import of keras, wraps the real loader so registration follows it."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        sys.meta_path.remove(self)  # one shot, and the look-up below must not find this finder again
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            _register()

        spec.loader.exec_module = exec_then_register  # this spec's own loader instance only
        return spec


def install():
    if "keras" in sys.modules:
        _register()
    elif not any(isinstance(finder, _RegisterAfterKerasImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterKerasImport())
