"""Writes the seed corpora fuzz/corpus/<target>/ (file name: SHA-1 of the content, as libFuzzer names inputs).

    python3 fuzz/make_seeds.py            # idempotent; existing seeds stay

Seeds are real layers (the README's mapping table and the unit tests), rejected layers, input shapes and command
lines. fuzz_pipeline inputs are "<layer>\\0<input shape>"; fuzz_cli inputs are NUL-separated arguments.
"""
import hashlib
import os
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
layers = [
 "nn.Conv2d(3, 16, 3)", "nn.Conv2d(3, 16, kernel_size=3, stride=2, padding=1)", "nn.Conv2d(3, 16, 3, padding='same')",
 "nn.Conv2d(3, 16, 4, padding='same')", "nn.Conv2d(3, 16, 4, padding=2)", "nn.Conv1d(4, 8, 5, stride=2, padding=2)",
 "nn.Conv3d(4, 8, 3, padding=(1, 0, 1))", "nn.Conv2d(3, 16, 3, padding=1, padding_mode='reflect')",
 "nn.Conv2d(3, 16, 3, padding=1, padding_mode='replicate')", "nn.Conv2d(3, 16, 3, padding=1, padding_mode='circular')",
 "nn.Conv2d(16, 32, 3, stride=2, dilation=2)", "nn.Conv2d(16, 32, 3, padding=1, groups=16)", "nn.Conv1d(8, 8, 5, groups=8)",
 "nn.Conv3d(8, 8, 3, groups=8)", "nn.Conv2d(16, 32, 3, groups=4)", "nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1)",
 "nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)", "nn.ConvTranspose2d(16, 8, 2, stride=2)",
 "nn.ConvTranspose1d(4, 4, 3, stride=3, output_padding=2)", "nn.ConvTranspose1d(4, 4, 3, dilation=3, output_padding=2)",
 "nn.ConvTranspose3d(8, 8, 3, stride=2, padding=1, groups=4)",
 "torch.nn.Conv3d(in_channels=4, out_channels=8, kernel_size=(3, 1, 2), stride=[1, 2, 1], padding=(1, 0, 1), dilation=(2, 1, 1), groups=2, bias=True,)",
 "nn.Conv2d(3, 16, 3, 2, 1, 1, 1, False, 'reflect', None, None)", "nn.ConvTranspose2d(4, 6, 3, 2, 1, 1, 2, False, 2, 'zeros')",
 "Conv1d(2, 2, (3,))", "nn.Conv2d(3, 16, 3, device='cpu', dtype=torch.float32)", "nn.Conv2d(3, 16, 3, device=torch.device('cpu'))",
 "nn.Conv1d(8, 8, 5, padding='same', padding_mode='reflect')", "nn.Conv2d(32, 64, 3, groups=32, dilation=2, stride=2)",
 "nn.Conv2d(1, 1, (1, 3), stride=(1, 2))", "nn.Conv2d(3, 16, 3, bias=0)", "nn.Conv2d(3, 16, 3, padding='valid')",
 # rejected ones
 "nn.Conv2d(3, 16, 3, stride=2, padding='same')", "nn.Conv2d(3, 16, 3, groups=2)", "nn.Conv2d(3, 16, 3, strides=2)",
 "nn.Conv2d(3, 16, 3", "", "nn.Conv2d(3, 16, 123456789012345678901234567890)", "nn.Conv2d(3, 16, ((((((((((3))))))))))",
 "nn.Conv2d(3, 16, 3, stride=1, stride=2)", "nn.Conv2d(3, 16, 3.5)", "nn.Conv2d(3, 16, 3, padding_mode='zeros)",
 "nn.Conv3d(1, 1, (2147483647, 2147483647, 2147483647), dilation=2147483647)", "nn.Conv2d(3, 16, 3, stride=\uff12)",
 "keras.layers.Conv2D(16, 3, strides=2, padding='same')",
]
shapes = ["1,3,224,224", "1,3,225,225", "(1, 3, 32, 32)", "1,4,8", "2,8,5,5,5", "1,16,7,7", "1,3,0,8", "1,3,x", "",
          "2147483647,3,2147483647,2147483647", "[1, 3, 8, 8]", "None,32,32,3", "1,3,99999999999999999999"]
