#!/usr/bin/env python3
"""Reference fixtures for the engine's ops, computed with PyTorch.

Writes one JSON file per case into Tests/EngineTests/Fixtures/ (format in the README
there). Each case holds the inputs, the forward output, a fixed upstream gradient dY
and the gradients of L = sum(output * dY) with respect to every differentiable input.

    /root/torchenv/bin/python scripts/make-fixtures.py [--out DIR] [--check]

Deterministic: float32 on the CPU with one thread and deterministic algorithms; every
case seeds the generator from a checksum of its own name, so adding or removing a case
leaves the others byte for byte unchanged. Each case is also recomputed in float64, and
the script refuses to write a case whose float32 reference is not within a tenth of the
tests' tolerance (rtol 1e-4, atol 1e-5) of the float64 one, so a correct float32
engine is never failed by rounding in the reference itself.
"""

import argparse
import math
import pathlib
import sys
import zlib

import numpy as np
import torch
import torch.nn.functional as F

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)  # one thread: the summation order, and so every bit, is fixed

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "Tests" / "EngineTests" / "Fixtures"

# The tests compare with rtol 1e-4, atol 1e-5; the reference must be ten times tighter.
CHECK_RTOL, CHECK_ATOL = 1e-5, 1e-6


class Case:
    """One fixture: inputs, which of them are differentiable, and the forward function.

    `forward(inputs)` receives the inputs (converted to the dtype of the run, fresh
    copies each run) and returns the output, or (output, extras) where extras is a dict
    of further tensors to record (pooling indices, updated running statistics).
    """

    def __init__(self, name, op, attrs, inputs, differentiable, forward, upstream=None):
        self.name, self.op, self.attrs = name, op, attrs
        self.inputs, self.differentiable, self.forward = inputs, differentiable, forward
        self.upstream = upstream  # None: random normal shaped like the output


CASES = []


def case(fn, name=None):
    """Registers a builder under its case name (the function's name unless given); the
    builder runs with the generator seeded from that name."""
    CASES.append((name or fn.__name__, fn))
    return fn


def seed_for(name):
    return zlib.crc32(name.encode())


# ---------------------------------------------------------------------------------------
# Input generators (all float32, from the seeded global generator)

def randn(*shape):
    return torch.randn(tuple(shape), dtype=torch.float32)


def distinct(*shape, spread=4.0):
    """A random permutation of evenly spaced values in [-spread/2, spread/2): no ties,
    so max and max pooling have one well-defined winner and one gradient path."""
    n = math.prod(shape)
    perm = torch.randperm(n).to(torch.float32)
    return ((perm - n / 2) * (spread / n)).reshape(shape)


def away_from_zero(*shape, low=0.5, high=2.0):
    """|v| in [low, high) with a random sign: safe divisors."""
    magnitude = torch.rand(*shape, dtype=torch.float32) * (high - low) + low
    sign = torch.where(torch.rand(*shape) < 0.5, -1.0, 1.0)
    return magnitude * sign


def positive(*shape, low=0.5, high=2.0):
    return torch.rand(*shape, dtype=torch.float32) * (high - low) + low


# ---------------------------------------------------------------------------------------
# Padding conventions: the fixtures store [top, left, bottom, right]; F.pad takes
# (left, right, top, bottom).

def pad4(p):
    return [p, p, p, p] if isinstance(p, int) else [p[0], p[1], p[0], p[1]]


def conv_forward(attrs):
    t, l, b, r = attrs["padding"]

    def forward(ins):
        x = ins["x"]
        if (t, l) == (b, r):
            padding = (t, l)
        else:  # asymmetric ("same" padding of TensorFlow): pad first, gradient flows through F.pad
            x, padding = F.pad(x, (l, r, t, b)), 0
        return F.conv2d(x, ins["weight"], ins.get("bias"), stride=attrs["stride"],
                        padding=padding, dilation=attrs["dilation"], groups=attrs["groups"])
    return forward


