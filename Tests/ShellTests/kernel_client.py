"""Checks `cnn kernel` and `cnn notebook` with Jupyter's own Python libraries.

    python kernel_client.py kernel CNN        the messaging protocol, through jupyter_client
    python kernel_client.py nbclient CNN      a notebook executed by nbclient through the kernelspec
    python kernel_client.py memorycap CNN     a kernel under CNN_KERNEL_MEMORY stops a cell and lives on
    python kernel_client.py validate FILE     a .ipynb file against the nbformat schema

Each check prints "ok: <what>"; the first failure prints "FAILED: <what>" and the script exits
with status 1. Every wait is bounded, and the kernel is killed on the way out.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid

try:
    import nbformat
    from jupyter_client import BlockingKernelClient
    from jupyter_client.connect import write_connection_file
    from jupyter_client.session import Session
    import zmq
except ImportError as error:  # the Swift test names the install step
    print(f"MISSING: {error}")
    sys.exit(3)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Failure(Exception):
    pass


def check(condition, what, detail=None):
    if not condition:
        raise Failure(what + (f": {detail!r}" if detail is not None else ""))
    print(f"ok: {what}", flush=True)


def run_code(kc, code, timeout=30, **options):
    """Executes code; returns (reply content, [iopub messages of this request])."""
    msg_id = kc.execute(code, **options)
    return collect(kc, msg_id, timeout)


def collect(kc, msg_id, timeout):
    deadline = time.monotonic() + timeout
    outputs = []
    idle = False
    while not idle:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Failure(f"no idle status for {msg_id} within {timeout} s")
        msg = kc.get_iopub_msg(timeout=left)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        outputs.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            idle = True
    reply = shell_reply(kc, msg_id, max(1, deadline - time.monotonic()))
    return reply["content"], outputs


def shell_reply(kc, msg_id, timeout):
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Failure(f"no shell reply for {msg_id} within {timeout} s")
        reply = kc.get_shell_msg(timeout=left)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply


def of_type(outputs, kind):
    return [m for m in outputs if m["msg_type"] == kind]


def kernel_checks(cnn, body=None, env=None):
    body = body or protocol
    workdir = tempfile.mkdtemp(prefix="cnn-kernel-")
    key = uuid.uuid4().hex.encode()
    path, info = write_connection_file(
        fname=os.path.join(workdir, "connection.json"), ip="127.0.0.1", key=key, transport="tcp",
        signature_scheme="hmac-sha256")
    log = open(os.path.join(workdir, "kernel.log"), "wb")
    kernel = subprocess.Popen([cnn, "kernel", "-f", path], stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
                              env=dict(os.environ, **(env or {})))
    kc = BlockingKernelClient(connection_file=path)
    kc.load_connection_file()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=30)
        body(kc, info, key, kernel)
        # Shutdown: the reply comes, then the process ends by itself.
        msg = kc.session.msg("shutdown_request", {"restart": False})
        kc.control_channel.send(msg)
        reply = kc.get_control_msg(timeout=10)
        check(reply["msg_type"] == "shutdown_reply" and reply["content"] == {"status": "ok", "restart": False},
              "shutdown_reply on control", reply)
        check(kernel.wait(timeout=10) == 0, "the kernel exits with status 0 after shutdown")
    finally:
        kc.stop_channels()
        if kernel.poll() is None:
            kernel.kill()
            kernel.wait(timeout=10)
        log.close()
        with open(os.path.join(workdir, "kernel.log"), "rb") as f:
            text = f.read().decode("utf-8", "replace")
        if text.strip():
            print("kernel log:\n" + text, flush=True)


def protocol(kc, info, key, kernel):
    info_reply = kc.kernel_info(reply=True, timeout=10)["content"]
    check(info_reply["protocol_version"] == "5.3", "kernel_info protocol_version 5.3", info_reply)
    lang = info_reply["language_info"]
    check(lang["name"] == "cnn" and lang["file_extension"] == ".cnn" and lang["mimetype"] == "text/x-cnn",
          "kernel_info language_info", lang)
    check(info_reply["implementation"] == "cnnlab" and info_reply["banner"], "kernel_info implementation and banner")

    # Text, the last value as execute_result, execute_input, busy before idle.
    reply, out = run_code(kc, 'x = 6 * 7\nprint("hello {x}")\nx')
    check(reply["status"] == "ok" and reply["execution_count"] == 1, "execute_reply ok with execution_count 1", reply)
    states = [m["content"]["execution_state"] for m in of_type(out, "status")]
    check(states[0] == "busy" and states[-1] == "idle", "status busy then idle", states)
    inputs = of_type(out, "execute_input")
    check(len(inputs) == 1 and inputs[0]["content"]["execution_count"] == 1, "execute_input with its count")
    streams = "".join(m["content"]["text"] for m in of_type(out, "stream") if m["content"]["name"] == "stdout")
    check(streams == "hello 42\n", "stream stdout", streams)
    results = of_type(out, "execute_result")
    check(len(results) == 1 and results[0]["content"]["data"]["text/plain"] == "42"
          and results[0]["content"]["execution_count"] == 1, "execute_result 42", results)

    # A picture: display_data with a real PNG.
    reply, out = run_code(kc, 'show(randn(28, 28, seed=1), caption="noise")')
    displays = of_type(out, "display_data")
    check(reply["status"] == "ok" and len(displays) == 1, "one display_data for show", out)
    png = base64.b64decode(displays[0]["content"]["data"]["image/png"])
    check(png.startswith(PNG_SIGNATURE), "display_data image/png is a PNG")
    check("text/plain" in displays[0]["content"]["data"], "display_data has text/plain too")

    # An error with its place, then the session lives on.
    reply, out = run_code(kc, "y = 1\nz = nope + 1")
    errors = of_type(out, "error")
    check(reply["status"] == "error" and reply["ename"] == "RuntimeError", "execute_reply error", reply)
    check(len(errors) == 1 and "nope" in errors[0]["content"]["evalue"], "error message on iopub", errors)
    traceback = "\n".join(errors[0]["content"]["traceback"])
    check("In[3]:2:5" in traceback and "^^^^" in traceback, "traceback has the place and a caret", traceback)
    reply, out = run_code(kc, "y + x")
    check(of_type(out, "execute_result")[0]["content"]["data"]["text/plain"] == "43", "variables survive an error")

    # A syntax error is an error reply too.
    reply, out = run_code(kc, "x = (")
    check(reply["status"] == "error" and reply["ename"] == "SyntaxError", "syntax error reply", reply)

    # Completion, from the same completer as the shell.
    run_code(kc, 'net = load("fashion")')
    reply = kc.complete("net.co", 6, reply=True, timeout=10)["content"]
    check(reply["matches"] == ["conv1", "conv2"] and reply["cursor_start"] == 4 and reply["cursor_end"] == 6,
          "complete_request layer names", reply)
    code = "conv2d(x, w, st"
    reply = kc.complete(code, len(code), reply=True, timeout=10)["content"]
    check(reply["matches"][:2] == ["stride=", "str"] and reply["cursor_start"] == len(code) - 2, "complete_request keyword arguments", reply)
    reply = kc.complete("print(gra", 9, reply=True, timeout=10)["content"]
    check(reply["matches"][:1] == ["grad"] and "gradcheck" in reply["matches"]
          and all(m.startswith("gra") for m in reply["matches"]) and reply["cursor_start"] == 6,
          "complete_request builtins", reply)

    # is_complete from the language's continuation logic.
    reply = shell_reply(kc, kc.is_complete("for i in 0..3 {"), 10)["content"]
    check(reply["status"] == "incomplete" and reply["indent"] == "    ", "is_complete incomplete with indent", reply)
    reply = shell_reply(kc, kc.is_complete("x = 1"), 10)["content"]
    check(reply["status"] == "complete", "is_complete complete", reply)
    reply = shell_reply(kc, kc.is_complete("x = )"), 10)["content"]
    check(reply["status"] == "invalid", "is_complete invalid", reply)

    # inspect: the builtin under the cursor.
    reply = kc.inspect("relu(x)", 2, reply=True, timeout=10)["content"]
    check(reply["found"] and "relu(" in reply["data"]["text/plain"], "inspect_request help text", reply)
    reply = kc.inspect("nothing_here", 3, reply=True, timeout=10)["content"]
    check(reply["status"] == "ok" and not reply["found"], "inspect_request of an unknown name", reply)

    # History and comm_info: well-formed replies.
    reply = kc.history(hist_access_type="tail", n=2, reply=True, timeout=10)["content"]
    check(reply["status"] == "ok" and len(reply["history"]) == 2, "history_request", reply)
    msg = kc.session.msg("comm_info_request", {})
    kc.shell_channel.send(msg)
    reply = shell_reply(kc, msg["header"]["msg_id"], 10)
    check(reply["msg_type"] == "comm_info_reply" and reply["content"]["comms"] == {}, "comm_info_reply", reply)
    msg = kc.session.msg("frobnicate_request", {})
    kc.shell_channel.send(msg)
    reply = shell_reply(kc, msg["header"]["msg_id"], 10)
    check(reply["msg_type"] == "frobnicate_reply" and reply["content"]["status"] == "error",
          "an unknown request gets an error reply", reply)

    # A message signed with the wrong key is dropped; so is garbage.
    context = zmq.Context.instance()
    intruder = context.socket(zmq.DEALER)
    intruder.linger = 0
    intruder.connect(f"tcp://127.0.0.1:{info['shell_port']}")
    wrong = Session(key=b"not-the-key", username="intruder")
    wrong.send(intruder, "execute_request", {"code": "leaked = 1", "silent": False, "store_history": True,
                                             "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
    intruder.send_multipart([b"no delimiter here"])
    header = json.dumps({"msg_id": "x", "msg_type": "execute_request", "session": "s", "username": "u",
                         "date": "2020-01-01T00:00:00Z", "version": "5.3"}).encode()
    parts = [header, b"{}", b"{}", b"not json"]
    signature = hmac.new(key, b"".join(parts), hashlib.sha256).hexdigest().encode()
    intruder.send_multipart([b"<IDS|MSG>", signature] + parts)
    check(intruder.poll(1500) == 0, "no reply to a badly signed or malformed message")
    intruder.close()
    reply, out = run_code(kc, "type(leaked)")
    check(reply["status"] == "error" and "leaked" in reply["evalue"], "the badly signed code did not run", reply)

    # Interrupt a long loop through the control channel; the session keeps its variables.
    msg_id = kc.execute("for i in 0..100000000 { }")
    deadline = time.monotonic() + 10
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "execute_input":
            break
    time.sleep(0.5)
    interrupt = kc.session.msg("interrupt_request", {})
    kc.control_channel.send(interrupt)
    started = time.monotonic()
    control_reply = kc.get_control_msg(timeout=10)
    check(control_reply["msg_type"] == "interrupt_reply" and control_reply["content"]["status"] == "ok",
          "interrupt_reply on control", control_reply)
    reply = shell_reply(kc, msg_id, 10)["content"]
    check(reply["status"] == "error" and reply["ename"] == "Interrupted", "the loop stops as interrupted", reply)
    check(time.monotonic() - started < 5, "the interrupt takes effect promptly")
    reply, out = run_code(kc, "[x, i > 0]")
    check(of_type(out, "execute_result")[0]["content"]["data"]["text/plain"] == "[42, true]",
          "variables intact after the interrupt", out)

    # SIGINT, Jupyter's other way to interrupt, stops work the same way; at rest it spoils nothing.
    msg_id = kc.execute("for j in 0..100000000 { }")
    deadline = time.monotonic() + 10
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "execute_input":
            break
    time.sleep(0.5)
    kernel.send_signal(signal.SIGINT)
    reply = shell_reply(kc, msg_id, 10)["content"]
    check(reply["status"] == "error" and reply["ename"] == "Interrupted", "SIGINT stops the loop", reply)
    kernel.send_signal(signal.SIGINT)
    time.sleep(0.3)
    reply, out = run_code(kc, "x - 40")
    check(reply["status"] == "ok" and of_type(out, "execute_result")[0]["content"]["data"]["text/plain"] == "2",
          "a SIGINT at rest does not stop the next execution", reply)

    # Progress: a display updated in place, never more than a few times a second.
    reply, out = run_code(kc, "ok = gradcheck(conv2d, randn(40, 40, seed=1), randn(3, 3, seed=2))")
    updates = of_type(out, "update_display_data") + of_type(out, "display_data")
    check(reply["status"] == "ok" and updates, "progress shows as a display", out)
    ids = {m["content"]["transient"]["display_id"] for m in updates}
    check(len(ids) == 1, "progress updates one display", ids)


def nbclient_checks(cnn):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    prefix = tempfile.mkdtemp(prefix="cnn-kernelspec-")
    subprocess.run([cnn, "kernel", "install", "--prefix", prefix], check=True, timeout=60)
    spec_dir = os.path.join(prefix, "share", "jupyter", "kernels", "cnnlab")
    with open(os.path.join(spec_dir, "kernel.json")) as f:
        spec = json.load(f)
    check(spec["argv"][1:] == ["kernel", "-f", "{connection_file}"] and os.path.isabs(spec["argv"][0]),
          "kernel.json argv", spec)
    check(spec["language"] == "cnn" and spec["display_name"] == "cnnlab" and spec["interrupt_mode"] == "message",
          "kernel.json language, name and interrupt mode", spec)
    for size in (32, 64):
        with open(os.path.join(spec_dir, f"logo-{size}x{size}.png"), "rb") as f:
            data = f.read()
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        check(data.startswith(PNG_SIGNATURE) and (width, height) == (size, size), f"logo-{size}x{size}.png")
    os.environ["JUPYTER_PATH"] = os.path.join(prefix, "share", "jupyter")

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Through nbclient"),
        nbformat.v4.new_code_cell('x = 6 * 7\nprint("x is {x}")'),
        nbformat.v4.new_code_cell("x + 1"),
        nbformat.v4.new_code_cell("show(ones(3, 8, 8) * 0.5)"),
    ]
    workdir = tempfile.mkdtemp(prefix="cnn-nbclient-")
    NotebookClient(nb, kernel_name="cnnlab", timeout=60, startup_timeout=30,
                   resources={"metadata": {"path": workdir}}).execute()
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    check([c.execution_count for c in code] == [1, 2, 3], "nbclient numbers the cells", [c.execution_count for c in code])
    check(code[0].outputs[0].output_type == "stream" and code[0].outputs[0].text == "x is 42\n", "nbclient stream output")
    check(code[1].outputs[0].output_type == "execute_result" and code[1].outputs[0].data["text/plain"] == "43",
          "nbclient execute_result")
    check(code[2].outputs[0].output_type == "display_data"
          and base64.b64decode(code[2].outputs[0].data["image/png"]).startswith(PNG_SIGNATURE), "nbclient picture")
    check(nb.metadata["language_info"]["name"] == "cnn", "nbclient records language_info from the kernel")

    failing = nbformat.v4.new_notebook()
    failing.cells = [nbformat.v4.new_code_cell("x = nope"), nbformat.v4.new_code_cell("print(1)")]
    try:
        NotebookClient(failing, kernel_name="cnnlab", timeout=60, startup_timeout=30).execute()
        raise Failure("a failing cell raises CellExecutionError")
    except CellExecutionError as error:
        check("nope" in str(error), "a failing cell raises CellExecutionError naming the error")
    NotebookClient(failing, kernel_name="cnnlab", timeout=60, startup_timeout=30, allow_errors=True).execute()
    check(failing.cells[0].outputs[0].output_type == "error" and failing.cells[1].outputs[0].text == "1\n",
          "allow_errors runs on after the error")
    nbformat.validate(failing)


def memory_cap(kc, info, key, kernel):
    """Under a 512 MB cap, a cell that keeps 64 MB tensors is stopped with a MemoryError at the
    place it reached; the variables made before it stay, and the kernel runs the next cells."""
    reply, _ = run_code(kc, "keep = 42")
    check(reply["status"] == "ok", "a small cell runs under the cap", reply)
    reply, out = run_code(kc, "xs = []\nfor i in 0..99 {\n    xs = xs + [zeros(16, 1024, 1024) + i]\n}", timeout=120)
    errors = of_type(out, "error")
    check(reply["status"] == "error" and reply["ename"] == "MemoryError", "execute_reply error MemoryError", reply)
    check(len(errors) == 1 and errors[0]["content"]["ename"] == "MemoryError"
          and "memory cap of 512 MB" in errors[0]["content"]["evalue"] and "CNN_KERNEL_MEMORY" in errors[0]["content"]["evalue"],
          "the error names the cap and the setting", errors)
    check(any(re.search(r"In\[2\]:[23]:", line) for line in errors[0]["content"]["traceback"]), "the error points into the loop",
          errors[0]["content"]["traceback"])
    check(kernel.poll() is None, "the kernel process is still alive")
    reply, out = run_code(kc, "n = len(xs)\nxs = 0\n[keep, n < 100]")
    results = of_type(out, "execute_result")
    check(reply["status"] == "ok" and results and results[0]["content"]["data"]["text/plain"] == "[42, true]",
          "variables kept, the loop stopped early, and the cell that frees them runs", (reply, results))
    reply, out = run_code(kc, "sum(ones(256, 256))")
    results = of_type(out, "execute_result")
    check(reply["status"] == "ok" and results and results[0]["content"]["data"]["text/plain"].startswith("65536"),
          "the kernel computes after the memory is freed", results)


def memorycap_checks(cnn):
    kernel_checks(cnn, body=memory_cap, env={"CNN_KERNEL_MEMORY": "512M"})


def validate(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    check(True, f"{os.path.basename(path)} is valid nbformat {nb.nbformat}.{nb.nbformat_minor}")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("kernel", "nbclient", "memorycap", "validate"):
        print(__doc__)
        return 2
    try:
        {"kernel": kernel_checks, "nbclient": nbclient_checks, "memorycap": memorycap_checks,
         "validate": validate}[sys.argv[1]](sys.argv[2])
    except Failure as failure:
        print(f"FAILED: {failure}", flush=True)
        return 1
    except Exception as error:  # a timeout, a validation error: a failure with its type
        print(f"FAILED: {type(error).__name__}: {error}", flush=True)
        return 1
    print("all passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