pairs = [("nn.Conv2d(3, 16, 3, stride=2, padding=1)", "1,3,224,224"), ("nn.Conv2d(3, 16, 3, stride=2, padding=1)", "1,3,225,225"),
         ("nn.Conv1d(4, 8, 5, stride=2, padding=2)", "1,4,9"), ("nn.Conv3d(4, 8, 3, padding=(1, 0, 1))", "1,4,5,5,5"),
         ("nn.Conv2d(3, 16, 3, padding=1, padding_mode='reflect')", "1,3,2,2"), ("nn.Conv2d(3, 16, 5)", "1,3,4,4"),
         ("nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)", "1,16,5,6"),
         ("nn.ConvTranspose1d(1, 1, 3, padding=3)", "1,1,2"), ("nn.Conv2d(1, 1, 3, stride=2)", "2,1,9,8"),
         ("nn.Conv2d(16, 32, 3, padding=1, groups=16)", "1,16,6,6"), ("nn.Conv2d(3, 4, 3, padding=3, padding_mode='circular')", "1,3,3,8")]
clis = [["translate", "nn.Conv2d(3, 16, kernel_size=3, stride=2, padding=1)"],
        ["translate", "nn.Conv2d(3, 16, 3, stride=2, padding=1)", "--input-shape", "1,3,224,224"],
        ["translate", "torch.nn.Conv1d(8, 8, 5, padding='same', padding_mode='reflect')", "--emit", "keras"],
        ["translate", "nn.Conv2d(32, 64, 3, groups=32, dilation=2, stride=2)", "--emit", "tf"],
        ["translate", "nn.Conv3d(4, 8, (3, 1, 2), padding=(1, 0, 1))", "--emit", "json"],
        ["translate", "nn.Conv2d(3, 16, 3)", "--no-verify", "--seed", "7"],
        ["translate", "nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)", "--input-shape=1,8,4,4"],
        ["translate", "nn.Conv2d(3, 16, 3)", "--input-shape", "1,4,8,8"], ["translate", "nn.Conv2d(3, 16, 3)", "--emit", "onnx"],
        ["translate"], ["--help"], ["translate", "--help"], ["--version"], ["frobnicate"], [],
        ["translate", "keras.layers.Conv2D(16, 3, strides=2, padding='same')", "--input-shape", "None,32,32,3"],
        ["translate", "nn.Conv2d(3, 16, 3, stride=2, padding='same')"],
        # Found by fuzz_cli: CLI11 let std::out_of_range escape (abort) for an out-of-range flag value.
        ["translate", "nn.Conv2d(3, 16, 3)", "--no-verify=99999999999999999999"],
        # Misspelled options get a suggestion; a line pasted from code is its right-hand side.
        ["translate", "nn.Conv2d(3, 16, 3)", "--input_shape", "1,3,8,8"], ["translate", "nn.Conv2d(3, 16, 3)", "--emitt=json"],
        ["translate", "self.conv1 = nn.Conv2d(3, 16, 3),", "--emit", "keras"],
        ["translate", "keras.layers.Conv2D(8, 3, activation='leaky_relu', input_shape=(16, 16, 3))", "--emit", "json"],
        ["translate", "keras.layers.Conv2D(8, 3)", "--input-shape", "1,3,224,224"]]
