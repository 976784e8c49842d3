"""What runs a student's function for `ganet grade`, and how its answers travel as plain data.

This file stands alone (the standard library, numpy and torch): `ganet grade` starts it as a script
inside the sandbox, where the kit itself is not importable, so the answer's implementations are out
of the student's reach. The grading side (`grade.py`) imports the same file for the wire format.

Inside the sandbox one *worker* process imports torch once and then serves one request per exercise:
it forks a child that runs the imports above the exercise, the student's cell and the function on
the inputs it was sent, and writes what came out as plain data. The worker makes itself
non-dumpable, so a child cannot open its file descriptors or memory through /proc; the child runs
under resource limits and a seccomp filter that refuses new processes, programs, ptrace, and
signals to any process but itself. Nothing the child sends is a grade: the grading side decodes it
against a schema (arrays of a declared dtype and shape, numbers, dicts, tuples) and compares it with
references it computes itself.

Wire format: frames of a 4-byte big-endian length and a JSON document; arrays as base64 of their
bytes. `decode` refuses anything outside the schema, deeper than `MAX_DEPTH` or larger than
`MAX_FRAME`.
"""

from __future__ import annotations

import base64
import ctypes
import json
import linecache
import os
import platform
import resource
import select
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

MAX_FRAME = 16 * 2**20  # bytes of one frame either way (the largest answer is a few hundred KiB)
MAX_DEPTH = 12  # nesting of containers in an answer
MAX_ITEMS = 10_000  # items of one container in an answer
DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64")
OUTPUT_LIMIT = 8 * 2**20  # bytes one exercise may write into one file (its printed output included)
_THIS_FILE = os.path.abspath(__file__)


class CodecError(ValueError):
    """Data that does not follow the wire format."""


class Other:
    """A value of a type the wire format does not carry (a student's own class, a generator...)."""

    def __init__(self, type_name: str):
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<a {self.type_name}>"


# --- plain data <-> JSON ------------------------------------------------------------------------------------


def encode(value: Any, depth: int = 0) -> Any:
    """`value` as JSON-ready plain data: numbers, strings, None and tagged dicts for arrays, tensors,
    numpy scalars, tuples, lists, dicts and slices; anything else becomes its type's name."""
    if value is None or isinstance(value, (bool, str)) or type(value) in (int, float):
        return value[:2000] if isinstance(value, str) else value
    if depth >= MAX_DEPTH:
        return {"$": "other", "type": "a value nested too deep"}
    if isinstance(value, torch.Tensor):
        array = value.detach().cpu().resolve_conj().resolve_neg().contiguous().numpy()
        return {**_array(array), "$": "tensor", "grad": bool(value.requires_grad)}
    if isinstance(value, np.ndarray):
        return _array(value)
    if isinstance(value, np.generic):
        return {**_array(np.asarray(value)), "$": "scalar"}
    if isinstance(value, (tuple, list, dict)) and len(value) > MAX_ITEMS:
        return {"$": "other", "type": f"{type(value).__name__} of {len(value)} items"}
    if isinstance(value, tuple):
        return {"$": "tuple", "items": [encode(v, depth + 1) for v in value]}
    if isinstance(value, list):
        return {"$": "list", "items": [encode(v, depth + 1) for v in value]}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            return {"$": "other", "type": "dict with keys that are not strings"}
        return {"$": "dict", "items": [[k[:200], encode(v, depth + 1)] for k, v in value.items()]}
    if isinstance(value, slice):
        ends = [value.start, value.stop, value.step]
        if all(e is None or isinstance(e, (int, np.integer)) for e in ends):
            return {"$": "slice", "items": [None if e is None else int(e) for e in ends]}
    if isinstance(value, int):  # a subclass of int (numpy's are handled above)
        return {"$": "other", "type": type(value).__name__}
    return {"$": "other", "type": type(value).__name__[:80]}


def _array(array: np.ndarray) -> dict:
    if array.dtype.name not in DTYPES:
        return {"$": "other", "type": f"array of dtype {array.dtype.name[:40]}"}
    return {
        "$": "array",
        "dtype": array.dtype.name,
        "shape": list(array.shape),
        "data": base64.b64encode(np.ascontiguousarray(array).tobytes()).decode(),
    }


