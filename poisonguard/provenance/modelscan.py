"""Read model files without loading them: refuse pickles that can run code.

Pickles (``.pkl``, legacy ``.pt``/``.bin``, and the ``data.pkl`` inside PyTorch zip
archives) are read opcode by opcode with :func:`pickletools.genops`, never
unpickled. A pickle is refused when it imports a callable that is not on a small
allowlist (what ``torch.load(weights_only=True)`` needs for tensors and state
dicts) with ``GLOBAL``, ``STACK_GLOBAL`` or ``INST``, or uses the extension registry
(``EXT1/2/4``); the report names the opcode, its byte offset and the callable, and
the code-running opcodes (``REDUCE``, ``BUILD``, ``NEWOBJ``, ``OBJ``, ``INST``) found.
safetensors files are accepted after their JSON header checks out; ONNX files after
their top-level protobuf structure does (ir_version and a graph).
"""

from __future__ import annotations

import io
import json
import math
import pickletools
import struct
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from poisonguard.errors import DataError

__all__ = ["SAFE_GLOBALS", "ModelScan", "scan_model", "scan_pickle"]

_TORCH_STORAGES = ["Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char",
                   "Byte", "Bool", "ComplexFloat", "ComplexDouble"]
_TORCH_DTYPES = ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8",
                 "uint8", "bool", "complex64", "complex128"]
SAFE_GLOBALS: frozenset[str] = frozenset(
    ["collections.OrderedDict", "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
     "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
     "torch.Size", "torch.device", "numpy.ndarray", "numpy.dtype",
     "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
     "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "_codecs.encode",
     "builtins.set", "builtins.frozenset", "builtins.complex", "builtins.slice",
     "builtins.bytearray"]
    + [f"torch.{s}Storage" for s in _TORCH_STORAGES]
    + [f"torch.{d}" for d in _TORCH_DTYPES]
)
_STRINGS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING",
            "SHORT_BINSTRING"}
_CALLS = {"REDUCE", "BUILD", "NEWOBJ", "NEWOBJ_EX", "OBJ", "INST"}
_ST_DTYPES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2,
              "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


@dataclass
class ModelScan:
    """The verdict on one model file. ``safe`` is False when it must not be loaded."""

    path: str
    format: str
    safe: bool
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "safe": self.safe,
                "problems": self.problems, "notes": self.notes}


def _one_pickle(stream: io.BytesIO, where: str, problems: list[str], calls: Counter[str]) -> None:
    strings: list[str | None] = []
    memo: dict[int, str | None] = {}
    last: str | None = None
    for op, raw_arg, raw_pos in pickletools.genops(stream):
        name, value, pos = op.name, None, int(raw_pos or 0)
        arg: Any = raw_arg
        if name in _STRINGS:
            value = arg if isinstance(arg, str) else str(arg)
            strings.append(value)
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            value = memo.get(int(arg))
            strings.append(value)
        elif name == "MEMOIZE":
            memo[len(memo)] = last
        elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[int(arg)] = last
        if name in _CALLS:
            calls[name] += 1
        if name in ("GLOBAL", "INST"):
            module, _, attr = str(arg).partition(" ")
            _check_global(name, pos, f"{module}.{attr}", where, problems)
        elif name == "STACK_GLOBAL":
            if len(strings) >= 2 and strings[-1] is not None and strings[-2] is not None:
                _check_global(name, pos, f"{strings[-2]}.{strings[-1]}", where, problems)
            else:
                problems.append(f"{where}: STACK_GLOBAL at byte {pos} imports a name that "
                                "cannot be read without running the pickle")
        elif name in ("EXT1", "EXT2", "EXT4"):
            problems.append(f"{where}: {name} at byte {pos} imports extension code {arg}")
        last = value


def _check_global(op: str, pos: int, dotted: str, where: str, problems: list[str]) -> None:
    if dotted not in SAFE_GLOBALS:
        problems.append(f"{where}: {op} at byte {pos} imports {dotted} (not allowlisted)")


def scan_pickle(data: bytes, where: str = "pickle") -> tuple[list[str], list[str]]:
    """(problems, notes) for a byte string holding one or more pickles."""
    problems: list[str] = []
    notes: list[str] = []
    calls: Counter[str] = Counter()
    stream = io.BytesIO(data)
    count = 0
    while stream.tell() < len(data):
        start = stream.tell()
        try:
            _one_pickle(stream, where, problems, calls)
        except (ValueError, KeyError, IndexError, struct.error) as exc:
            if count == 0:
                problems.append(f"{where}: not a readable pickle ({exc}); refusing it")
            else:
                notes.append(f"{where}: {len(data) - start} bytes of non-pickle data follow "
                             f"{count} pickle(s) (raw tensor storage in legacy files)")
            break
        count += 1
    if problems and calls:
        problems.append(f"{where}: code-running opcodes present: "
                        + ", ".join(f"{k} x{v}" for k, v in sorted(calls.items())))
    return problems, notes


