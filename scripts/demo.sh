#!/usr/bin/env bash
# The main job: set up, build, and translate the three layers of the classic "PyTorch Conv2D to TensorFlow"
# answer (shared/seed), printing for each the explanation, the Keras code and the reference-engine verification.
# Needs no PyTorch or TensorFlow.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
bin=build/convbridge

section() { printf '\n==== %s ====\n\n' "$1"; }

section "Example 1: 'same' padding, stride 1 (the article warns shapes 'might not' match; they do, exactly)"
"$bin" translate "nn.Conv2d(3, 16, kernel_size=3, stride=1, padding='same', dilation=1)"

section "Example 2: stride 2, padding 1 on a 32x32 input (the article pads NCHW axes of a 5-D tensor)"
"$bin" translate "nn.Conv2d(3, 16, kernel_size=3, stride=2, padding=1, dilation=1)" --input-shape 1,3,32,32

section "Example 3: dilation 2, padding 2 (the article feeds OIHW weights to tf.nn.conv2d, which wants HWIO)"
"$bin" translate "nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=2, dilation=2, groups=1)"
printf '\ntf.nn code (HWIO kernel):\n\n'
"$bin" translate "nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=2, dilation=2, groups=1)" --emit tf

section "The article's TensorFlow side, back to PyTorch: Keras 'same' at stride 2 depends on the input size"
"$bin" translate "tf.keras.layers.Conv2D(16, (3, 3), strides=2, padding='same')" --input-shape None,None,None,3

section "One layer later, the same kind of trap: ceil_mode max pooling (SqueezeNet, GoogLeNet) has no Keras argument"
"$bin" translate "nn.MaxPool2d(3, 2, 1, ceil_mode=True)" --input-shape 1,64,55,55

section "BatchNorm: Keras' eps and momentum conventions differ from PyTorch's (momentum 0.99 is PyTorch's 0.01)"
"$bin" translate "keras.layers.BatchNormalization()"