# fuzz_keras_layer inputs: "<layer>[\0<input shape>]": activations, the layer's own input_shape=, pasted lines.
keras_layers = [
    "keras.layers.Conv2D(16, 3, strides=2, padding='same', activation='relu')\0None,None,None,3",
    "layers.DepthwiseConv2D(3, activation='softmax', input_shape=(None, None, 8))",
    "keras.layers.Conv1DTranspose(4, 3, strides=2, activation=keras.activations.gelu)\0" "2,5,3",
    "SeparableConv2D(8, 3, activation=tf.nn.leaky_relu, input_shape=(9, 9, 4))\0" "1,9,None,4",
    "x = keras.layers.Conv3D(4, 3, activation='hard_swish')\0None,5,5,5,2",
    "keras.layers.Conv2D(8, 3, input_shape=(32, 32, 3))\0" "1,16,16,3",
    "keras.layers.Conv2D(8, 3, activation='exponential')", "keras.layers.Conv2D(8, 3, activation='Relu')",
    "keras.layers.Conv2D(8, 3, input_shape=(32, None))", "keras.layers.Conv2D(8, 3, input_shape=(0, 2, 3))",
]
# fuzz_op_layer inputs: "<layer>[\0<input shape>]", the op set in all three spellings (the examples first).
op_layers = [
    "nn.MaxPool2d(3, 2, 1, ceil_mode=True)\0" "1,64,55,55", "nn.AvgPool2d(3, 1, 1)",
    "nn.Upsample(scale_factor=2, mode='bilinear', align_corners=True)",
    "keras.layers.AveragePooling2D(3, 1, padding='same')\0None,None,None,8", "keras.layers.BatchNormalization()",
    "nn.MaxPool1d(3, 2, dilation=2)\0" "2,3,11", "nn.AvgPool3d(2, ceil_mode=True, count_include_pad=False)",
    "nn.AvgPool2d((3, 2), stride=(2, 1), padding=(1, 0), divisor_override=4)", "nn.AdaptiveAvgPool2d((3, None))",
    "nn.AdaptiveMaxPool1d(5)\0" "2,3,9", "keras.layers.GlobalAveragePooling2D(keepdims=True)",
    "keras.layers.MaxPooling2D(2, padding='same')\0" "1,7,7,3", "tf.nn.max_pool2d(x, 3, 2, 'SAME')",
    "nn.BatchNorm2d(8, eps=1e-3, momentum=0.01)", "nn.GroupNorm(2, 8)", "nn.InstanceNorm2d(4, affine=True)",
    "nn.LayerNorm((4, 5, 5))\0" "2,4,5,5", "keras.layers.LayerNormalization(epsilon=1e-6)\0None,None,None,8",
    "keras.layers.GroupNormalization(groups=4)\0" "2,6,6,8", "nn.Upsample(size=(7, 9), mode='bicubic')",
    "nn.Upsample(scale_factor=1.5, mode='nearest')\0" "1,2,5,5", "keras.layers.UpSampling2D(2, interpolation='bilinear')",
    "keras.layers.Resizing(7, 9)\0None,5,5,3", "tf.image.resize(x, (7, 9), method='nearest')",
    "nn.ZeroPad2d((1, 2, 0, -1))", "nn.ReflectionPad1d(2)\0" "1,2,5", "nn.ConstantPad3d(1, 2.5)",
    "keras.layers.Cropping2D(((1, 0), (0, 2)))\0None,8,8,3", "tf.pad(x, [[0, 0], [1, 1], [2, 0], [0, 0]], 'SYMMETRIC')",
    "nn.PixelShuffle(2)\0" "1,8,3,3", "nn.PixelUnshuffle(2)", "tf.nn.depth_to_space(x, 2)\0" "1,3,3,8",
    "nn.LeakyReLU()", "nn.GELU(approximate='tanh')", "nn.Softmax(dim=1)", "nn.PReLU(8)", "keras.layers.LeakyReLU()",
    "keras.layers.PReLU(shared_axes=[1, 2])\0None,None,None,4", "keras.layers.Activation('hard_silu')",
    "keras.layers.ReLU(max_value=6.0)", "tf.nn.leaky_relu(x)", "nn.Hardswish()", "nn.ELU(alpha=0.5)",
    # rejected ones
    "nn.MaxPool2d(3, return_indices=True)", "nn.MaxPool2d(3, padding=2)", "nn.AvgPool2d(0)",
    "nn.BatchNorm2d(8, momentum=None)", "nn.Upsample(size=4, scale_factor=2)", "nn.PixelShuffle(0)",
    "nn.MaxPool2d(3, 2, 1, ceil_mode=True)\0" "1,64,1,1", "keras.layers.BatchNormalization(axis=1)",
    "nn.ZeroPad2d((1, 2, 3))", "nn.Softmax(dim=-1)", "nn.LeakyReLU(negative_slope=1e999)",
]
# fuzz_tf_nn_call inputs: "<call>\0<filters shape>[\0<input shape>]".
tf_nn_calls = [
    "tf.nn.conv2d(x, w, strides=2, padding='SAME')\0" "3,3,4,8",
    "tf.nn.conv2d(x, w, 2, 'SAME')\0" "3,3,4,8\0" "1,9,9,4",
    "tf.nn.conv2d(x, w, [1, 2, 1, 1], [[0, 0], [1, 2], [0, 1], [0, 0]], dilations=[1, 2])\0" "3,3,2,8\0" "None,8,9,4",
    "tf.nn.conv1d(x, w, stride=2, padding='SAME', dilations=2)\0" "5,4,8",
    "tf.nn.conv1d(input=x, filters=w, stride=[1, 2, 1], padding='VALID', data_format='NWC')\0" "3,4,8\0" "2,None,4",
    "tf.nn.conv3d(x, w, [1, 2, 2, 2, 1], 'SAME')\0" "3,3,3,4,8\0" "1,5,6,7,4",
    "tf.nn.conv3d(x, w, strides=[1, 1, 1, 1, 1], padding='VALID', dilations=[1, 2, 1, 2, 1])\0" "3,2,3,4,8",
    "tf.nn.depthwise_conv2d(x, w, [1, 2, 2, 1], 'SAME')\0" "3,3,4,2\0" "2,9,9,4",
    "tf.nn.depthwise_conv2d(x, w, strides=[1, 1, 1, 1], padding=[[0, 0], [2, 0], [0, 1], [0, 0]], dilations=[2, 1])\0" "3,3,4,2",
    "tf.nn.convolution(x, w, strides=2, padding='SAME')\0" "3,3,4,8",
    "tf.nn.convolution(x, w)\0" "3,4,8",
    "tensorflow.nn.convolution(x, w, 1, 'VALID', None, [2, 2, 2])\0" "2,2,2,4,8",
    "tf.nn.conv2d(tf.zeros([1, 8, 8, 4]), self.kernel, strides=[1, 1], padding='VALID', name='conv')\0" "1,1,4,4",
    "tf.nn.conv2d_transpose(x, w, [2, 10, 10, 6], 2)\0" "3,3,6,4",
    "tf.nn.conv2d_transpose(x, w, [batch, 11, 10, 6], [3, 2], [[0, 0], [2, 1], [0, 2], [0, 0]])\0" "4,3,6,4",
    "tf.nn.conv1d_transpose(x, w, [2, 11, 6], 3, 'VALID')\0" "4,6,4\0" "2,3,4",
    "tf.nn.conv3d_transpose(x, w, [2, 6, 7, 5, 6], [2, 2, 1])\0" "2,3,2,6,4",
    "tf.nn.conv_transpose(x, w, [2, 9, 9, 6], 1, 'VALID', dilations=2)\0" "3,3,6,4",
    # rejected ones
    "tf.nn.conv2d_transpose(x, w, [2, 5, 5, 6], 1, [[0, 0], [3, 0], [0, 0], [0, 0]])\0" "1,1,6,4",
    "tf.nn.conv2d_transpose(x, w, [2, 10, 10, 6], 2)\0" "3,3,6,4\0" "2,6,5,4",
    "tf.nn.conv2d(x, w, 2, 'same')\0" "3,3,4,8", "tf.nn.conv3d(x, w, 2, 'SAME')\0" "3,3,3,4,8",
    "tf.nn.depthwise_conv2d(x, w, [1, 2, 2, 1], 'SAME', dilations=[2, 2])\0" "3,3,4,2",
    "tf.nn.conv2d(x, w, 1, [[1, 0], [0, 0], [0, 0], [0, 0]])\0" "3,3,4,8", "tf.nn.conv2d(x, w, 0, 'VALID')\0" "3,3,4,8",
    "tf.nn.conv2d(x, w, 1, 'VALID')\0" "3,3,3,8\0" "1,8,8,4", "tf.nn.conv2d(x, w, 1, 'VALID')\0" "9,9,4,8\0" "1,8,8,4",
    "tf.nn.conv2d(x, w, 1, 'VALID')\0" "3,3,4", "tf.nn.conv2d(x, w, 1, 'VALID')\0" "3,3,4,99999999999999999999",
    "tf.nn.conv2d(x, w, 1, 'VALID', data_format='NCHW')\0" "3,3,4,8", "tf.nn.conv2d(x, w, stride=2)\0" "3,3,4,8",
]