def conv_case(name, x_shape, w_shape, bias=True, stride=(1, 1), padding=(0, 0, 0, 0),
              dilation=(1, 1), groups=1):
    attrs = {"stride": list(stride), "padding": list(padding), "dilation": list(dilation),
             "groups": groups}
    inputs = {"x": randn(*x_shape), "weight": randn(*w_shape) * (1.0 / math.sqrt(math.prod(w_shape[1:])))}
    if bias:
        inputs["bias"] = randn(w_shape[0])
    return Case(name, "conv2d", attrs, inputs, list(inputs), conv_forward(attrs))


@case
def conv2d_3x3_pad1_bias():
    return conv_case("conv2d_3x3_pad1_bias", [2, 3, 6, 6], [4, 3, 3, 3], padding=pad4(1))


@case
def conv2d_stride2_pad1():
    return conv_case("conv2d_stride2_pad1", [1, 3, 7, 7], [4, 3, 3, 3], stride=(2, 2), padding=pad4(1))


@case
def conv2d_5x5_nopad_nobias():
    return conv_case("conv2d_5x5_nopad_nobias", [1, 2, 8, 8], [3, 2, 5, 5], bias=False)


@case
def conv2d_dilation2():
    return conv_case("conv2d_dilation2", [1, 2, 9, 9], [3, 2, 3, 3], padding=pad4(1), dilation=(2, 2))


@case
def conv2d_groups2():
    return conv_case("conv2d_groups2", [2, 4, 5, 5], [6, 2, 3, 3], padding=pad4(1), groups=2)


@case
def conv2d_depthwise_multiplier2():
    # groups = C = 3, K = 6: two filters per input channel (MobileNet's depthwise layer, widened).
    return conv_case("conv2d_depthwise_multiplier2", [1, 3, 6, 6], [6, 1, 3, 3], padding=pad4(1), groups=3)


@case
def conv2d_1x1():
    return conv_case("conv2d_1x1", [2, 5, 4, 4], [3, 5, 1, 1])


@case
def conv2d_same_asymmetric_stride2():
    # TensorFlow "same" for k 3, s 2 on 8x8: out = ceil(8/2) = 4, total padding
    # (4-1)*2 + 3 - 8 = 1, all of it at the bottom and right (EfficientNet's stem).
    return conv_case("conv2d_same_asymmetric_stride2", [1, 3, 8, 8], [4, 3, 3, 3], bias=False,
                     stride=(2, 2), padding=(0, 0, 1, 1))


@case
def conv2d_11x11_stride4_pad2():
    # AlexNet's first layer in miniature: (19 + 2*2 - 11)/4 + 1 = 4 outputs per side.
    return conv_case("conv2d_11x11_stride4_pad2", [1, 3, 19, 19], [2, 3, 11, 11], stride=(4, 4), padding=pad4(2))


@case
def conv2d_kernel3x2_nonsquare():
    # 5x7 input, 3x2 kernel, stride (1, 2), padding (1, 0): output 5x3.
    return conv_case("conv2d_kernel3x2_nonsquare", [2, 2, 5, 7], [3, 2, 3, 2], stride=(1, 2), padding=pad4((1, 0)))


# ---------------------------------------------------------------------------------------
# Activations

def unary_case(name, op, attrs, x, fn):
    return Case(name, op, attrs, {"x": x}, ["x"], lambda ins: fn(ins["x"]))


@case
def relu():
    return unary_case("relu", "relu", {}, randn(3, 4, 5), F.relu)


@case
def leaky_relu():
    return unary_case("leaky_relu", "leaky_relu", {"slope": 0.1}, randn(3, 4, 5),
                      lambda x: F.leaky_relu(x, 0.1))


@case
def sigmoid():
    return unary_case("sigmoid", "sigmoid", {}, randn(3, 4, 5) * 2, torch.sigmoid)


@case
def tanh():
    return unary_case("tanh", "tanh", {}, randn(3, 4, 5) * 2, torch.tanh)


@case
def clip_relu6():
    # Spread over about [-5, 11] so both bounds clip a good share of elements.
    return unary_case("clip_relu6", "clip", {"min": 0.0, "max": 6.0}, randn(3, 4, 5) * 4 + 3,
                      lambda x: torch.clamp(x, 0.0, 6.0))


