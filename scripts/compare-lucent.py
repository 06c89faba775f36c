#!/usr/bin/env python3
"""Class models of cnnlab's classviz beside Lucent's default render_vis, on EfficientNet-Lite0.

    /root/torchenv/bin/python scripts/compare-lucent.py [--classes dumbbell,cup] [--out DIR]
        [--steps N] [--lucent-steps 512] [--skip-lucent]

Needs torch, torch-lucent and efficientnet-lite-pytorch==0.1.0, and the weights fetched by
`cnn fetch efficientnet-lite0 efficientnet-lite1 efficientnet-lite2` (read from the cache).
For each of the lecture's 12 classes it makes one class model with `cnn run` (classviz's
defaults) and one with Lucent (Fourier image with decorrelated colour, the standard
transforms, Adam 0.05, 512 steps), and judges both the same way:

- transfer: the class's rank (1 = top) on EfficientNet-Lite1 and Lite2, which did not make it
  (the 224 picture resized to their 240 and 260);
- robustness: Lite0's mean probability of the class over 16 random jitters (up to 16 px),
  scales (0.9 to 1.1) and rotations (-10 to 10 degrees) of the picture;
- time: seconds per class (cnnlab: the `cnn run`, less the time to load the network), wall
  clock and CPU (user + system; on a busy machine CPU / 2 is what 2 idle cores would take).

Prints a Markdown table and writes the pictures to DIR (default /tmp/compare-lucent).
"""
import argparse
import glob
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