def encode(item):
    return item.encode() if isinstance(item, str) else item


def write(target, items):
    d = os.path.join(root, target); os.makedirs(d, exist_ok=True)
    for item in items:
        data = encode(item)
        name = hashlib.sha1(data).hexdigest()
        open(os.path.join(d, name), "wb").write(data)
# The hostile-input catalogue (tests/hostile/catalogue.json): every short entry seeds the layer and pipeline targets.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "hostile"))
import catalogue  # noqa: E402

hostile = [e for e in catalogue.load() if len(e.layer) + len(e.input_shape or b"") < 4096]
layers += [e.layer for e in hostile if e.input_shape is None]
pairs += [(e.layer, e.input_shape) for e in hostile if e.input_shape is not None]
write("fuzz_pytorch_layer", layers)
write("fuzz_pipeline", layers + [encode(l) + b"\0" + encode(s) for l, s in pairs] + ["nn.Conv2d(3, 16, 3)\0" + s for s in shapes])
write("fuzz_input_shape", shapes + [e.input_shape for e in hostile if e.input_shape is not None])
write("fuzz_tf_nn_call", tf_nn_calls)
write("fuzz_keras_layer", keras_layers)
# Every short catalogue entry too: the conv ones are rejected at once, the op-set ones at their own stage.
write("fuzz_op_layer", op_layers + [e.layer + (b"" if e.input_shape is None else b"\0" + e.input_shape)
                                    for e in hostile])
write("fuzz_cli", ["\0".join(a) for a in clis] + [
    "\0".join(["translate", "tf.nn.conv2d(x, w, strides=2, padding='SAME')", "--filters-shape", "3,3,16,32"]),
    "\0".join(["translate", "tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], 'VALID')", "--filters-shape", "3,3,4,2",
               "--input-shape", "1,8,8,4", "--emit", "torch"])])