def softmax_case(name, op, shape):
    fn = F.softmax if op == "softmax" else F.log_softmax
    return unary_case(name, op, {"axis": 1}, randn(*shape) * 2, lambda x: fn(x, dim=1))


@case
def softmax_2d():
    return softmax_case("softmax_2d", "softmax", [2, 5])


@case
def softmax_4d():
    return softmax_case("softmax_4d", "softmax", [2, 3, 2, 2])


@case
def log_softmax_2d():
    return softmax_case("log_softmax_2d", "log_softmax", [2, 5])


@case
def log_softmax_4d():
    return softmax_case("log_softmax_4d", "log_softmax", [2, 3, 2, 2])


# ---------------------------------------------------------------------------------------
# Pooling

def max_pool_case(name, x_shape, kernel, stride, padding, ceil_mode):
    attrs = {"kernel": list(kernel), "stride": list(stride), "padding": pad4(padding),
             "ceil_mode": ceil_mode, "dilation": [1, 1]}

    def forward(ins):
        out, indices = F.max_pool2d(ins["x"], kernel, stride, padding, dilation=1,
                                    ceil_mode=ceil_mode, return_indices=True)
        return out, {"indices": indices}
    return Case(name, "max_pool2d", attrs, {"x": distinct(*x_shape)}, ["x"], forward)


@case
def max_pool2d_k2s2():
    return max_pool_case("max_pool2d_k2s2", [2, 3, 6, 6], (2, 2), (2, 2), (0, 0), False)


@case
def max_pool2d_k3s2_pad1():
    return max_pool_case("max_pool2d_k3s2_pad1", [1, 2, 7, 7], (3, 3), (2, 2), (1, 1), False)


@case
def max_pool2d_k3s2_ceil():
    # GoogLeNet style. Height 8: floor((8-3)/2)+1 = 3 rows, ceil gives 4 (the last window
    # starts at 6 and hangs over the edge). Width 10: 4 columns, ceil gives 5.
    return max_pool_case("max_pool2d_k3s2_ceil", [1, 2, 8, 10], (3, 3), (2, 2), (0, 0), True)


def avg_pool_case(name, x_shape, kernel, stride, padding, ceil_mode, count_include_pad):
    attrs = {"kernel": list(kernel), "stride": list(stride), "padding": pad4(padding),
             "ceil_mode": ceil_mode, "count_include_pad": count_include_pad}
    return unary_case(name, "avg_pool2d", attrs, randn(*x_shape),
                      lambda x: F.avg_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode,
                                             count_include_pad=count_include_pad))


@case
def avg_pool2d_k2s2():
    return avg_pool_case("avg_pool2d_k2s2", [2, 3, 6, 6], (2, 2), (2, 2), (0, 0), False, True)


@case
def avg_pool2d_k3s1_pad1_include_pad():
    # Border windows divide by 9 (padding counts as zeros).
    return avg_pool_case("avg_pool2d_k3s1_pad1_include_pad", [1, 2, 5, 5], (3, 3), (1, 1), (1, 1), False, True)


@case
def avg_pool2d_k3s1_pad1_exclude_pad():
    # Border windows divide by the number of real elements (4 in a corner, 6 on an edge).
    return avg_pool_case("avg_pool2d_k3s1_pad1_exclude_pad", [1, 2, 5, 5], (3, 3), (1, 1), (1, 1), False, False)


@case
def avg_pool2d_k3s2_ceil():
    # 8x8, k 3, s 2, ceil: 4x4 outputs; the last window starts at 6 and holds only 2 rows
    # (or columns) of the input, and divides by the count of those real elements.
    return avg_pool_case("avg_pool2d_k3s2_ceil", [1, 2, 8, 8], (3, 3), (2, 2), (0, 0), True, True)