def decode(data: Any, depth: int = 0) -> Any:
    """The value `encode` wrote, rebuilt as numpy arrays, torch tensors, tuples, dicts...

    Raises:
        CodecError: anything outside the wire format (a wrong type, dtype, shape or size; too deep).
    """
    if data is None or isinstance(data, (bool, int, float)):
        return data
    if isinstance(data, str):
        if len(data) > 2000:
            raise CodecError("a string longer than 2000 characters")
        return data
    if depth >= MAX_DEPTH + 1:
        raise CodecError("nested too deep")
    if not isinstance(data, dict) or not isinstance(data.get("$"), str):
        raise CodecError(f"a {type(data).__name__} where a tagged value belongs")
    tag = data["$"]
    if tag in ("array", "tensor", "scalar"):
        array = _decode_array(data)
        if tag == "tensor":
            return torch.from_numpy(array)
        if tag == "scalar":
            if array.ndim != 0:
                raise CodecError("a scalar with a shape")
            return array[()]
        return array
    if tag in ("tuple", "list", "dict", "slice"):
        items = data.get("items")
        if not isinstance(items, list) or len(items) > MAX_ITEMS:
            raise CodecError(f"a {tag} without a list of at most {MAX_ITEMS} items")
        if tag == "slice":
            if len(items) != 3 or not all(i is None or type(i) is int for i in items):
                raise CodecError("a slice that is not three integers or None")
            return slice(*items)
        if tag == "dict":
            if not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in items):
                raise CodecError("a dict whose items are not [string, value] pairs")
            return {k: decode(v, depth + 1) for k, v in items}
        values = [decode(v, depth + 1) for v in items]
        return tuple(values) if tag == "tuple" else values
    if tag == "other":
        return Other(str(data.get("type", "value"))[:80])
    raise CodecError(f"an unknown tag {tag[:20]!r}")


def _decode_array(data: dict) -> np.ndarray:
    dtype, shape, raw = data.get("dtype"), data.get("shape"), data.get("data")
    if dtype not in DTYPES:
        raise CodecError(f"an array of dtype {str(dtype)[:20]!r}")
    if not isinstance(shape, list) or len(shape) > 8 or not all(type(n) is int and 0 <= n < 2**31 for n in shape):
        raise CodecError("an array whose shape is not at most 8 non-negative integers")
    if not isinstance(raw, str) or len(raw) > MAX_FRAME:
        raise CodecError("an array without its data")
    try:
        buffer = base64.b64decode(raw, validate=True)
    except ValueError as exc:
        raise CodecError("an array whose data is not base64") from exc
    if len(buffer) != int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize:
        raise CodecError(f"an array of shape {shape} and dtype {dtype} with {len(buffer)} bytes")
    return np.frombuffer(buffer, dtype).reshape(shape).copy()


def loads(raw: bytes) -> Any:
    """JSON from an untrusted peer: bounded in size; nesting beyond the interpreter's recursion
    limit raises (json's scanner counts its depth) instead of exhausting the stack.

    Raises:
        CodecError: too large, not UTF-8 JSON, or nested too deep.
    """
    if len(raw) > MAX_FRAME:
        raise CodecError(f"a message of {len(raw)} bytes")
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise CodecError(f"not JSON ({type(exc).__name__})") from exc


# --- frames on a pipe -------------------------------------------------------------------------------------


def send(fd: int, message: Any) -> None:
    send_raw(fd, json.dumps(message, separators=(",", ":")).encode())


def send_raw(fd: int, payload: bytes) -> None:
    data = struct.pack(">I", len(payload)) + payload
    while data:
        data = data[os.write(fd, data) :]


def receive_raw(fd: int, deadline: float | None = None) -> bytes | None:
    """One frame's bytes from `fd`; None at the end of the stream.

    Raises:
        TimeoutError: `deadline` (time.monotonic()) passed first.
        CodecError: the frame is larger than MAX_FRAME, or the stream ends inside one.
    """
    header = _read_exactly(fd, 4, deadline)
    if header is None:
        return None
    (length,) = struct.unpack(">I", header)
    if length > MAX_FRAME:
        raise CodecError(f"a frame of {length} bytes")
    payload = _read_exactly(fd, length, deadline)
    if payload is None:
        raise CodecError("the stream ended inside a frame")
    return payload


