#!/usr/bin/env python3
"""Writes the broken and hostile files of Tests/ModelsTests/Fixtures/hostile/.

Each file lies about itself in one way: a header that claims more than the file holds, sizes
that would exhaust memory, an input spec that divides by zero, a picture of 2^30 x 2^30 pixels.
Tests/ShellTests/HostileFileTests.swift loads every one through `cnn run` and expects a
refusal naming the file; docs/SECURITY.md lists what each one is told. Python's standard
library only:

    python3 scripts/make-hostile-files.py [folder]
"""
import io
import json
import os
import struct
import sys
import zipfile
import zlib

here = os.path.dirname(os.path.abspath(__file__))
folder = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "Tests", "ModelsTests", "Fixtures", "hostile")
os.makedirs(folder, exist_ok=True)


def write(name, data):
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def safetensors(tensors, metadata=None, header_extra=None):
    """tensors: name -> (dtype, shape, bytes)."""
    header, data, offset = {}, b"", 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        data += raw
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    if header_extra:
        header.update(header_extra)
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def floats(n):
    return struct.pack("<%df" % n, *[0.1 * i for i in range(n)])


# A small network as `save` writes it: flatten, then linear(4, 2), for a 1 x 2 x 2 input.
def network(spec=None, nodes=None):
    description = {
        "format": "cnnlab-network", "version": 1,
        "nodes": nodes or [
            {"name": "flat", "kind": "flatten", "attributes": {}, "inputs": ["input"]},
            {"name": "fc", "kind": "linear", "attributes": {"in": 4, "out": 2}, "inputs": ["flat"]},
        ],
    }
    s = {"channels": 1, "height": 2, "width": 2, "mean": [0.5], "std": [0.25], "classNames": ["no", "yes"]}
    s.update(spec or {})
    description["spec"] = s
    tensors = {"fc.weight": ("F32", [2, 4], floats(8)), "fc.bias": ("F32", [2], floats(2))}
    return safetensors(tensors, {"cnnlab.network": json.dumps(description)})