@case
def avg_pool2d_k3s2_pad1_ceil_include_pad():
    # PyTorch's subtle rule: with ceil_mode the divisor counts the padding inside
    # [-pad, H + pad) but not the overhang beyond it. 8x8, pad 1: 5x5 outputs; the last
    # window covers rows 7..9, of which row 8 is padding (counted), row 9 overhang (not).
    return avg_pool_case("avg_pool2d_k3s2_pad1_ceil_include_pad", [1, 2, 8, 8], (3, 3), (2, 2), (1, 1), True, True)


def adaptive_case(name, x_shape, output_size):
    return unary_case(name, "adaptive_avg_pool2d", {"output_size": list(output_size)}, randn(*x_shape),
                      lambda x: F.adaptive_avg_pool2d(x, output_size))


@case
def adaptive_avg_pool2d_5x7_to_3x2():
    # Bin i covers [floor(i*H/oh), ceil((i+1)*H/oh)): rows 0-1, 1-3, 3-4 (overlapping).
    return adaptive_case("adaptive_avg_pool2d_5x7_to_3x2", [2, 3, 5, 7], (3, 2))


@case
def adaptive_avg_pool2d_global():
    return adaptive_case("adaptive_avg_pool2d_global", [2, 3, 5, 7], (1, 1))


# ---------------------------------------------------------------------------------------
# Normalization

def lrn_case(name, x, alpha):
    # b_c = a_c / (k + alpha/size * sum_{c' in window(c)} a_c'^2)^beta, the window running
    # from c - size//2 to c + (size-1)//2, clipped to the channels that exist.
    attrs = {"size": 5, "alpha": alpha, "beta": 0.75, "k": 2.0}
    return unary_case(name, "local_response_norm", attrs, x,
                      lambda x: F.local_response_norm(x, 5, alpha=alpha, beta=0.75, k=2.0))


@case
def local_response_norm_alexnet():
    return lrn_case("local_response_norm_alexnet", randn(2, 7, 3, 3), 1e-4)


@case
def local_response_norm_strong():
    # alpha 0.1 and inputs of scale 3: the denominator ranges well away from k^beta.
    return lrn_case("local_response_norm_strong", randn(2, 7, 3, 3) * 3, 0.1)


@case
def batch_norm_inference():
    # y = (x - running_mean) / sqrt(running_var + eps) * weight + bias, per channel.
    c = 3
    inputs = {"x": randn(2, c, 4, 4), "weight": randn(c), "bias": randn(c),
              "running_mean": randn(c), "running_var": positive(c)}
    attrs = {"eps": 1e-5, "momentum": 0.1, "training": False}

    def forward(ins):
        return F.batch_norm(ins["x"], ins["running_mean"], ins["running_var"], ins["weight"],
                            ins["bias"], training=False, eps=1e-5)
    return Case("batch_norm_inference", "batch_norm", attrs, inputs, ["x", "weight", "bias"], forward)


@case
def batch_norm_training():
    # Normalizes with the batch's mean and biased variance over (N, H, W); updates
    # running = (1 - momentum) * running + momentum * batch, with the unbiased variance
    # (n / (n - 1) times the biased one, n = N*H*W) for running_var.
    c = 3
    inputs = {"x": randn(4, c, 3, 3) * 2 + 1, "weight": randn(c), "bias": randn(c),
              "running_mean": randn(c), "running_var": positive(c)}
    attrs = {"eps": 1e-5, "momentum": 0.1, "training": True}

    def forward(ins):
        running_mean, running_var = ins["running_mean"].clone(), ins["running_var"].clone()
        y = F.batch_norm(ins["x"], running_mean, running_var, ins["weight"], ins["bias"],
                         training=True, momentum=0.1, eps=1e-5)
        return y, {"running_mean": running_mean, "running_var": running_var}
    return Case("batch_norm_training", "batch_norm", attrs, inputs, ["x", "weight", "bias"], forward)


# ---------------------------------------------------------------------------------------
# Linear algebra

@case
def linear():
    inputs = {"x": randn(3, 7), "weight": randn(5, 7), "bias": randn(5)}
    return Case("linear", "linear", {}, inputs, list(inputs),
                lambda ins: F.linear(ins["x"], ins["weight"], ins["bias"]))


