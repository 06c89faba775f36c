#!/usr/bin/python3
"""A room of simulated students on a local cnnlab hub.

    scripts/hub loadtest [--students N] [--sweep 1,2,4] [--steps S] [--memory 2G] [--json FILE]

Starts a hub of its own (scripts/hub start, in a temporary folder, on a free port), then N
students at once, each on a thread of its own:
  1. log in through the hub's REST API (POST /hub/api/users/NAME/tokens with the password),
  2. start their server (POST /hub/api/users/NAME/server) and wait until it is ready,
  3. open a cnnlab kernel through the hub's proxy (POST /user/NAME/api/kernels) and its
     websocket channels,
  4. run the lecture's ImageNet cells, all students together (a barrier before each cell):
     load the zoo network and the cat photo, its saliency map, a class model (classviz's
     defaults: Lucid's recipe on EfficientNet-Lite0).
Every cell's reply and outputs are checked (status ok, the pictures there). Reported: each
cell's latency (median, p95, max over students) and each kernel's peak resident memory.
With --sweep, one room per size, and the largest size whose slowest class model stayed
under --limit seconds (default 60). Afterwards the hub is stopped and the script checks that
no hub, proxy, server or kernel process is left. Exit status 0 when every output came back
and nothing was left running.

Uses Debian's python3-requests and python3-websocket (scripts/hub installs them).
"""
import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import requests
import websocket

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cells(steps):
    """The lecture's ImageNet cells, as a student runs them (notebooks/07-imagenet.cnn)."""
    return [
        ("load", 'net = load("efficientnet-lite0")\ncat = photo("chelsea")\ntop(predict(net, cat), 3)', 0),
        ("saliency", 'show(saliency(net, cat, class="tiger cat"))', 1),
        ("class model", 'show(classviz(net, class="lemon"' + (f", steps={steps}" if steps else "") + "))", 1),
    ]


def free_port():
    """A port with the two after it free too (proxy, hub, proxy API)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 2 < 65536 and all(_free(p) for p in (port, port + 1, port + 2)):
            return port
    raise RuntimeError("no three free ports in a row on 127.0.0.1")


def _free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class Failure(Exception):
    pass


class Student:
    def __init__(self, hub, name, password):
        self.hub, self.name, self.password = hub, name, password
        self.token = None
        self.kernel_id = None
        self.ws = None
        self.latency = {}
        self.error = None
        self.kernel_pid = None

    def api(self, method, path, **kwargs):
        headers = {"Authorization": f"token {self.token}"} if self.token else {}
        r = requests.request(method, self.hub + path, headers=headers, timeout=120, **kwargs)
        if r.status_code >= 400:
            raise Failure(f"{self.name}: {method} {path} -> {r.status_code} {r.text[:200]}")
        return r

    def log_in(self):
        r = self.api("POST", f"/hub/api/users/{self.name}/tokens",
                     json={"auth": {"username": self.name, "password": self.password}, "note": "load test"})
        self.token = r.json()["token"]

    def start_server(self, timeout=180):
        self.api("POST", f"/hub/api/users/{self.name}/server")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.api("GET", f"/hub/api/users/{self.name}").json()["servers"].get("")
            if server and server.get("ready"):
                return
            time.sleep(0.5)
        raise Failure(f"{self.name}: server not ready within {timeout} s")

    def open_kernel(self):
        r = self.api("POST", f"/user/{self.name}/api/kernels", json={"name": "cnnlab"})
        self.kernel_id = r.json()["id"]
        url = self.hub.replace("http://", "ws://") + f"/user/{self.name}/api/kernels/{self.kernel_id}/channels"
        self.ws = websocket.create_connection(url, header=[f"Authorization: token {self.token}"], timeout=600)

    def execute(self, code, timeout):
        """Runs code in the kernel; returns (reply content, iopub messages of this request)."""
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": self.name,
                       "session": uuid.uuid4().hex, "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
        }))
        deadline = time.monotonic() + timeout
        reply, outputs, idle = None, [], False
        while reply is None or not idle:
            self.ws.settimeout(max(1, deadline - time.monotonic()))
            if time.monotonic() > deadline:
                raise Failure(f"{self.name}: no reply within {timeout} s")
            msg = json.loads(self.ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["channel"] == "shell" and msg["msg_type"] == "execute_reply":
                reply = msg["content"]
            elif msg["channel"] == "iopub":
                outputs.append(msg)
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    idle = True
        return reply, outputs

    def stop(self):
        if self.ws:
            try:
                self.ws.close()
            except Exception:
                pass
        if self.token:
            try:
                requests.delete(self.hub + f"/hub/api/users/{self.name}/server",
                                headers={"Authorization": f"token {self.token}"}, timeout=60)
            except Exception:
                pass


def kernel_processes(hub_dir):
    """{home folder: pid} of the cnn kernels of the hub's students (a kernel runs in its home)."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if len(cmd) > 1 and cmd[0].endswith(b"/cnn") and cmd[1] == b"kernel" and cwd.startswith(hub_dir):
            found[cwd] = int(pid)
    return found