CLASSES = ["dumbbell", "cup", "dalmatian", "bell pepper", "lemon", "Siberian husky",
           "washer", "computer keyboard", "kit fox", "goose", "ostrich", "limousine"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.expanduser("~/.cache/cnnlab")


def class_names():
    with open(os.path.join(ROOT, "Sources/Models/Resources/imagenet-classes.txt")) as f:
        return [line.strip() for line in f if line.strip()]


def network(n):
    from efficientnet_lite_pytorch import EfficientNet
    path = glob.glob(os.path.join(CACHE, f"efficientnet-lite{n}", "*.pth"))[0]
    model = EfficientNet.from_pretrained(f"efficientnet-lite{n}", weights_path=path)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def scores(model, images, size):
    """Logits for pictures [N, 3, H, W] in [0, 1], resized to `size` and put in [-1, 1]."""
    if images.shape[-1] != size:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    with torch.no_grad():
        return model(images * 2 - 1)


def rank(logits, c):
    return int((logits[0] > logits[0, c]).sum().item()) + 1


def robust_probability(model, image, c, draws=16, seed=0):
    """Lite0's mean probability of class c over random jitter, scale and rotation."""
    g = np.random.default_rng(seed)
    batch = []
    for _ in range(draws):
        angle = np.deg2rad(g.uniform(-10, 10))
        s = g.uniform(0.9, 1.1)
        tx, ty = g.uniform(-16, 16, size=2) / 112
        theta = torch.tensor([[np.cos(angle) / s, -np.sin(angle) / s, tx],
                              [np.sin(angle) / s, np.cos(angle) / s, ty]], dtype=torch.float32)[None]
        grid = F.affine_grid(theta, image.shape, align_corners=False)
        batch.append(F.grid_sample(image, grid, mode="bilinear", padding_mode="reflection", align_corners=False))
    p = torch.softmax(scores(model, torch.cat(batch), 224), dim=1)[:, c]
    return float(p.mean())


def load_png(path):
    from PIL import Image
    a = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(a).permute(2, 0, 1)[None]


def lucent_class_model(model, c, steps, seed):
    from lucent.optvis import param, render, transform
    torch.manual_seed(seed)
    np.random.seed(seed)
    transforms = transform.standard_transforms + [lambda x: x * 2 - 1]
    images = render.render_vis(model, f"_fc:{c}", param_f=lambda: param.image(224), transforms=transforms,
                               thresholds=(steps,), preprocess=False, show_image=False, progress=False)
    return torch.from_numpy(images[-1]).permute(0, 3, 1, 2)


def cnn_class_model(cnn, name, path, steps):
    extra = f", steps={steps}" if steps else ""
    script = path + ".cnn"
    with open(script, "w") as f:
        f.write(f'net = load("efficientnet-lite0")\nsave(classviz(net, class="{name}"{extra}), "{path}")\n')
    return timed_run([cnn, "run", script])


def timed_run(command):
    """Wall and CPU seconds of a child process."""
    before, start = children_cpu(), time.time()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.time() - start, children_cpu() - before


def children_cpu():
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--classes", default=",".join(CLASSES))
    parser.add_argument("--out", default="/tmp/compare-lucent")
    parser.add_argument("--steps", type=int, default=0, help="classviz steps (0: its default)")
    parser.add_argument("--lucent-steps", type=int, default=512)
    parser.add_argument("--skip-lucent", action="store_true")
    parser.add_argument("--cnn", default=os.path.join(ROOT, ".build/release/cnn"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    os.makedirs(args.out, exist_ok=True)
    names = class_names()
    lower = [n.lower() for n in names]
    nets = {n: network(n) for n in range(3)}
    sizes = {0: 224, 1: 240, 2: 260}

    # Loading the network alone, to take from cnnlab's times.
    load_script = os.path.join(args.out, "load.cnn")
    with open(load_script, "w") as f:
        f.write('net = load("efficientnet-lite0")\n')
    load_time, load_cpu = timed_run([args.cnn, "run", load_script])

    rows = []
    for name in args.classes.split(","):
        c = lower.index(name.lower())
        row = {"class": name}
        path = os.path.join(args.out, f"cnnlab-{name.replace(' ', '_')}.png")
        wall, cpu = cnn_class_model(args.cnn, name, path, args.steps)
        row["cnn_time"], row["cnn_cpu"] = wall - load_time, cpu - load_cpu
        images = {"cnnlab": load_png(path)}
        if not args.skip_lucent:
            start, cpu = time.time(), time.process_time()
            images["lucent"] = lucent_class_model(nets[0], c, args.lucent_steps, seed=0)
            row["lucent_time"], row["lucent_cpu"] = time.time() - start, time.process_time() - cpu
            from PIL import Image
            Image.fromarray((images["lucent"][0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(
                os.path.join(args.out, f"lucent-{name.replace(' ', '_')}.png"))
        for who, image in images.items():
            row[f"{who}_p0"] = float(torch.softmax(scores(nets[0], image, 224), 1)[0, c])
            row[f"{who}_lite1"] = rank(scores(nets[1], image, sizes[1]), c)
            row[f"{who}_lite2"] = rank(scores(nets[2], image, sizes[2]), c)
            row[f"{who}_robust"] = robust_probability(nets[0], image, c)
        rows.append(row)
        print(row, file=sys.stderr, flush=True)

    who = ["cnnlab"] + ([] if args.skip_lucent else ["lucent"])
    header = "| class | " + " | ".join(f"{w} Lite0 p | {w} p transformed | {w} Lite1 rank | {w} Lite2 rank | {w} s | {w} CPU s" for w in who) + " |"
    print(header)
    print("|" + "---|" * (1 + 6 * len(who)))
    for r in rows:
        cells = [r["class"]]
        for w in who:
            t = r["cnn_time"] if w == "cnnlab" else r["lucent_time"]
            cpu = r["cnn_cpu"] if w == "cnnlab" else r["lucent_cpu"]
            cells += [f"{r[w + '_p0']:.3f}", f"{r[w + '_robust']:.3f}", str(r[w + "_lite1"]), str(r[w + "_lite2"]), f"{t:.1f}", f"{cpu:.1f}"]
        print("| " + " | ".join(cells) + " |")
    for w in who:
        t5_1 = sum(r[w + "_lite1"] <= 5 for r in rows)
        t5_2 = sum(r[w + "_lite2"] <= 5 for r in rows)
        t1_2 = sum(r[w + "_lite2"] == 1 for r in rows)
        robust = np.mean([r[w + "_robust"] for r in rows])
        t = np.mean([r["cnn_time"] if w == "cnnlab" else r["lucent_time"] for r in rows])
        cpu = np.mean([r["cnn_cpu"] if w == "cnnlab" else r["lucent_cpu"] for r in rows])
        print(f"\n{w}: Lite1 top-5 {t5_1}/{len(rows)}, Lite2 top-5 {t5_2}/{len(rows)} (top-1 {t1_2}), "
              f"mean p under transforms {robust:.3f}, mean {t:.1f} s a class ({cpu:.1f} CPU s)")


if __name__ == "__main__":
    main()