@case
def matmul_2d():
    inputs = {"a": randn(3, 4), "b": randn(4, 5)}
    return Case("matmul_2d", "matmul", {}, inputs, ["a", "b"], lambda ins: ins["a"] @ ins["b"])


@case
def matmul_batched():
    # [2,3,4] @ [4,5]: b is shared by both batch entries, so its gradient sums over them.
    inputs = {"a": randn(2, 3, 4), "b": randn(4, 5)}
    return Case("matmul_batched", "matmul", {}, inputs, ["a", "b"], lambda ins: ins["a"] @ ins["b"])


# ---------------------------------------------------------------------------------------
# Broadcasting arithmetic: gradients are summed back to each input's own shape.

BROADCAST_SHAPES = {
    "4d_channel": ([2, 3, 4, 5], [3, 1, 1]),  # a per-channel bias on NCHW
    "row": ([2, 3], [3]),
    "outer": ([4, 1], [1, 5]),  # both sides broadcast
}

BINARY = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}


def binary_case(op, shapes_name):
    a_shape, b_shape = BROADCAST_SHAPES[shapes_name]
    name = f"{op}_broadcast_{shapes_name}"
    b = away_from_zero(*b_shape) if op == "div" else randn(*b_shape)
    inputs = {"a": randn(*a_shape), "b": b}
    fn = BINARY[op]
    return Case(name, op, {}, inputs, ["a", "b"], lambda ins: fn(ins["a"], ins["b"]))


for _op in BINARY:
    for _shapes in BROADCAST_SHAPES:
        case(lambda op=_op, shapes=_shapes: binary_case(op, shapes), name=f"{_op}_broadcast_{_shapes}")


# ---------------------------------------------------------------------------------------
# Reductions

REDUCE = {
    "sum": lambda x, axis, keep: x.sum() if axis is None else x.sum(dim=axis, keepdim=keep),
    "mean": lambda x, axis, keep: x.mean() if axis is None else x.mean(dim=axis, keepdim=keep),
    "max": lambda x, axis, keep: x.max() if axis is None else x.max(dim=axis, keepdim=keep).values,
}


def reduce_name(op, axis, keepdims):
    return f"{op}_all" if axis is None else f"{op}_axis{axis}" + ("_keepdims" if keepdims else "")


def reduce_case(op, axis, keepdims, shape):
    name = reduce_name(op, axis, keepdims)
    # max gets distinct values so its gradient goes to exactly one element.
    x = distinct(*shape) if op == "max" else randn(*shape)
    fn = REDUCE[op]
    return Case(name, op, {"axis": axis, "keepdims": keepdims}, {"x": x}, ["x"],
                lambda ins: fn(ins["x"], axis, keepdims))


for _op in REDUCE:
    for _axis, _keep, _shape in [(None, False, [3, 4, 5]), (1, False, [2, 3, 4]), (2, True, [2, 3, 4])]:
        case(lambda op=_op, axis=_axis, keep=_keep, shape=_shape: reduce_case(op, axis, keep, shape),
             name=reduce_name(_op, _axis, _keep))


# ---------------------------------------------------------------------------------------
# Shape ops

@case
def concat_axis1():
    inputs = {"x0": randn(2, 2, 3, 3), "x1": randn(2, 1, 3, 3), "x2": randn(2, 3, 3, 3)}
    return Case("concat_axis1", "concat", {"axis": 1}, inputs, list(inputs),
                lambda ins: torch.cat([ins["x0"], ins["x1"], ins["x2"]], dim=1))


@case
def flatten_start1():
    return unary_case("flatten_start1", "flatten", {"start_dim": 1}, randn(2, 3, 4, 5),
                      lambda x: torch.flatten(x, start_dim=1))


# ---------------------------------------------------------------------------------------
# Loss

