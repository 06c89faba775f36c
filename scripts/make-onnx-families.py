#!/usr/bin/env python3
"""Exports one network of every torchvision classification family with both of PyTorch's ONNX
exporters, with seeded random weights, and writes what cnnlab is compared with.

    /root/torchenv/bin/python scripts/make-onnx-families.py [FOLDER] [--only=resnet18,vgg11] [--retime]

With FAMILIES_CONDITIONED=1 the weights are variance-preserving instead of torchvision's own
(see `condition`); with FAMILIES_FLOAT64=1 PyTorch's float64 input gradient is computed too, to
measure PyTorch's own float32 error (slow on the large families).

FOLDER (default ~/.cache/cnnlab/onnx-families) gets, per network NAME:

    NAME_legacy.onnx              torch.onnx.export(..., dynamo=False), opset 17
    NAME_dynamo.onnx(.data)       torch.onnx.export(..., dynamo=True)
    NAME_input.npy                the input [1, 3, H, W]
    NAME_logits_legacy.npy        onnxruntime's logits for each file
    NAME_logits_dynamo.npy
    NAME_gradient.npy             PyTorch's d logit[top] / d input, [1, 3, H, W]
    NAME.json                     the top class, onnxruntime's forward time on 2 threads, the ops

The slower test (Tests/ModelsTests/ONNXFamilyTests.swift, CNNLAB_ONNX_FAMILIES=FOLDER) and
`scripts/onnx-family-table` read them. Nothing here is committed: the files are large.
"""
import copy
import json
import os
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn as nn
import torchvision.models as tvm

FAMILIES = [
    ("alexnet", lambda: tvm.alexnet()),
    ("vgg11", lambda: tvm.vgg11()),
    ("resnet18", lambda: tvm.resnet18()),
    ("resnext50_32x4d", lambda: tvm.resnext50_32x4d()),
    ("wide_resnet50_2", lambda: tvm.wide_resnet50_2()),
    ("squeezenet1_1", lambda: tvm.squeezenet1_1()),
    ("densenet121", lambda: tvm.densenet121()),
    ("googlenet", lambda: tvm.googlenet(aux_logits=False, init_weights=True)),
    ("inception_v3", lambda: tvm.inception_v3(aux_logits=False, init_weights=True)),
    ("mobilenet_v2", lambda: tvm.mobilenet_v2()),
    ("mobilenet_v3_small", lambda: tvm.mobilenet_v3_small()),
    ("mnasnet0_5", lambda: tvm.mnasnet0_5()),
    ("shufflenet_v2_x0_5", lambda: tvm.shufflenet_v2_x0_5()),
    ("efficientnet_b0", lambda: tvm.efficientnet_b0()),
    ("regnet_x_400mf", lambda: tvm.regnet_x_400mf()),
    ("convnext_tiny", lambda: tvm.convnext_tiny()),
]

SIZE = {"inception_v3": 299}

# --retime: only onnxruntime's times again, for the exports already in FOLDER.
RETIME = "--retime" in sys.argv[1:]

# torchvision's own initialisation by default; FAMILIES_CONDITIONED=1 for variance-preserving weights.
CONDITIONED = os.environ.get("FAMILIES_CONDITIONED") == "1"


