#!/usr/bin/env python3
"""The workloads of `cnn bench`, run in PyTorch on the CPU, printed as the same JSON lines.

    /root/torchenv/bin/python scripts/bench-torch.py [--only NAME] [--repeats N] [--warmup N]

Each line: workload, ms (median of the timed runs after the warm-up runs), gflops (null
where no count applies), threads, maxrss_mb (peak resident memory of the process that ran
the workload), blas. Without --only, every workload runs in a fresh process of its own, so
its memory figure is its own and not the largest so far. Read the figures as ratios against
`cnn bench` run on the same machine at the same time.
"""
import argparse
import difflib
import json
import resource
import statistics
import subprocess
import sys
import time

THREADS = 2


# ---------------------------------------------------------------------------------------
# FLOP counts (a multiply-add counts 2), the same formulas as Sources/cnn/Workloads.swift.

def matmul_flops(m, n, k):
    """C[m x n] = A[m x k] . B[k x n]."""
    return 2 * m * n * k


def conv_out(size, kernel, stride, pad):
    return (size + 2 * pad - kernel) // stride + 1


def conv_flops(n, c, k, kh, kw, oh, ow, groups=1):
    """2*N*K*(C/groups)*kh*kw*OH*OW. Each backward pass (to the input, to the weights) is a
    matrix product of the same size, so it counts the same."""
    return 2 * n * k * (c // groups) * kh * kw * oh * ow


# VGG16 (configuration D): 3x3 convolutions with padding 1, "M" a 2x2 max pool.
VGG16_LAYERS = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
VGG16_CLASSIFIER = [(512 * 7 * 7, 4096), (4096, 4096), (4096, 1000)]


def vgg16_forward_flops(size=224):
    """Convolutions and fully connected layers (biases, ReLU and pooling are not counted)."""
    flops, c, hw = 0, 3, size
    for layer in VGG16_LAYERS:
        if layer == "M":
            hw //= 2
        else:
            flops += conv_flops(1, c, layer, 3, 3, hw, hw)
            c = layer
    return flops + sum(matmul_flops(1, o, i) for i, o in VGG16_CLASSIFIER)


def vgg16_saliency_flops():
    """Forward plus backward to the input. Every layer's input gradient costs what its forward
    did, the first layer's included: its input gradient is the saliency map itself. No weight
    gradients are taken. So exactly twice the forward."""
    return 2 * vgg16_forward_flops()


def lenet_forward_flops():
    # conv 1->8 5x5 on 28x28 -> 24x24, pool -> 12x12, conv 8->16 5x5 -> 8x8, pool -> 4x4, linear 256->10.
    return conv_flops(1, 1, 8, 5, 5, 24, 24) + conv_flops(1, 8, 16, 5, 5, 8, 8) + matmul_flops(1, 10, 256)


# EfficientNet-Lite0 as efficientnet-lite-pytorch builds it: stages of MBConv blocks
# (repeats, kernel, stride, expand ratio, input and output channels), TensorFlow "SAME" padding.
EFFNET_LITE0_STAGES = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
                       (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]


def effnet_lite0_forward_flops(size=224):
    """Convolutions (depthwise ones count C/groups = 1 input channel) and the linear layer;
    batch norms, ReLU6, skips and pooling are not counted. SAME padding: a stride-s layer
    leaves ceil(size / s) positions."""
    hw = -(-size // 2)
    flops = conv_flops(1, 3, 32, 3, 3, hw, hw)
    for repeats, k, stride, expand, cin, cout in EFFNET_LITE0_STAGES:
        for r in range(repeats):
            c = cin if r == 0 else cout
            hidden = c * expand
            if expand != 1:
                flops += conv_flops(1, c, hidden, 1, 1, hw, hw)
            hw = -(-hw // (stride if r == 0 else 1))
            flops += conv_flops(1, hidden, hidden, k, k, hw, hw, groups=hidden)
            flops += conv_flops(1, hidden, cout, 1, 1, hw, hw)
    return flops + conv_flops(1, 320, 1280, 1, 1, hw, hw) + matmul_flops(1, 1000, 1280)


CONV3X3 = dict(n=1, c=128, k=256, kh=3, kw=3, oh=56, ow=56)
CONV11S4 = dict(n=1, c=3, k=96, kh=11, kw=11, oh=conv_out(224, 11, 4, 2), ow=conv_out(224, 11, 4, 2))

FLOPS = {
    "sgemm.2048": matmul_flops(2048, 2048, 2048),
    "conv3x3.forward": conv_flops(**CONV3X3),
    "conv3x3.backward_input": conv_flops(**CONV3X3),
    "conv3x3.backward_weights": conv_flops(**CONV3X3),
    "conv11s4.forward": conv_flops(**CONV11S4),
    "conv11s4.backward_input": conv_flops(**CONV11S4),
    "vgg16.forward": vgg16_forward_flops(),
    "vgg16.saliency": vgg16_saliency_flops(),
    # One step of class model visualization: the saliency pass and an update of the image.
    "vgg16.classviz_step": vgg16_saliency_flops(),
    "effnet.forward": effnet_lite0_forward_flops(),
    # Forward, then backward to the input (the stem's input gradient included): twice the forward.
    "effnet.classviz_step": 2 * effnet_lite0_forward_flops(),
    # One step of the default class-model recipe (Lucent's render_vis): the same passes.
    "effnet.render_step": 2 * effnet_lite0_forward_flops(),
    # Forward, then backward to the input through every layer: twice the forward.
    "lenet.forward_backward": 2 * lenet_forward_flops(),
}


# ---------------------------------------------------------------------------------------
# Workloads: each builds its inputs (not timed) and returns the function to time.

def sgemm(torch):
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    out = torch.empty(2048, 2048)
    return lambda: torch.mm(a, b, out=out)


def conv_forward(torch, c, k, kernel, stride, pad, size):
    x, w, b = torch.randn(1, c, size, size), torch.randn(k, c, kernel, kernel), torch.randn(k)

    def run():
        with torch.inference_mode():
            torch.nn.functional.conv2d(x, w, b, stride=stride, padding=pad)
    return run


def conv_backward(torch, c, k, kernel, stride, pad, size, to):
    """The gradient of a convolution to its input (dX) or to its weights (dW) alone.

    The forward runs once here, untimed; the timed part is autograd's backward through the
    recorded convolution, keeping the graph for the next run. Only `to` requires a gradient,
    so autograd computes nothing else (no bias gradient, no gradient to the other operand).
    """
    x, w, b = torch.randn(1, c, size, size), torch.randn(k, c, kernel, kernel), torch.randn(k)
    target = {"input": x, "weights": w}[to]
    target.requires_grad_(True)
    y = torch.nn.functional.conv2d(x, w, b, stride=stride, padding=pad)
    dy = torch.randn_like(y)
    return lambda: torch.autograd.grad(y, target, dy, retain_graph=True)


def frozen(torch, model):
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def vgg16(torch):
    import torchvision
    return frozen(torch, torchvision.models.vgg16(weights=None))


def vgg16_forward(torch):
    model, x = vgg16(torch), torch.randn(1, 3, 224, 224)

    def run():
        with torch.inference_mode():
            model(x)
    return run


def input_gradient_of_top_logit(torch, model, shape):
    """Forward, then the gradient of the largest logit with respect to the input."""
    x = torch.randn(*shape)

    def run():
        xg = x.clone().requires_grad_(True)
        logits = model(xg)
        logits[0, logits[0].argmax()].backward()
        return xg.grad
    return run


def vgg16_saliency(torch):
    return input_gradient_of_top_logit(torch, vgg16(torch), (1, 3, 224, 224))


def vgg16_classviz_step(torch):
    """One step of argmax_I S_c(I) - l2 |I|^2 by gradient ascent, from a zero image."""
    model = vgg16(torch)
    x = torch.zeros(1, 3, 224, 224)

    def run():
        xg = x.clone().requires_grad_(True)
        objective = model(xg)[0, 0] - 0.01 * (xg * xg).sum()
        objective.backward()
        with torch.no_grad():
            x.add_(xg.grad, alpha=1.0)
    return run


def effnet(torch):
    """The reference package's EfficientNet-Lite0 (efficientnet-lite-pytorch, random weights)."""
    from efficientnet_lite_pytorch import EfficientNet
    return frozen(torch, EfficientNet.from_name("efficientnet-lite0"))


def effnet_forward(torch):
    model, x = effnet(torch), torch.randn(1, 3, 224, 224)

    def run():
        with torch.inference_mode():
            model(x)
    return run


def effnet_classviz_step(torch):
    return input_gradient_of_top_logit(torch, effnet(torch), (1, 3, 224, 224))


def effnet_render_step(torch):
    """One step of Lucent's render_vis with its defaults: the Fourier image with decorrelated
    colour (param.image(224)), the standard transforms, the network's forward and backward
    passes to the image's parameters, and Adam's update (lr 0.05)."""
    from lucent.optvis import param, transform
    model = effnet(torch)
    params, image_f = param.image(224)
    optimizer = torch.optim.Adam(params, lr=5e-2)
    transform_f = transform.compose(transform.standard_transforms + [lambda x: x * 2 - 1])

    def run():
        def closure():
            optimizer.zero_grad()
            loss = -model(transform_f(image_f()))[:, 0].mean()
            loss.backward()
            return loss
        optimizer.step(closure)
    return run


def lenet_forward_backward(torch):
    nn = torch.nn
    model = frozen(torch, nn.Sequential(
        nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(256, 10)))
    return input_gradient_of_top_logit(torch, model, (1, 1, 28, 28))


C3 = dict(c=128, k=256, kernel=3, stride=1, pad=1, size=56)
C11 = dict(c=3, k=96, kernel=11, stride=4, pad=2, size=224)

WORKLOADS = {
    "sgemm.2048": sgemm,
    "conv3x3.forward": lambda t: conv_forward(t, **C3),
    "conv3x3.backward_input": lambda t: conv_backward(t, **C3, to="input"),
    "conv3x3.backward_weights": lambda t: conv_backward(t, **C3, to="weights"),
    "conv11s4.forward": lambda t: conv_forward(t, **C11),
    "conv11s4.backward_input": lambda t: conv_backward(t, **C11, to="input"),
    "vgg16.forward": vgg16_forward,
    "vgg16.saliency": vgg16_saliency,
    "vgg16.classviz_step": vgg16_classviz_step,
    "effnet.forward": effnet_forward,
    "effnet.classviz_step": effnet_classviz_step,
    "effnet.render_step": effnet_render_step,
    "lenet.forward_backward": lenet_forward_backward,
}
assert WORKLOADS.keys() == FLOPS.keys()


# ---------------------------------------------------------------------------------------

def round_gflops(g):
    """One decimal, or three significant digits below 1 (tiny workloads such as LeNet)."""
    return round(g, 1) if g >= 1 else float(f"{g:.3g}")


def run_one(name, repeats, warmup):
    import torch
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    body = WORKLOADS[name](torch)
    for _ in range(warmup):
        body()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        body()
        times.append((time.perf_counter() - start) * 1e3)
    ms = statistics.median(times)
    backends = [b for b in ("mkl", "mkldnn") if getattr(torch.backends, b).is_available()]
    line = {
        "workload": name,
        "ms": round(ms, 3),
        "gflops": round_gflops(FLOPS[name] / (ms * 1e6)) if ms > 0 else None,
        "threads": torch.get_num_threads(),
        "maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),  # kB on Linux
        "blas": " ".join(["torch", torch.__version__] + backends),
    }
    print(json.dumps(line), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", metavar="NAME", help="run only this workload")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs; the median is reported")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs before the timed ones")
    args = parser.parse_args()
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be at least 1 and --warmup 0 or more")
    if args.only is not None:
        if args.only not in WORKLOADS:
            near = difflib.get_close_matches(args.only, WORKLOADS, n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            parser.error(f"unknown workload '{args.only}'{hint}; the workloads are: {', '.join(WORKLOADS)}")
        run_one(args.only, args.repeats, args.warmup)
        return
    # One fresh process per workload, so that each memory figure is that workload's own.
    for name in WORKLOADS:
        subprocess.run([sys.executable, __file__, "--only", name,
                        "--repeats", str(args.repeats), "--warmup", str(args.warmup)], check=True)


if __name__ == "__main__":
    main()