@case
def cross_entropy():
    # L = mean_i (logsumexp(logits_i) - logits_i[target_i]); dL/dlogits = (softmax - onehot) / N.
    inputs = {"logits": randn(4, 10) * 2, "targets": torch.randint(0, 10, (4,))}
    return Case("cross_entropy", "cross_entropy", {"reduction": "mean"}, inputs, ["logits"],
                lambda ins: F.cross_entropy(ins["logits"], ins["targets"], reduction="mean"),
                upstream=torch.ones(()))


# ---------------------------------------------------------------------------------------
# A whole network: composition of the ops above, parameters by their state-dict names.

class SmallCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(4, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8 * 7 * 7, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))


@case
def small_cnn():
    model = SmallCNN()  # PyTorch's default initialization, from the seeded generator
    x = randn(2, 1, 28, 28)
    inputs = {"x": x}
    inputs.update({k: v.detach().clone() for k, v in model.state_dict().items()})
    layers = [
        {"name": "conv1", "type": "conv2d", "in": 1, "out": 4, "kernel": 3, "stride": 1, "padding": 1},
        {"name": "relu1", "type": "relu"},
        {"name": "pool1", "type": "max_pool2d", "kernel": 2, "stride": 2},
        {"name": "conv2", "type": "conv2d", "in": 4, "out": 8, "kernel": 3, "stride": 1, "padding": 1},
        {"name": "relu2", "type": "relu"},
        {"name": "pool2", "type": "max_pool2d", "kernel": 2, "stride": 2},
        {"name": "flatten", "type": "flatten", "start_dim": 1},
        {"name": "fc", "type": "linear", "in": 8 * 7 * 7, "out": 10},
    ]

    def forward(ins):
        h = F.conv2d(ins["x"], ins["conv1.weight"], ins["conv1.bias"], padding=1)
        h = F.max_pool2d(F.relu(h), 2)
        h = F.conv2d(h, ins["conv2.weight"], ins["conv2.bias"], padding=1)
        h = F.max_pool2d(F.relu(h), 2)
        return F.linear(torch.flatten(h, 1), ins["fc.weight"], ins["fc.bias"])

    with torch.no_grad():  # the functional chain is the module, op for op
        assert torch.equal(forward(inputs), model(x)), "small_cnn: functional forward differs from the module"
    return Case("small_cnn", "small_cnn", {"layers": layers}, inputs, list(inputs), forward)


# ---------------------------------------------------------------------------------------
# Running a case and writing JSON

def run(c, dtype):
    """Forward and backward in `dtype`; returns (output, extras, grads)."""
    ins = {}
    for k, v in c.inputs.items():
        v = v.detach().clone()
        ins[k] = v.to(dtype) if v.is_floating_point() else v
    for k in c.differentiable:
        ins[k].requires_grad_(True)
    result = c.forward(ins)
    out, extras = result if isinstance(result, tuple) else (result, {})
    upstream = c.upstream.to(dtype)
    out.backward(upstream)
    grads = {k: ins[k].grad for k in c.differentiable}
    return out.detach(), {k: v.detach() for k, v in extras.items()}, grads


def check_precision(c, ref32, ref64):
    """The float32 reference must be within CHECK_RTOL/ATOL of the float64 one."""
    (out32, ext32, g32), (out64, ext64, g64) = ref32, ref64
    pairs = [("output", out32, out64)]
    pairs += [(f"extras.{k}", ext32[k], ext64[k]) for k in ext32]
    pairs += [(f"grads.{k}", g32[k], g64[k]) for k in g32]
    for what, a, b in pairs:
        if not a.is_floating_point():
            if not torch.equal(a, b):
                sys.exit(f"{c.name}: {what} differs between float32 and float64")
            continue
        err = (a.double() - b).abs()
        bound = CHECK_ATOL + CHECK_RTOL * b.abs()
        if bool((err > bound).any()):
            i = int(torch.argmax(err - bound))
            sys.exit(f"{c.name}: {what} float32 {a.flatten()[i].item()} vs float64 "
                     f"{b.flatten()[i].item()} beyond rtol {CHECK_RTOL} atol {CHECK_ATOL}")