def _read_exactly(fd: int, count: int, deadline: float | None) -> bytes | None:
    chunks, received = [], 0
    while received < count:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(count - received, 2**20))
        if not chunk:
            if received:
                raise CodecError("the stream ended inside a frame")
            return None
        chunks.append(chunk)
        received += len(chunk)
    return b"".join(chunks)


# --- one call of a student's function -----------------------------------------------------------------------


@dataclass
class Answer:
    """What a function did with one input: what it returned or raised, its inputs after the call, and
    for a gradient case the vector-Jacobian product with the upstream gradient it was given."""

    value: Any = None
    raised: str = ""  # the exception's type name; "" when the function returned
    message: str = ""  # the exception's text
    line: str = ""  # " (in your code, line N: ...)" where the student's own code raised
    inputs_after: tuple | None = None
    gradients: tuple | None = None  # one per gradient position: a tensor, or None (no dependence)
    gradient_problem: str = ""  # why no gradient could be taken

    def to_wire(self) -> dict:
        return {
            "value": encode(self.value),
            "raised": self.raised,
            "message": self.message[:2000],
            "line": self.line[:400],
            "inputs_after": None if self.inputs_after is None else encode(tuple(self.inputs_after)),
            "gradients": None if self.gradients is None else encode(tuple(self.gradients)),
            "gradient_problem": self.gradient_problem[:2000],
        }

    @classmethod
    def from_wire(cls, data: Any) -> Answer:
        """Raises CodecError for anything but what `to_wire` writes."""
        if not isinstance(data, dict):
            raise CodecError("an answer that is not an object")
        texts = {key: data.get(key, "") for key in ("raised", "message", "line", "gradient_problem")}
        if not all(isinstance(t, str) and len(t) <= 2000 for t in texts.values()):
            raise CodecError("an answer whose texts are not short strings")
        inputs_after, gradients = decode(data.get("inputs_after")), decode(data.get("gradients"))
        for name, part in (("inputs_after", inputs_after), ("gradients", gradients)):
            if part is not None and not isinstance(part, tuple):
                raise CodecError(f"an answer whose {name} is not a tuple")
        return cls(value=decode(data.get("value")), inputs_after=inputs_after, gradients=gradients, **texts)


def copy_inputs(args: tuple) -> tuple:
    """Fresh copies of the inputs: what a function changes in place does not reach the next call."""
    return tuple(
        a.clone() if isinstance(a, torch.Tensor) else a.copy() if isinstance(a, (np.ndarray, dict, list)) else a
        for a in args
    )


def student_line(exc: BaseException, kit_dir: str | None = None) -> str:
    """' (in your code, line N: <code>)' for the innermost frame of the traceback that is the student's own
    (not this file, not the kit under `kit_dir`, not an installed package), or ''."""
    own = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if os.path.abspath(frame.filename) != _THIS_FILE
        and not (kit_dir and os.path.abspath(frame.filename).startswith(kit_dir + os.sep))
        and "site-packages" not in frame.filename
        and not frame.filename.startswith("<frozen")
    ]
    if not own:
        return ""
    frame = own[-1]
    return (
        f" (in your code, line {frame.lineno}: {frame.line})" if frame.line else f" (in your code, line {frame.lineno})"
    )


