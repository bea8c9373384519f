#!/usr/bin/env bash
# End-to-end CLI checks: exit status, stdout/stderr separation and error messages.
# Run by ctest with CONVBRIDGE pointing at the binary (also under the sanitizer build).
set -u
bin=${CONVBRIDGE:?set CONVBRIDGE to the convbridge binary}
passed=0
failed=0
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT

# Does file $1 match extended regex $2? The pattern EMPTY means the file must be empty.
matches() {
  if [[ $2 == EMPTY ]]; then [[ ! -s $1 ]]; else grep -qE -- "$2" "$1"; fi
}

# expect STATUS STDOUT_PATTERN STDERR_PATTERN -- ARGS...
expect() {
  local status=$1 out_pattern=$2 err_pattern=$3
  shift 4
  timeout 20 "$bin" "$@" >"$out" 2>"$err"
  local got=$?
  if [[ $got -eq $status ]] && matches "$out" "$out_pattern" && matches "$err" "$err_pattern"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: convbridge $* -> status $got (want $status)"
    echo "  stdout (want /$out_pattern/): $(head -c 400 "$out")"
    echo "  stderr (want /$err_pattern/): $(head -c 400 "$err")"
  fi
}
# An invalid input prints one error naming the fault on stderr, nothing on stdout, and exits 2.
expect_error() {
  local err_pattern=$1
  shift
  expect 2 EMPTY "^convbridge: error: .*$err_pattern" -- "$@"
}

expect 0 'Verification \(reference engine, float64, seed 0\): PASS' EMPTY -- \
  translate "nn.Conv2d(3, 16, kernel_size=3, stride=2, padding=1)"
expect 0 'TF .same. pads \(0, 1\)' EMPTY -- translate "nn.Conv2d(3, 16, 3, stride=2, padding=1)" --input-shape 1,3,224,224
expect 0 '^def make_layer\(weight, bias=None\):' EMPTY -- translate "nn.Conv1d(4, 4, 3, padding_mode='circular', padding=1)" --emit keras
expect 0 '^def conv\(x, weight, bias=None\):' EMPTY -- translate "torch.nn.Conv3d(4, 8, 3, groups=2)" --emit tf
expect 0 '"exact_for": "input_shape"' EMPTY -- translate "Conv2d(3, 16, 3, stride=2, padding=1)" --input-shape "(1, 3, 225, 225)" --emit json
expect 0 'Verification: skipped' EMPTY -- translate "nn.Conv2d(3, 16, 3)" --no-verify
expect 0 'skipped: the smallest check needs' EMPTY -- translate "nn.Conv2d(512, 512, 3)" --input-shape 64,512,512,512
expect 0 "Verification .*skipped: the smallest check needs more than 2\\^63" EMPTY -- translate "nn.Conv3d(1, 1, (2147483647, 2147483647, 2147483647), dilation=2147483647)"
expect 0 'Conv2DTranspose.*explicit H crop \(1, 0\)' EMPTY -- translate "nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)"
expect 0 'keras.layers.Cropping2D' EMPTY -- translate "nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)" --emit keras
expect 0 'tf.nn.conv1d_transpose' EMPTY -- translate "nn.ConvTranspose1d(4, 4, 3, stride=2, groups=2, dilation=2)" --emit tf
expect 0 'TFSamePad\(\(3, 3\), \(2, 2\)\)' EMPTY -- translate "keras.layers.Conv2D(16, 3, strides=2, padding='same')" --input-shape None,None,None,3 --emit torch
expect 0 'Verification .*: PASS' EMPTY -- translate "layers.SeparableConv2D(8, 3, padding='same')" --input-shape 1,9,9,4
expect 0 '^        ExpectInputSize\(\(224, 224\)\),$' EMPTY -- translate "keras.layers.Conv2D(16, 3, strides=2, padding='same')" --input-shape 1,224,224,3 --emit torch
expect 0 '"direction": "keras_to_pytorch"' EMPTY -- translate "Conv1DTranspose(2, 3, strides=2, padding='same')" --input-shape None,None,3 --emit json
# Work the output size hides (a huge transposed scatter, a stride-1 conv before a subsample) counts against the
# reference engine's budget: each check is skipped at once instead of running for hours. A huge zero padding is no
# such work: the GEMM engine reads it as zeros without materialising it, so that layer is verified in milliseconds.
expect 0 'Verification .*: PASS' EMPTY -- translate "nn.Conv1d(1, 1, 1, stride=2147483648, padding=1073741824)"
expect 0 'skipped: the smallest check needs' EMPTY -- translate "nn.ConvTranspose1d(1, 1, 20000000, padding=19999999)" --input-shape 1,1,20000000
expect 0 'skipped: the smallest check needs' EMPTY -- translate "nn.Conv2d(1, 1, (1, 10000000), stride=(1, 10000000))" --input-shape 1,1,1,30000000
expect 0 'Examples:' EMPTY -- --help
expect 0 'Examples:' EMPTY -- translate --help
expect 0 '^0\.1\.0' EMPTY -- --version