def number(v):
    """The shortest decimal that reads back as the same float32 (at most 9 significant
    digits); whole numbers without a trailing '.0'."""
    if not math.isfinite(v):
        raise ValueError(f"non-finite value {v} in a fixture")
    s = str(np.float32(v))
    s = s[:-2] if s.endswith(".0") else s
    # Readers parse into a double and round that to float32; check that lands on v.
    if np.float32(float(s)) != np.float32(v):
        raise ValueError(f"{s} does not read back as the float32 {v!r}")
    return s


def tensor_json(t):
    t = t.detach().cpu().contiguous()
    shape = "[" + ",".join(str(d) for d in t.shape) + "]"
    if t.is_floating_point():
        if t.dtype != torch.float32:
            raise TypeError(f"fixture tensors are float32, got {t.dtype}")
        data = ",".join(number(v) for v in t.flatten().numpy())
        return '{"shape":' + shape + ',"data":[' + data + "]}"
    data = ",".join(str(int(v)) for v in t.flatten().tolist())
    return '{"shape":' + shape + ',"dtype":"int64","data":[' + data + "]}"


def value_json(v):
    """Attributes: numbers, bools, null, strings, lists and nested objects."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"non-finite attribute {v}")
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(value_json(e) for e in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(value_json(str(k)) + ":" + value_json(e) for k, e in v.items()) + "}"
    raise TypeError(f"cannot write attribute {v!r}")


def tensors_json(d):
    return "{" + ",".join(value_json(k) + ":" + tensor_json(t) for k, t in d.items()) + "}"


def fixture_json(c, out, extras, upstream, grads):
    parts = [
        '"name":' + value_json(c.name),
        '"op":' + value_json(c.op),
        '"attrs":' + value_json(c.attrs),
        '"inputs":' + tensors_json(c.inputs),
        '"output":' + tensor_json(out),
        '"upstream":' + tensor_json(upstream),
        '"grads":' + tensors_json(grads),
    ]
    parts += [value_json(k) + ":" + tensor_json(t) for k, t in extras.items()]
    return "{" + ",".join(parts) + "}\n"


def build_all():
    """Every case as (name, json text)."""
    built = []
    for name, builder in CASES:
        torch.manual_seed(seed_for(name))
        c = builder()
        if c.name != name:
            sys.exit(f"case registered as {name} calls itself {c.name}")
        with torch.no_grad():
            probe = c.forward({k: v.clone() for k, v in c.inputs.items()})
        probe = probe[0] if isinstance(probe, tuple) else probe
        if c.upstream is None:
            c.upstream = randn(*probe.shape)
        if c.upstream.shape != probe.shape:
            sys.exit(f"{c.name}: upstream shape {list(c.upstream.shape)} != output {list(probe.shape)}")
        ref32 = run(c, torch.float32)
        check_precision(c, ref32, run(c, torch.float64))
        out, extras, grads = ref32
        built.append((c.name, fixture_json(c, out, extras, c.upstream, grads)))
    names = [n for n, _ in built]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        sys.exit(f"duplicate case names: {sorted(duplicates)}")
    return built


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true",
                        help="write nothing; fail if the files in --out differ from a fresh run")
    args = parser.parse_args()

    built = build_all()
    wanted = {f"{name}.json": text for name, text in built}
    existing = {p.name for p in args.out.glob("*.json")}

    if args.check:
        stale = sorted(existing - set(wanted))
        changed = sorted(f for f, text in wanted.items()
                         if f not in existing or (args.out / f).read_text() != text)
        for f in changed:
            print(f"differs: {f}")
        for f in stale:
            print(f"not produced by this script: {f}")
        sys.exit(1 if changed or stale else 0)

    args.out.mkdir(parents=True, exist_ok=True)
    for f, text in wanted.items():
        (args.out / f).write_text(text)
    for f in sorted(existing - set(wanted)):  # a renamed or removed case leaves no stale file
        (args.out / f).unlink()
    total = sum(len(t.encode()) for t in wanted.values())
    print(f"wrote {len(wanted)} fixtures, {total / 1024:.0f} KiB, to {args.out}")


if __name__ == "__main__":
    main()