# --- safetensors ---------------------------------------------------------------------------
honest = network()
write("truncated.safetensors", honest[: len(honest) // 2])
write("short.safetensors", b"\x10\x00\x00")
write("offsets-lie.safetensors", safetensors({}, header_extra={
    "w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 4096]}}) + floats(4))
write("huge-shape.safetensors", safetensors({}, header_extra={
    "w": {"dtype": "F32", "shape": [1 << 31, 1 << 31], "data_offsets": [0, 0]}}))
write("overlap.safetensors", safetensors({}, header_extra={
    "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
    "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}) + floats(3))
write("deep-header.safetensors", (lambda t: struct.pack("<Q", len(t)) + t)(b"[" * 5000 + b"]" * 5000))
write("empty-mean.safetensors", network({"mean": []}))
write("zero-std.safetensors", network({"std": [0]}))
write("long-std.safetensors", network({"std": [0.2, 0.2, 0.2]}))
write("negative-height.safetensors", network({"height": -2}))
write("huge-side.safetensors", network({"height": 1 << 40, "width": 1 << 40}))
write("classes-lie.safetensors", network({"classNames": ["a", "b", "c"]}))
write("negative-kernel.safetensors", network(nodes=[
    {"name": "conv", "kind": "conv2d", "attributes": {"in": 1, "out": 2, "kernel": -3}, "inputs": ["input"]}]))
write("huge-linear.safetensors", network(nodes=[
    {"name": "flat", "kind": "flatten", "attributes": {}, "inputs": ["input"]},
    {"name": "fc", "kind": "linear", "attributes": {"in": 1 << 20, "out": 1 << 20}, "inputs": ["flat"]}]))
write("zero-stride.safetensors", network(nodes=[
    {"name": "pool", "kind": "maxpool", "attributes": {"kernel": 2, "stride": 0}, "inputs": ["input"]}]))

# --- NumPy ---------------------------------------------------------------------------------
def npy(descr, shape, data, fortran=False):
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)
    header = header.encode() + b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data


write("bad-dtype.npy", npy("<c32", (2,), b"\x00" * 64))
write("huge.npy", npy("<f4", (1 << 40, 1 << 40), b""))
write("truncated.npy", npy("<f4", (1000,), floats(10)))
write("negative.npy", npy("<f4", (-4,), b""))

# --- PyTorch (a zip holding a pickle) --------------------------------------------------------
def entry(name, compress=zipfile.ZIP_STORED):
    """A zip entry with a fixed date, so that the files are the same on every run."""
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = compress
    return info


def pth(pickle_bytes, storages=None):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as z:
        z.writestr(entry("archive/data.pkl"), pickle_bytes)
        for key, data in (storages or {}).items():
            z.writestr(entry("archive/data/%s" % key), data)
        z.writestr(entry("archive/version"), "3\n")
    return buffer.getvalue()


# Protocol 2: PROTO 2, then opcodes; the pickle of {'w': tensor} as torch.save writes it, with
# the tensor's size claiming 2^20 x 2^20 floats from a storage of four.
def rebuild(size):
    sizes = b"".join(b"J" + struct.pack("<i", s) for s in size)
    return (b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01ctorch._utils\n_rebuild_tensor_v2\nq\x02("
            b"(X\x07\x00\x00\x00storageq\x03ctorch\nFloatStorage\nq\x04X\x01\x00\x00\x000q\x05X\x03\x00\x00\x00cpuq\x06K\x04tq\x07Q"
            b"K\x00(" + sizes + b"t(" + b"K\x01" * len(size) + b"t\x89ccollections\nOrderedDict\n)Rq\x08tq\x09Rq\x0as.")


write("huge-tensor.pth", pth(rebuild([1 << 20, 1 << 20]), {"0": floats(4)}))
write("stack-underflow.pth", pth(b"\x80\x02t."))                     # TUPLE with nothing marked
write("memo-missing.pth", pth(b"\x80\x02h\x63."))                   # BINGET of memo 99, never put
write("unknown-opcode.pth", pth(b"\x80\x02\xff."))
write("forbidden-global.pth", pth(b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00idq\x00\x85R."))
# A zip whose entry claims to inflate 4 GB from a few bytes: a zip bomb's header.
bomb = io.BytesIO()
with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr(entry("archive/data.pkl", zipfile.ZIP_DEFLATED), b"\x80\x02}." + b"\x00" * 4096)
data = bytearray(bomb.getvalue())
for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
    at = data.find(signature)
    data[at + offset:at + offset + 4] = struct.pack("<I", 0xFFFFFFF0)
write("zip-bomb.pth", bytes(data))

# --- ONNX (protobuf by hand) ---------------------------------------------------------------
def varint(n):
    n &= (1 << 64) - 1
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def field(number, value):
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


def onnx(graph):
    return field(1, 8) + field(8, field(2, 13)) + field(7, graph)


def tensor_type(dims):
    shape = b"".join(field(1, field(1, d)) for d in dims)
    return field(1, field(1, 1) + field(2, shape))


def value_info(name, dims):
    return field(1, name.encode()) + field(2, tensor_type(dims))


def initializer(name, dims, raw):
    return b"".join(field(1, d) for d in dims) + field(2, 1) + field(8, name.encode()) + field(9, raw)


def node(op, inputs, outputs, attributes=b""):
    return b"".join(field(1, i.encode()) for i in inputs) + b"".join(field(2, o.encode()) for o in outputs) + field(4, op.encode()) + attributes


def int_attribute(name, value):
    return field(5, field(1, name.encode()) + field(3, value) + field(20, 2))


def ints_attribute(name, values):
    return field(5, field(1, name.encode()) + b"".join(field(8, v) for v in values) + field(20, 7))


conv_weight = initializer("w", [2, 1, 3, 3], floats(18))
write("negative-dim.onnx", onnx(field(1, node("Relu", ["x"], ["y"])) + field(11, value_info("x", [1, -3, 8, 8]))
                                + field(12, value_info("y", [1, 3, 8, 8]))))
write("huge-initializer.onnx", onnx(field(1, node("Relu", ["x"], ["y"])) + field(5, initializer("big", [1 << 30, 1 << 30], b""))
                                    + field(11, value_info("x", [1, 1, 8, 8])) + field(12, value_info("y", [1, 1, 8, 8]))))
write("zero-stride.onnx", onnx(field(1, node("Conv", ["x", "w"], ["y"], ints_attribute("strides", [0, 0]))) + field(5, conv_weight)
                               + field(11, value_info("x", [1, 1, 8, 8])) + field(12, value_info("y", [1, 2, 6, 6]))))
write("negative-pads.onnx", onnx(field(1, node("Conv", ["x", "w"], ["y"], ints_attribute("pads", [-5, -5, -5, -5]))) + field(5, conv_weight)
                                 + field(11, value_info("x", [1, 1, 8, 8])) + field(12, value_info("y", [1, 2, 6, 6]))))
write("huge-kernel.onnx", onnx(field(1, node("MaxPool", ["x"], ["y"], ints_attribute("kernel_shape", [1 << 40, 1 << 40])))
                               + field(11, value_info("x", [1, 1, 8, 8])) + field(12, value_info("y", [1, 1, 1, 1]))))
write("truncated.onnx", onnx(field(1, node("Relu", ["x"], ["y"])) + field(11, value_info("x", [1, 1, 8, 8])))[:-7])

# --- pictures ------------------------------------------------------------------------------
def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


png_signature = b"\x89PNG\r\n\x1a\n"
write("huge.png", png_signature + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1 << 30, 1 << 30, 8, 2, 0, 0, 0))
      + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + png_chunk(b"IEND", b""))
small = png_signature + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 0, 0, 0, 0)) \
    + png_chunk(b"IDAT", zlib.compress(b"".join(b"\x00" + bytes([i * 16] * 4) for i in range(4)))) + png_chunk(b"IEND", b"")
write("truncated.png", small[:40])
write("zero-width.png", png_signature + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 4, 8, 0, 0, 0, 0)) + png_chunk(b"IEND", b""))
# A baseline JPEG that libjpeg reads the header of: a quantization table, a 65000 x 65000 gray
# frame, one-code Huffman tables and a scan, with a few bytes of data.
dqt = b"\xff\xdb\x00\x43\x00" + b"\x01" * 64
sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 65000, 65000, 1) + b"\x01\x11\x00"
dht = b"".join(b"\xff\xc4\x00\x14" + bytes([table]) + b"\x01" + b"\x00" * 15 + b"\x00" for table in (0x00, 0x10))
sos = b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00"
write("huge.jpg", b"\xff\xd8" + dqt + sof + dht + sos + b"\x00" * 16 + b"\xff\xd9")
write("truncated.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xdb\x00\x43\x00")

# --- IDX -----------------------------------------------------------------------------------
os.makedirs(os.path.join(folder, "idx-huge"), exist_ok=True)
with open(os.path.join(folder, "idx-huge", "train-images-idx3-ubyte"), "wb") as f:
    f.write(b"\x00\x00\x08\x03" + struct.pack(">III", 0xFFFFFFF, 0xFFFF, 0xFFFF))
with open(os.path.join(folder, "idx-huge", "train-labels-idx1-ubyte"), "wb") as f:
    f.write(b"\x00\x00\x08\x01" + struct.pack(">I", 2) + b"\x00\x01")

# --- scripts and notebooks -----------------------------------------------------------------
write("unbalanced.cnn", b"x = [1, 2, (3 + 4]\nprint(x\n")
write("recursion.cnn", b"fn f(n) { f(n + 1) }\nf(0)\n")
write("not-utf8.cnn", b"print(\"\xff\xfe\")\n")
write("cells-not-strings.ipynb", json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                                              "cells": [{"cell_type": "code", "source": [1, 2], "metadata": {}}]}).encode())
write("cells-not-a-list.ipynb", json.dumps({"nbformat": 4, "cells": {"0": "print(1)"}}).encode())
write("wrong-nbformat.ipynb", json.dumps({"nbformat": "four", "cells": []}).encode())
write("truncated.ipynb", b'{"nbformat": 4, "cells": [{"cell_type": "co')
print("wrote", len(os.listdir(folder)), "entries to", os.path.normpath(folder))
