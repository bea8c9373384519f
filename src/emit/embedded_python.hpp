// Python sources embedded at build time from python/convbridge/ (the text below each file's
// "# convbridge-embed-begin" marker), so emitted code and the Python package share one implementation.
#pragma once

namespace convbridge::emit {

extern const char* const kTorchPaddingPython;  // python/convbridge/torch_padding.py: torch_edge_pad
extern const char* const kKerasLayersPython;   // python/convbridge/keras_layers.py, in `# convbridge-section:`s
extern const char* const kTorchModulesPython;  // python/convbridge/torch_modules.py: TFSamePad, CropEnd

}  // namespace convbridge::emit