def answer(
    function,
    args: tuple,
    gradient_positions: tuple[int, ...] = (),
    upstream: torch.Tensor | None = None,
    kit_dir: str | None = None,
) -> Answer:
    """Call `function` on copies of `args`; with `upstream`, call it again on leaf tensors at
    `gradient_positions` and take the vector-Jacobian product. Raises nothing but BaseExceptions (a
    check's time limit passes through)."""
    inputs = copy_inputs(args)
    try:
        value = function(*inputs)
    except Exception as exc:
        return Answer(raised=type(exc).__name__, message=str(exc), line=student_line(exc, kit_dir))
    result = Answer(value=value, inputs_after=inputs)
    if upstream is None or not gradient_positions:
        return result
    inputs = list(copy_inputs(args))
    leaves = []
    for position in gradient_positions:
        inputs[position] = inputs[position].detach().float().requires_grad_(True)
        leaves.append(inputs[position])
    try:
        output = function(*inputs)
        if not isinstance(output, torch.Tensor):
            result.gradient_problem = f"returned a {type(output).__name__}, not a torch tensor"
        elif not output.requires_grad:
            result.gradient_problem = (
                "returned a tensor without a gradient (.item(), float(), .numpy() or .detach() cut it)"
            )
        elif tuple(output.shape) != tuple(upstream.shape):
            result.gradient_problem = f"returned a tensor of shape {tuple(output.shape)}, not {tuple(upstream.shape)}"
        else:
            grads = torch.autograd.grad(output, leaves, grad_outputs=upstream.to(output.dtype), allow_unused=True)
            result.gradients = tuple(None if g is None else g.detach() for g in grads)
    except Exception as exc:
        # The library's message is quoted whole, then where the student's code raised.
        result.gradient_problem = (
            f"raised {type(exc).__name__} when its gradient was taken: «{exc}»{student_line(exc, kit_dir)}"
        )
    return result


# --- the worker, inside the sandbox -------------------------------------------------------------------------

_SECCOMP = {  # syscall numbers: clone, clone3, refused outright, kill-like (allowed on oneself only)
    "x86_64": (56, 435, (57, 58, 59, 322, 101, 310, 311, 272, 308, 424, 434, 200), (62, 234)),
    "aarch64": (220, 435, (221, 281, 117, 270, 271, 97, 268, 424, 434, 130), (129, 131)),
}
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}


def confine_process() -> bool:
    """A seccomp filter on this process: no new processes (clone only for threads), no programs, no
    ptrace or process_vm_*, no namespaces, and kill/tgkill only on itself. False where the
    architecture is not known here (the sandbox still confines the file system and the network)."""
    machine = platform.machine()
    if machine not in _SECCOMP or not sys.platform.startswith("linux"):
        return False
    clone, clone3, refused, kills = _SECCOMP[machine]
    allow, eperm, enosys, kill = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38, 0x80000000
    ld, jeq, jset, ret = 0x20, 0x15, 0x45, 0x06
    program = [(ld, 0, 0, 4), (jeq, 1, 0, _AUDIT_ARCH[machine]), (ret, 0, 0, kill), (ld, 0, 0, 0)]
    if machine == "x86_64":
        program += [(0x35, 0, 1, 0x40000000), (ret, 0, 0, eperm)]  # the x32 ABI's numbers
    program += [(jeq, 0, 1, clone3), (ret, 0, 0, enosys)]  # glibc falls back to clone for threads
    program += [(jeq, 0, 4, clone), (ld, 0, 0, 16), (jset, 0, 1, 0x10000), (ret, 0, 0, allow), (ret, 0, 0, eperm)]
    program += [instruction for nr in refused for instruction in ((jeq, 0, 1, nr), (ret, 0, 0, eperm))]
    me = os.getpid()
    for nr in kills:  # kill(pid, sig) and tgkill(tgid, tid, sig): the first argument must be this process
        program += [(jeq, 0, 4, nr), (ld, 0, 0, 16), (jeq, 1, 0, me), (ret, 0, 0, eperm), (ret, 0, 0, allow)]
    program.append((ret, 0, 0, allow))
    filters = b"".join(struct.pack("HBBI", *instruction) for instruction in program)
    buffer = ctypes.create_string_buffer(filters)
    fprog = struct.pack("HxxxxxxP", len(program), ctypes.addressof(buffer))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        return False
    fprog_buffer = ctypes.create_string_buffer(fprog)
    return (
        libc.prctl(22, 2, ctypes.c_void_p(ctypes.addressof(fprog_buffer)), 0, 0) == 0
    )  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER


def _limit(memory_bytes: int, cpu_seconds: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_LIMIT, OUTPUT_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of a kill


def run_exercise(request: dict) -> dict:
    """In the exercise's process: the imports above the cell, the cell, then every call it was sent."""
    namespace: dict = {"__name__": "__exercise__"}
    failed_imports = []
    for line in request["imports"]:
        try:
            exec(compile(line, "<imports above the exercise>", "exec"), namespace)
        except Exception:  # an import the sandbox lacks (the kit's own): named if the cell then fails
            failed_imports.append(line)
    path = os.path.abspath(f"exercise_{request['key'].replace('.', '_')}.py")
    with open(path, "w") as handle:
        handle.write(request["source"])
    linecache.checkcache(path)
    reply: dict = {"failed_imports": failed_imports[:20]}
    try:
        code = compile(request["source"], path, "exec")
    except SyntaxError as exc:
        return {**reply, "cell": "syntax error", "line": exc.lineno or 0, "message": str(exc.msg)[:300]}
    except (ValueError, RecursionError, MemoryError) as exc:
        return {**reply, "cell": "syntax error", "line": 0, "message": type(exc).__name__}
    try:
        exec(code, namespace)
    except Exception as exc:
        return {
            **reply,
            "cell": "raised",
            "type": type(exc).__name__,
            "message": str(exc)[:600],
            "line": student_line(exc),
        }
    function = namespace.get(request["name"])
    if not callable(function):
        return {**reply, "cell": "no function"}
    answers = []
    for call in request["calls"]:
        positions = tuple(call.get("positions") or ())
        upstream = decode(call["upstream"]) if call.get("upstream") is not None else None
        answers.append(answer(function, decode(call["args"]), positions, upstream).to_wire())
    return {**reply, "cell": "ran", "answers": answers}


def _serve_one(request: dict, channels: tuple[int, int], scratch: Path) -> tuple[dict, bytes]:
    """Fork the exercise's process in a fresh folder under this worker's `scratch`, collect what it
    wrote, kill it at the deadline."""
    folder = scratch / "exercise"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the exercise's process: nothing here may reach the worker's channels
        try:
            os.close(read_end)
            for fd in channels:
                os.close(fd)
            os.chdir(folder)
            _limit(int(request["memory_bytes"]), int(request["time_limit"]) + 1)
            output = os.open("output.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(output, 1)
            os.dup2(output, 2)
            os.close(output)
            sys.stdout = sys.stderr = open(1, "w", buffering=1, closefd=False)
            confined = confine_process()
            reply = run_exercise(request)
            reply["confined"] = confined
            payload = json.dumps(reply, separators=(",", ":")).encode()
        except BaseException as exc:  # noqa: BLE001 (the last resort: a reply instead of a silent death)
            payload = json.dumps({"cell": "crashed", "message": f"{type(exc).__name__}: {str(exc)[:300]}"}).encode()
        try:
            _write_all(write_end, payload)
        finally:
            os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + float(request["time_limit"])
    chunks, received, status = [], 0, "answered"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([read_end], [], [], remaining)[0]:
            status = "timed out"
            break
        chunk = os.read(read_end, 2**20)
        if not chunk:
            break
        received += len(chunk)
        if received > MAX_FRAME:
            status = "too large"
            break
        chunks.append(chunk)
    if status != "answered":
        os.kill(pid, signal.SIGKILL)
    os.close(read_end)
    _, wait_status = os.waitpid(pid, 0)
    meta = {
        "status": status,
        "signal": os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else 0,
        "output_bytes": (folder / "output.txt").stat().st_size if (folder / "output.txt").exists() else 0,
    }
    shutil.rmtree(folder, ignore_errors=True)
    return meta, b"".join(chunks) if status == "answered" else b""


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data[: 2**20]) :]


def serve() -> None:
    """The worker's loop: a request per exercise on stdin, its meta and payload frames on stdout."""
    channel_in, channel_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # a stray print of the worker's goes to stderr, never into the channel
    for module in ("torch.nn.functional", "scipy.special", "scipy.ndimage"):
        try:
            __import__(module)
        except ImportError:
            pass
    torch.set_num_threads(1)
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: children cannot open /proc/<worker>/fd or mem
    # A folder of this worker's own: unconfined, several workers share the machine's /tmp.
    scratch = Path(tempfile.mkdtemp(prefix="ganet-grade-"))
    send(channel_out, {"ready": True, "python": sys.version.split()[0], "torch": torch.__version__})
    try:
        while True:
            raw = receive_raw(channel_in)
            if raw is None:
                return
            request = loads(raw)
            meta, payload = _serve_one(request, (channel_in, channel_out), scratch)
            send(channel_out, {"nonce": request["nonce"], **meta})
            send_raw(channel_out, payload)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    serve()