def randomize_batch_norms(net):
    """Non-trivial statistics, so that a loader that ignores them is caught."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)


def condition(net, size):
    """Weights a trained network could have: variance-preserving (He) initialisation, batch-norm
    scales and shifts drawn at random, and running statistics measured on random images, so that
    activations neither vanish nor explode and the input gradient is far above float32's rounding.
    (torchvision's own initialisation leaves some families, GoogLeNet among them, with input
    gradients near 1e-15, where any two float32 implementations disagree in the leading digit.)"""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.uniform_(m.bias, -0.1, 0.1)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=1 / m.in_features ** 0.5)
            nn.init.uniform_(m.bias, -0.1, 0.1)
        elif isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None  # a cumulative average over the calibration batches
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net(torch.rand(4, 3, size, size))
    net.eval()


def ops(path):
    import onnx
    model = onnx.load(path, load_external_data=False)
    return sorted({n.op_type for n in model.graph.node})


def ort_run(path, x):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    y = session.run(None, {name: x})[0]
    times = []
    for _ in range(7):
        start = time.perf_counter()
        session.run(None, {name: x})
        times.append(time.perf_counter() - start)
    return y, sorted(times)[len(times) // 2] * 1000


def export(name, make, folder):
    torch.manual_seed(0)
    net = make()
    size = SIZE.get(name, 224)
    if CONDITIONED:
        condition(net, size)
    else:
        randomize_batch_norms(net)
        net.eval()
    x = torch.rand(1, 3, size, size)
    xg = x.clone().requires_grad_(True)
    y = net(xg)
    top = int(y.argmax())
    y[0, top].backward()
    np.save(os.path.join(folder, name + "_input.npy"), x.numpy())
    np.save(os.path.join(folder, name + "_gradient.npy"), xg.grad.numpy())
    np.save(os.path.join(folder, name + "_logits_torch.npy"), y.detach().numpy())
    info = {"top": top, "size": size, "gradient_max": float(xg.grad.abs().max())}
    if os.environ.get("FAMILIES_FLOAT64") == "1":
        # PyTorch's own float32 rounding: its float32 input gradient against its float64 one (slow).
        x64 = x.double().clone().requires_grad_(True)
        net64 = copy.deepcopy(net).double()
        net64(x64)[0, top].backward()
        g64 = x64.grad.numpy()
        info["torch_f32_vs_f64_gradient"] = float(np.abs(xg.grad.numpy() - g64).max() / np.abs(g64).max())
    legacy = os.path.join(folder, name + "_legacy.onnx")
    dynamo = os.path.join(folder, name + "_dynamo.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), legacy, dynamo=False, opset_version=17, input_names=["input"], output_names=["logits"])
        torch.onnx.export(net, (x,), dynamo, dynamo=True, external_data=True, verbose=False)
    for kind, path in [("legacy", legacy), ("dynamo", dynamo)]:
        logits, ms = ort_run(path, x.numpy())
        np.save(os.path.join(folder, "%s_logits_%s.npy" % (name, kind)), logits)
        info["ort_ms_" + kind] = ms
        info["ops_" + kind] = ops(path)
        info["ort_vs_torch_" + kind] = float(np.abs(logits - y.detach().numpy()).max() / np.abs(y.detach().numpy()).max())
    with open(os.path.join(folder, name + ".json"), "w") as f:
        json.dump(info, f, indent=1)
    print(name, info["ort_ms_legacy"], info["ops_legacy"], info["ops_dynamo"], flush=True)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--only") and a != "--retime"]
    only = None
    for a in sys.argv[1:]:
        if a.startswith("--only"):
            only = set(a.split("=", 1)[1].split(","))
    folder = os.path.expanduser(args[0] if args else "~/.cache/cnnlab/onnx-families")
    os.makedirs(folder, exist_ok=True)
    torch.set_num_threads(2)
    for name, make in FAMILIES:
        if only and name not in only:
            continue
        if RETIME:
            retime(name, folder)
        else:
            export(name, make, folder)


def retime(name, folder):
    """onnxruntime's forward time again, for exports already written: run it on a quiet machine
    just before the test, so that both sides of the ratio are measured under the same load."""
    path = os.path.join(folder, name + ".json")
    if not os.path.exists(path):
        return
    with open(path) as f:
        info = json.load(f)
    x = np.load(os.path.join(folder, name + "_input.npy"))
    for kind in ["legacy", "dynamo"]:
        _, info["ort_ms_" + kind] = ort_run(os.path.join(folder, "%s_%s.onnx" % (name, kind)), x)
    with open(path, "w") as f:
        json.dump(info, f, indent=1)
    print(name, round(info["ort_ms_legacy"], 2), round(info["ort_ms_dynamo"], 2), flush=True)


if __name__ == "__main__":
    main()
