#!/usr/bin/env python3
"""Writes the model-file fixtures of Tests/ModelsTests/Fixtures.

Run with a Python that has torch, onnx, onnxscript, safetensors and numpy:

    python scripts/make-model-fixtures.py

Every file is deterministic (fixed seeds, fixed values), small, and written by the
library a user would use, so the tests check cnnlab against the real writers.
Values the tests assert on are simple formulas (arange-based) where possible, and
stored next to the file as .npy/.npz where they are random weights.
"""
import os
import shutil
import sys
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "ModelsTests", "Fixtures")


def path(*parts):
    p = os.path.join(ROOT, *parts)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def ramp(shape, dtype):
    """0, 1, 2, ... scaled to be exact in every float type: (i - n/2) / 4."""
    n = int(np.prod(shape))
    return ((np.arange(n) - n // 2) / 4).reshape(shape).astype(dtype)


# --- NumPy ------------------------------------------------------------------------

def numpy_fixtures():
    arrays = {
        "float32": ramp((2, 3, 4), np.float32),
        "float64": ramp((3, 2), np.float64),
        "float16": ramp((5,), np.float16),
        "int64": np.arange(-3, 3, dtype=np.int64).reshape(2, 3),
        "int32": np.arange(-2, 2, dtype=np.int32),
        "uint8": np.array([0, 1, 127, 255], dtype=np.uint8),
        "bool": np.array([[True, False], [False, True]]),
        "scalar": np.array(2.5, dtype=np.float32),
        "empty": np.zeros((0, 3), dtype=np.float32),
    }
    for name, a in arrays.items():
        np.save(path("npy", name + ".npy"), a)
    # Column-major storage of the 2x3x4 ramp: the reader must transpose it back.
    np.save(path("npy", "fortran.npy"), np.asfortranarray(arrays["float32"]))
    # Header versions 2.0 and 3.0 (written explicitly; np.save picks 1.0 for small headers).
    for version in [(2, 0), (3, 0)]:
        with open(path("npy", "float32_v%d.npy" % version[0]), "wb") as f:
            np.lib.format.write_array(f, arrays["float32"], version=version)
    np.savez(path("npz", "arrays.npz"), **{k: arrays[k] for k in ["float32", "int64", "uint8", "bool"]})
    np.savez_compressed(path("npz", "arrays_compressed.npz"),
                        **{k: arrays[k] for k in ["float32", "float64", "int32", "float16"]})


# --- safetensors -------------------------------------------------------------------

def safetensors_fixture():
    tensors = {
        "f32": torch.from_numpy(ramp((2, 3), np.float32)),
        "f16": torch.from_numpy(ramp((4,), np.float16)),
        "bf16": torch.from_numpy(ramp((2, 2), np.float32)).to(torch.bfloat16),
        "f64": torch.from_numpy(ramp((3,), np.float64)),
        "i64": torch.arange(-2, 2, dtype=torch.int64),
        "i32": torch.arange(-1, 2, dtype=torch.int32),
        "i8": torch.tensor([-128, 0, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 200, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(1.5),
    }
    save_file(tensors, path("safetensors", "python.safetensors"),
              metadata={"architecture": "conv(3, 8) relu"})  # one entry: the writer orders several at random


# --- PyTorch state dicts -----------------------------------------------------------

class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.bn = nn.BatchNorm2d(3)
        self.fc = nn.Linear(12, 2)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


def state_dict_fixtures():
    torch.manual_seed(0)
    net = SmallCNN()
    net.train()
    net(torch.randn(4, 1, 4, 4))  # moves the running statistics and num_batches_tracked to 1
    sd = net.state_dict()
    torch.save(sd, path("pytorch", "small_cnn.pth"))
    torch.save({"epoch": 3, "state_dict": sd, "best_accuracy": 0.75, "note": "ok"},
               path("pytorch", "checkpoint.pth"))
    np.savez(path("pytorch", "small_cnn_expected.npz"),
             **{k: v.detach().to(torch.float32).numpy() for k, v in sd.items()})

    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    torch.save({"transposed": base.t(), "sliced": base[1:, ::2], "expanded": torch.arange(3.0).expand(2, 3)},
               path("pytorch", "views.pth"))

    n = torch.arange(-2, 4)
    torch.save({"float16": n.to(torch.float16), "bfloat16": n.to(torch.bfloat16), "float64": n.to(torch.float64),
                "int32": n.to(torch.int32), "int8": n.to(torch.int8), "uint8": (n + 2).to(torch.uint8),
                "int16": n.to(torch.int16), "bool": n > 0, "int64": n},
               path("pytorch", "dtypes.pth"))


# --- ONNX ---------------------------------------------------------------------------

class ResidualBlock(nn.Module):
    """conv-bn-relu-conv-bn, plus the input, then relu."""

    def __init__(self, channels=4):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + x)


class InceptionNet(nn.Module):
    """stem conv, maxpool, a 1x1 and a 3x3 branch concatenated, global average pool, linear."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.branch1 = nn.Conv2d(4, 4, 1)
        self.branch3 = nn.Conv2d(4, 6, 3, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(10, 5)

    def forward(self, x):
        x = self.pool(torch.relu(self.stem(x)))
        x = torch.cat([torch.relu(self.branch1(x)), torch.relu(self.branch3(x))], dim=1)
        return self.fc(torch.flatten(self.gap(x), 1))


def randomize_batch_norms(net):
    """Non-trivial statistics, so that a loader or a folding that ignores them is caught."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)


def onnx_fixtures():
    torch.manual_seed(1)
    models = {"residual": (ResidualBlock(), (1, 4, 8, 8)), "inception": (InceptionNet(), (1, 3, 16, 16))}
    for name, (net, shape) in models.items():
        randomize_batch_norms(net)
        net.eval()
        x = torch.randn(*shape)
        with torch.no_grad():
            y = net(x)
        np.save(path("onnx", name + "_input.npy"), x.numpy())
        np.save(path("onnx", name + "_output.npy"), y.numpy())
        # Without constant folding the legacy exporter keeps BatchNormalization as its own node
        # (with folding, as the dynamo exporter does, it merges into the convolution's weights).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (x,), path("onnx", name + "_legacy.onnx"), dynamo=False, opset_version=13,
                              do_constant_folding=False, input_names=["input"], output_names=["output"])
        # The default exporter since 2.9; weights above 256 bytes go to <name>_dynamo.onnx.data.
        torch.onnx.export(net, (x,), path("onnx", name + "_dynamo.onnx"), dynamo=True, external_data=True,
                          verbose=False)


class OperatorNet(nn.Module):
    """The operators the other two leave out: arithmetic with constants, padding, a grouped strided
    convolution, ReLU6, sigmoid, average pooling with ceil_mode and count_include_pad=False, max
    pooling with ceil_mode, flatten, linear layers, tanh, leaky ReLU and softmax."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.1, -0.2, 0.3]).view(1, 3, 1, 1))
        self.conv = nn.Conv2d(3, 6, 3, stride=2, padding=1, groups=3)
        self.pool = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
        self.fc1 = nn.Linear(48, 5)
        self.fc2 = nn.Linear(5, 3)

    def forward(self, x):
        x = F.pad((x - self.mean) * 2.0, (1, 0, 2, 1))  # left, right, top, bottom
        x = self.conv(x)
        x = torch.cat([F.relu6(x * 3.0), torch.sigmoid(x) / 2.0], dim=1)
        x = F.max_pool2d(self.pool(x), 3, stride=2, ceil_mode=True)
        x = F.leaky_relu(torch.tanh(self.fc1(torch.flatten(x, 1))), 0.1)
        return torch.softmax(self.fc2(x), dim=1)


def without_stack_traces(file):
    """Drops the dynamo exporter's per-node metadata (source stack traces, which name the folder the
    script ran in), so the file depends only on the model. The external data file is untouched."""
    import onnx
    model = onnx.load(file, load_external_data=False)
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    onnx.save(model, file)


def operator_fixtures():
    torch.manual_seed(2)
    net = OperatorNet().eval()
    x = torch.randn(1, 3, 11, 11)
    with torch.no_grad():
        y = net(x)
    np.save(path("onnx", "operators_input.npy"), x.numpy())
    np.save(path("onnx", "operators_output.npy"), y.numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), path("onnx", "operators_legacy.onnx"), dynamo=False, opset_version=13,
                          do_constant_folding=False, input_names=["input"], output_names=["output"])
    torch.onnx.export(net, (x,), path("onnx", "operators_dynamo.onnx"), dynamo=True, external_data=True,
                      verbose=False)
    without_stack_traces(path("onnx", "operators_dynamo.onnx"))


# --- Every format end to end (Tests/ShellTests/FormatRunTests.swift) ------------------

class TinyClassifier(nn.Module):
    """The network the end-to-end scripts build in cnnlab for the weight-only formats:
    conv-bn-relu-maxpool, conv-relu, global average pool, linear to 4 classes."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = F.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
        x = torch.relu(self.conv2(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def format_fixtures():
    """One random-weight classifier in every format a user brings, with the input, its logits and
    the saliency map (|d logit / d input|, max over channels) for the top class, from PyTorch."""
    torch.manual_seed(3)
    net = TinyClassifier()
    randomize_batch_norms(net)
    net.eval()
    x = torch.rand(1, 3, 12, 12)
    xg = x.clone().requires_grad_(True)
    y = net(xg)
    top = int(y.argmax())
    y[0, top].backward()
    saliency = xg.grad.abs().amax(dim=1)  # [1, H, W]
    folder = "formats"
    np.save(path(folder, "input.npy"), x[0].numpy())
    np.save(path(folder, "logits.npy"), y.detach()[0].numpy())
    np.save(path(folder, "saliency.npy"), saliency.numpy())
    with open(path(folder, "labels.txt"), "w") as f:
        f.write("cat\ndog\nbird\nfish\n")
    sd = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(net.state_dict(), path(folder, "tiny.pth"))
    save_file({k: v.contiguous() for k, v in sd.items()}, path(folder, "tiny.safetensors"))
    np.savez(path(folder, "tiny.npz"), **{k: v.numpy() for k, v in sd.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), path(folder, "tiny_legacy.onnx"), dynamo=False, opset_version=13,
                          input_names=["input"], output_names=["logits"])
    torch.onnx.export(net, (x,), path(folder, "tiny_dynamo.onnx"), dynamo=True, external_data=False, verbose=False)
    without_stack_traces(path(folder, "tiny_dynamo.onnx"))


class GraphOperatorNet(nn.Module):
    """The operators of the later torchvision families and of other exporters, in one small graph:
    hard swish and hard sigmoid (MobileNetV3), a channel shuffle and chunk (ShuffleNet v2), SiLU
    (EfficientNet), a layer norm over channels between permutes, GELU and a linear layer on the
    last axis (ConvNeXt), PReLU, nearest upsampling, minimum/maximum, neg, exp, pow, sqrt, sums and
    maxima over axes, where on constants and expand."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.prelu = nn.PReLU(8)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, groups=4)
        self.norm = nn.LayerNorm(8)
        self.pointwise = nn.Linear(8, 8)
        self.register_buffer("mask", torch.tensor([1.0, 0, 1, 1, 0, 1, 1, 0]).view(1, 8, 1, 1) > 0)
        self.fc = nn.Linear(8 + 8 + 6, 5)

    def forward(self, x):
        x = self.prelu(self.conv1(x))                             # [1, 8, 6, 6]
        b, c, h, w = x.shape
        x = x.view(b, 2, c // 2, h, w).transpose(1, 2).reshape(b, c, h, w)  # channel shuffle
        left, right = x.chunk(2, dim=1)
        right = F.hardswish(self.conv2(right)) * F.hardsigmoid(right)
        x = torch.cat([left, right * torch.sigmoid(right)], dim=1)
        y = self.norm(x.permute(0, 2, 3, 1))                       # NHWC
        y = self.pointwise(F.gelu(y)).permute(0, 3, 1, 2)          # back to NCHW
        y = torch.where(self.mask, y, -y)
        z = F.interpolate(y, scale_factor=2, mode="nearest")       # [1, 8, 12, 12]
        z = torch.maximum(torch.minimum(z, torch.tensor(1.5)), torch.tensor(-1.5))
        pooled = z.sum(dim=(2, 3)) / 144.0 + torch.sqrt(torch.exp(-z).mean(dim=(2, 3)))
        peaks = torch.amax(y, dim=(2, 3)).pow(2.0)
        rows = (z.mean(dim=1) + torch.zeros(1, 1, 12).expand(1, 12, 12)).amax(dim=2)[:, :6]
        return self.fc(torch.cat([pooled, peaks, rows], dim=1))


def graph_operator_fixtures():
    torch.manual_seed(4)
    net = GraphOperatorNet().eval()
    x = torch.randn(1, 3, 6, 6)
    xg = x.clone().requires_grad_(True)
    y = net(xg)
    y[0, 2].backward()
    np.save(path("onnx", "graph_operators_input.npy"), x.numpy())
    np.save(path("onnx", "graph_operators_output.npy"), y.detach().numpy())
    np.save(path("onnx", "graph_operators_gradient.npy"), xg.grad.numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), path("onnx", "graph_operators_legacy.onnx"), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["output"])
    torch.onnx.export(net, (x,), path("onnx", "graph_operators_dynamo.onnx"), dynamo=True, external_data=False,
                      verbose=False)
    without_stack_traces(path("onnx", "graph_operators_dynamo.onnx"))
    import onnx
    for kind in ["legacy", "dynamo"]:
        ops = sorted({n.op_type for n in onnx.load(path("onnx", "graph_operators_%s.onnx" % kind)).graph.node})
        print(kind, ops)


GROUPS = {
    "numpy": numpy_fixtures,
    "safetensors": safetensors_fixture,
    "pytorch": state_dict_fixtures,
    "onnx": onnx_fixtures,
    "onnx-operators": operator_fixtures,
    "onnx-graph-operators": graph_operator_fixtures,
    "formats": format_fixtures,
}

if __name__ == "__main__":
    # With group names (python scripts/make-model-fixtures.py onnx-operators), only those are
    # rewritten; without, every folder is cleared and written again.
    chosen = sys.argv[1:]
    unknown = [g for g in chosen if g not in GROUPS]
    if unknown:
        sys.exit("unknown fixture group(s) %s; expected some of %s" % (", ".join(unknown), ", ".join(GROUPS)))
    if not chosen:
        for sub in ["npy", "npz", "safetensors", "pytorch", "onnx", "formats"]:
            shutil.rmtree(os.path.join(ROOT, sub), ignore_errors=True)
    for name in chosen or GROUPS:
        GROUPS[name]()