expect_error "padding='same' needs stride=1" translate "nn.Conv2d(3, 16, 3, stride=2, padding='same')"
expect_error "no 'full' padding" translate "nn.Conv2d(3, 16, 3, padding='full')"
expect_error "in_channels=3 must be divisible by groups=2" translate "nn.Conv2d(3, 16, 3, groups=2)"
expect_error "did you mean 'stride'" translate "nn.Conv2d(3, 16, 3, strides=2)"
expect_error "expected ',' or '\)'" translate "nn.Conv2d(3, 16, 3"
expect_error "empty" translate ""
expect_error "Kernel size can't be greater" translate "nn.Conv2d(3, 16, 5)" --input-shape 1,3,4,4
expect_error "has 4 channels; the layer expects in_channels=3" translate "nn.Conv2d(3, 16, 3)" --input-shape 1,4,8,8
expect_error "--input-shape '1,3,x'" translate "nn.Conv2d(3, 16, 3)" --input-shape 1,3,x
expect_error "padding_mode='reflect' needs padding smaller" translate "nn.Conv1d(1, 1, 3, padding=4, padding_mode='reflect')" --input-shape 1,1,4
expect_error "does not fit in a signed 64-bit integer" translate "nn.Conv2d(3, 16, 123456789012345678901234567890)"
expect_error "output_padding=2 must be smaller than either stride=2 or dilation=1" translate "nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=2)"
expect_error "only 'zeros' padding mode is supported for ConvTranspose2d" translate "nn.ConvTranspose2d(3, 4, 3, padding_mode='reflect')"
expect_error "Output size is too small" translate "nn.ConvTranspose1d(1, 1, 3, padding=3)" --input-shape 1,1,2
expect_error "does not record its input channels" translate "keras.layers.Conv2D(16, 3)"
expect_error "must give the channel count" translate "keras.layers.Conv2D(16, 3)" --input-shape None,None,None,None
expect_error "activation='exponential' is not supported yet" translate "keras.layers.Conv2D(16, 3, activation='exponential')" --input-shape None,8,8,3
expect_error "activation='Relu' is not a Keras activation" translate "keras.layers.Conv2D(16, 3, activation='Relu')" --input-shape None,8,8,3
expect_error "contradicts the layer's own input_shape=.32, 32, 3." translate "keras.layers.Conv2D(16, 3, input_shape=(32, 32, 3))" --input-shape 1,16,16,3
expect_error "unknown option '--input_shape' .did you mean --input-shape.." translate "nn.Conv2d(3, 16, 3)" --input_shape 1,3,8,8
expect_error "this layer is already Keras" translate "keras.layers.Conv2D(16, 3)" --input-shape None,8,8,3 --emit keras
# --seed is a 64-bit unsigned integer: CLI11 alone wrapped -1 and clamped larger values to 2^64-1.
expect_error "--seed '-1' must be an integer from 0 to 18446744073709551615" translate "nn.Conv2d(3, 16, 3)" --seed -1
expect_error "--seed '18446744073709551616' must be an integer" translate "nn.Conv2d(3, 16, 3)" --seed 18446744073709551616
expect 0 'seed 18446744073709551615\)' EMPTY -- translate "nn.Conv2d(3, 16, 3)" --seed 18446744073709551615
# tf.nn calls -> PyTorch: --filters-shape gives the filters' shape the text cannot say.
expect 0 'TFSamePad\(\(3, 3\), \(2, 2\)\)' EMPTY -- translate "tf.nn.conv2d(x, w, strides=2, padding='SAME')" --filters-shape 3,3,16,32 --emit torch
expect 0 '^def make_module\(filters, bias=None\):' EMPTY -- translate "tf.nn.conv2d(x, w, 1, [[0, 0], [1, 2], [0, 1], [0, 0]])" --filters-shape 3,3,4,8 --input-shape 1,16,16,8 --emit torch
expect 0 'nn.ConstantPad2d\(\(0, 1, 1, 2\), 0.0\)' EMPTY -- translate "tf.nn.conv2d(x, w, 1, [[0, 0], [1, 2], [0, 1], [0, 0]])" --filters-shape 3,3,4,8 --emit torch
expect 0 'Verification \(reference engine, float64, seed 0\): PASS' EMPTY -- translate "tf.nn.depthwise_conv2d(x, k, [1, 2, 2, 1], 'SAME')" --filters-shape 3,3,4,2 --input-shape 2,9,9,4
expect 0 '"framework": "tensorflow"' EMPTY -- translate "tf.nn.conv3d(x, w, [1, 2, 2, 2, 1], 'VALID')" --filters-shape 2,2,2,4,4 --emit json
expect_error "does not say its filters' shape: give it .--filters-shape on the command line" translate "tf.nn.conv2d(x, w, 2, 'SAME')"
expect_error "unknown TensorFlow function 'tf.nn.erosion2d'" translate "tf.nn.erosion2d(x, k, 1, 'SAME', 1)"
expect 0 'Verification \(reference engine, float64, seed 0\): PASS' EMPTY -- translate "tf.nn.max_pool2d(x, 2, 2, 'SAME')"
expect 0 'CropEnd\(\(1, 1\)\)' EMPTY -- translate "tf.nn.conv2d_transpose(x, w, [2, 10, 10, 6], 2)" --filters-shape 3,3,6,4 --emit torch
expect 0 'ExpectInputSize\(\(5, 5\), "the call.s output_shape allows only this input size"\)' EMPTY -- translate "tf.nn.conv2d_transpose(x, w, [2, 10, 10, 6], 2)" --filters-shape 3,3,6,4 --emit torch
expect 0 '"output_shape": \[' EMPTY -- translate "tf.nn.conv1d_transpose(x, w, [batch, 11, 6], 3, 'VALID')" --filters-shape 4,6,4 --emit json
expect_error "does not fit output_shape \(2, 10, 10, 6\)" translate "tf.nn.conv2d_transpose(x, w, [2, 10, 10, 6], 2)" --filters-shape 3,3,6,4 --input-shape 2,6,5,4
expect_error "the filters shape \(3, 3, 4\) has 3 entries; tf.nn.conv2d takes 4-D filters" translate "tf.nn.conv2d(x, w, 2, 'SAME')" --filters-shape 3,3,4
expect_error "--filters-shape '3,x' has a non-integer entry 'x'" translate "tf.nn.conv2d(x, w, 2, 'SAME')" --filters-shape 3,x
expect_error "padding='same' must be 'SAME', 'VALID' or a list" translate "tf.nn.conv2d(x, w, 2, 'same')" --filters-shape 3,3,4,8
expect_error "input depth must be evenly divisible by filter depth: 4 vs 3" translate "tf.nn.conv2d(x, w, 1, 'VALID')" --filters-shape 3,3,3,8 --input-shape 1,8,8,4
expect_error "this tf.nn call is already TensorFlow" translate "tf.nn.conv2d(x, w, 1, 'VALID')" --filters-shape 3,3,4,8 --emit keras
expect_error "--filters-shape is for tf.nn calls" translate "nn.Conv2d(3, 16, 3)" --filters-shape 3,3,3,16
expect_error "--filters-shape is for tf.nn calls" translate "keras.layers.Conv2D(16, 3)" --input-shape None,8,8,3 --filters-shape 3,3,3,16
expect_error "this layer is already PyTorch" translate "nn.Conv2d(3, 16, 3)" --emit torch
expect 2 EMPTY 'emit: .*not in' -- translate "nn.Conv2d(3, 16, 3)" --emit onnx
expect 2 EMPTY 'required' -- translate
expect 2 EMPTY '.' -- frobnicate

echo "cli: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