def peak_memory_mb(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def leftovers(hub_dir):
    """Processes still running from the hub's folder or serving its students."""
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if hub_dir in cmd or cwd.startswith(hub_dir):
            left.append(f"{pid}: {cmd[:120]}")
    return left


def percentile(values, p):
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def room(args, n):
    """One room of n students on a hub of its own; returns its figures."""
    hub_dir = tempfile.mkdtemp(prefix="cnn-hub-")
    port = free_port()
    env = dict(os.environ, CNN_HUB_DIR=hub_dir)
    if args.memory:
        env["CNN_KERNEL_MEMORY"] = args.memory
    started = subprocess.run([os.path.join(ROOT, "scripts/hub"), "start", "--users", str(n), "--port", str(port)],
                             env=env, capture_output=True, text=True, timeout=900)
    if started.returncode != 0:
        raise Failure("the hub did not start:\n" + started.stdout + started.stderr)
    settings = dict(re.findall(r"(CNN_HUB_\w+)=(\S+)", open(os.path.join(hub_dir, "settings")).read()))
    hub = f"http://127.0.0.1:{port}"
    students = [Student(hub, f"student{i}", settings["CNN_HUB_PASSWORD"]) for i in range(1, n + 1)]
    plan = cells(args.steps)
    barrier = threading.Barrier(n)
    figures = {"students": n, "cells": {}, "memory_mb": [], "outputs_ok": 0, "outputs_expected": n * len(plan)}

    def student(s):
        try:
            t = time.monotonic()
            s.log_in()
            s.start_server()
            s.open_kernel()
            s.latency["start"] = time.monotonic() - t
            for name, code, pictures in plan:
                barrier.wait(timeout=900)
                t = time.monotonic()
                reply, outputs = s.execute(code, timeout=args.timeout)
                s.latency[name] = time.monotonic() - t
                shown = [m for m in outputs if m["msg_type"] in ("display_data", "execute_result")
                         and "image/png" in m["content"]["data"]]
                errors = [m["content"] for m in outputs if m["msg_type"] == "error"]
                if reply.get("status") != "ok" or errors or len(shown) < pictures:
                    raise Failure(f"{s.name}: cell '{name}': {reply.get('status')} {errors[:1]} "
                                  f"({len(shown)} of {pictures} pictures)")
                with lock:
                    figures["outputs_ok"] += 1
            kernels = kernel_processes(hub_dir)
            pid = kernels.get(os.path.join(hub_dir, "home", s.name))
            if pid:
                figures["memory_mb"].append(peak_memory_mb(pid))
        except Exception as e:  # noqa: BLE001 (reported per student)
            s.error = f"{type(e).__name__}: {e}"
            barrier.abort()

    lock = threading.Lock()
    threads = [threading.Thread(target=student, args=(s,)) for s in students]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for s in students:
            s.stop()
        subprocess.run([os.path.join(ROOT, "scripts/hub"), "stop"], env=env, capture_output=True, timeout=300)
    time.sleep(1)
    figures["left_running"] = leftovers(hub_dir)
    figures["errors"] = [s.error for s in students if s.error]
    for name in ["start"] + [c[0] for c in plan]:
        values = [s.latency[name] for s in students if name in s.latency]
        if values:
            figures["cells"][name] = {"median": statistics.median(values), "p95": percentile(values, 95),
                                      "max": max(values), "n": len(values)}
    if not figures["left_running"] and not figures["errors"]:
        subprocess.run(["rm", "-rf", hub_dir])
    else:
        figures["hub_dir"] = hub_dir
    return figures


def report(f):
    print(f"\n{f['students']} students: {f['outputs_ok']} of {f['outputs_expected']} cells came back complete")
    print(f"  {'cell':<12} {'median s':>9} {'p95 s':>8} {'max s':>8}")
    for name, c in f["cells"].items():
        print(f"  {name:<12} {c['median']:9.1f} {c['p95']:8.1f} {c['max']:8.1f}")
    mem = [m for m in f["memory_mb"] if m]
    if mem:
        print(f"  peak memory per kernel: median {statistics.median(mem):.0f} MB, max {max(mem):.0f} MB")
    for e in f["errors"]:
        print(f"  error: {e}")
    if f.get("hub_dir"):
        print(f"  the hub's folder, with its log, is kept: {f['hub_dir']}")
    print("  left running: " + (", ".join(f["left_running"]) if f["left_running"] else "nothing"))
    sys.stdout.flush()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--students", type=int, default=20)
    p.add_argument("--sweep", help="room sizes to try, as 1,2,4,8 (instead of --students)")
    p.add_argument("--steps", type=int, help="the class model's steps (default: classviz's own)")
    p.add_argument("--limit", type=float, default=60, help="the class model's time limit for --sweep (s)")
    p.add_argument("--timeout", type=float, default=1800, help="the longest any cell may take (s)")
    p.add_argument("--memory", help="CNN_KERNEL_MEMORY for every kernel, as 2G")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args()
    sizes = [int(s) for s in args.sweep.split(",")] if args.sweep else [args.students]
    if any(n < 1 for n in sizes):
        p.error("room sizes must be at least 1")
    rooms, ok = [], True
    for n in sizes:
        f = room(args, n)
        report(f)
        rooms.append(f)
        ok = ok and not f["errors"] and not f["left_running"] and f["outputs_ok"] == f["outputs_expected"]
    if args.sweep:
        within = [f["students"] for f in rooms if not f["errors"] and "class model" in f["cells"]
                  and f["cells"]["class model"]["max"] < args.limit]
        print(f"\nlargest room whose slowest class model took under {args.limit:.0f} s: "
              + (str(max(within)) if within else "none"))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rooms, out, indent=1)
    print("loadtest: " + ("every output came back, nothing left running" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