def _npy_dtype(head: bytes) -> Any:
    """The dtype in a .npy header (read as a literal, never executed)."""
    import ast

    import numpy as np

    if head[:6] != b"\x93NUMPY":
        raise ValueError("not a .npy array")
    if head[6] == 1:
        n, start = struct.unpack("<H", head[8:10])[0], 10
    else:
        n, start = struct.unpack("<I", head[8:12])[0], 12
    header = ast.literal_eval(head[start:start + n].decode("utf-8"))
    return np.lib.format.descr_to_dtype(header["descr"])


def _scan_zip(path: Path, scan: ModelScan) -> None:
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        scan.format = "pytorch-zip" if any(n.endswith("data.pkl") for n in names) else "zip"
        for name in names:
            where = f"{path.name}:{name}"
            if name.endswith(".pkl"):
                problems, notes = scan_pickle(zf.read(name), where)
                scan.problems += problems
                scan.notes += notes
            elif "/code/" in f"/{name}" and name.endswith(".py"):
                scan.problems.append(f"{where}: TorchScript code runs when the model is loaded")
            elif name.endswith(".npy"):
                if _npy_dtype(zf.read(name)[:65536]).hasobject:
                    scan.problems.append(f"{where}: object array (stored as a pickle)")


def _scan_safetensors(data: bytes, scan: ModelScan) -> None:
    n = struct.unpack("<Q", data[:8])[0]
    if n > len(data) - 8:
        raise ValueError(f"header length {n} runs past the end of the file")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    body = len(data) - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise ValueError("__metadata__ must map strings to strings")
            continue
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in _ST_DTYPES or not all(isinstance(s, int) and s >= 0 for s in shape):
            raise ValueError(f"tensor {name!r}: bad dtype or shape")
        begin, end = (int(o) for o in offsets)
        if not 0 <= begin <= end <= body or end - begin != math.prod(shape) * _ST_DTYPES[dtype]:
            raise ValueError(f"tensor {name!r}: data offsets do not fit its shape or the file")
    scan.notes.append(f"{len(header) - ('__metadata__' in header)} tensors")


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        b = data[i]
        value |= (b & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if not b & 0x80:
            return value, i


def _scan_onnx(data: bytes, scan: ModelScan) -> None:
    i, seen = 0, set()
    while i < len(data):
        key, i = _varint(data, i)
        fnum, wire = key >> 3, key & 7
        if wire == 0:
            _, i = _varint(data, i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            length, i = _varint(data, i)
            i += length
        else:
            raise ValueError(f"bad protobuf wire type {wire} at byte {i}")
        if i > len(data) or fnum == 0:
            raise ValueError("truncated or malformed protobuf")
        seen.add((fnum, wire))
    if (1, 0) not in seen or (7, 2) not in seen:
        raise ValueError("no ir_version or graph: not an ONNX ModelProto")


def scan_model(path: str | Path) -> ModelScan:
    """Decide whether ``path`` is safe to load, without loading it."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read ({exc.strerror})", path=str(p)) from None
    scan = ModelScan(path=str(p), format="unknown", safe=False)
    suffix = p.suffix.lower()
    try:
        if data[:4] == b"PK\x03\x04":
            _scan_zip(p, scan)
        elif len(data) > 9 and data[8:9] == b"{" and suffix != ".onnx":
            scan.format = "safetensors"
            _scan_safetensors(data, scan)
        elif suffix == ".onnx":
            scan.format = "onnx"
            _scan_onnx(data, scan)
        elif data[:1] == b"\x80" or suffix in {".pkl", ".pickle", ".pt", ".pth", ".bin", ".joblib"}:
            scan.format = "pickle"
            problems, notes = scan_pickle(data, p.name)
            scan.problems += problems
            scan.notes += notes
        else:
            raise DataError("unknown model format (expected safetensors, ONNX, a PyTorch "
                            "archive or a pickle)", path=str(p))
    except (ValueError, KeyError, TypeError, struct.error, zipfile.BadZipFile,
            UnicodeDecodeError) as exc:
        scan.problems.append(f"{p.name}: malformed {scan.format} file ({exc})")
    scan.safe = not scan.problems
    return scan
