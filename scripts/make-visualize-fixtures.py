#!/usr/bin/env python3
"""Writes the reference attributions of Tests/VisualizeTests/Fixtures.

Run with a Python that has torch, captum, safetensors, numpy and pillow:

    python scripts/make-visualize-fixtures.py

The bundled default model is rebuilt in PyTorch from its safetensors file (weights and the
architecture and input spec in its metadata), with the spec's normalization as the first step
of its forward pass, so that inputs and baselines are display images in [0, 1] as in cnnlab.
For a few bundled sample images it writes, into one compressed .npz:

  input/<sample>                     the image, [1, 28, 28]
  logits/<sample>                    the scores before the softmax, [10]
  gradcam/<layer>/<sample>/<class>   Grad-CAM upsampled to 28 x 28, [1, 28, 28]
  gradcam_coarse/<layer>/<sample>/<class>   at the layer's resolution, [1, h, w]
  ig/<method>/<sample>/<class>       integrated gradients (zero baseline, 50 steps), [1, 28, 28]

Grad-CAM comes from Captum's LayerGradCam (relu_attributions=True, the ReLU of Selvaraju et
al. and pytorch-grad-cam) and LayerAttribution.interpolate (bilinear, align_corners=False),
checked here against the formula written out with autograd; integrated gradients from
Captum's IntegratedGradients with its default Gauss-Legendre rule and with riemann_right.
"""
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam
from PIL import Image
from safetensors import safe_open

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "..", "Sources", "Models", "Resources", "fashion.safetensors")
SAMPLES = os.path.join(HERE, "..", "Sources", "Models", "Resources", "samples")
OUT = os.path.join(HERE, "..", "Tests", "VisualizeTests", "Fixtures", "fashion-attributions.npz")

# (sample, classes to attribute): the true class, and for the sneaker also a wrong one.
CASES = [("sneaker-1", [7, 5]), ("coat-2", [4]), ("bag-1", [8]), ("ankle-boot-1", [9]), ("trouser-1", [1])]


class Fashion(nn.Module):
    """The default model's layers, in the order of its metadata."""

    def __init__(self, mean, std):
        super().__init__()
        self.mean, self.std = mean, std
        self.conv1 = nn.Conv2d(1, 16, 5, padding=2)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(16, 32, 5, padding=2)
        self.pool2 = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(32 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, image):
        x = (image - self.mean) / self.std
        x = self.pool1(F.relu(self.conv1(x)))
        x = self.pool2(F.relu(self.conv2(x)))
        x = F.relu(self.fc1(torch.flatten(x, 1)))
        return self.fc2(x)  # dropout is the identity at inference


def load_model():
    with safe_open(MODEL, "pt") as f:
        description = json.loads(f.metadata()["cnnlab.network"])
        kinds = [n["kind"] for n in description["nodes"]]
        assert kinds == ["conv2d", "relu", "maxpool", "conv2d", "relu", "maxpool", "flatten", "linear", "relu",
                         "dropout", "linear"], kinds
        spec = description["spec"]
        model = Fashion(spec["mean"][0], spec["std"][0])
        model.load_state_dict({k: f.get_tensor(k) for k in f.keys()})
    return model.eval()


def read_sample(name):
    pixels = np.asarray(Image.open(os.path.join(SAMPLES, name + ".png")).convert("L"), dtype=np.float32) / 255
    return torch.from_numpy(pixels)[None, None]  # [1, 1, 28, 28]


def gradcam_by_formula(model, layer, x, target):
    """ReLU(Σ_k α_k A^k) with α_k the spatial mean of ∂S_c/∂A^k."""
    saved = {}
    handle = layer.register_forward_hook(lambda m, i, o: saved.setdefault("a", o))
    score = model(x)[0, target]
    handle.remove()
    a = saved["a"]
    (g,) = torch.autograd.grad(score, a)
    weights = g.mean(dim=(2, 3), keepdim=True)
    return F.relu((weights * a).sum(dim=1, keepdim=True))


def main():
    torch.manual_seed(0)
    model = load_model()
    arrays = {}
    for sample, classes in CASES:
        x = read_sample(sample)
        arrays[f"input/{sample}"] = x[0].numpy()
        with torch.no_grad():
            arrays[f"logits/{sample}"] = model(x)[0].numpy()
        for target in classes:
            for name in ["conv2", "pool2"]:
                layer = getattr(model, name)
                coarse = LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=True)
                expected = gradcam_by_formula(model, layer, x, target)
                assert torch.allclose(coarse, expected, atol=1e-6), "Captum and the formula disagree"
                up = LayerAttribution.interpolate(coarse, (28, 28), interpolate_mode="bilinear")
                arrays[f"gradcam_coarse/{name}/{sample}/{target}"] = coarse[0].detach().numpy()
                arrays[f"gradcam/{name}/{sample}/{target}"] = up[0].detach().numpy()
            ig = IntegratedGradients(model)
            for method in ["gausslegendre", "riemann_right"]:
                attributions = ig.attribute(x, baselines=torch.zeros_like(x), target=target, n_steps=50, method=method)
                arrays[f"ig/{method}/{sample}/{target}"] = attributions[0].detach().numpy()
    np.savez_compressed(OUT, **{k: v.astype(np.float32) for k, v in arrays.items()})
    print(f"wrote {len(arrays)} arrays to {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
