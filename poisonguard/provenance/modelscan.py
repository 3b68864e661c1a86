"""Read model files without loading them: refuse anything that can run code.

Formats and what is checked (nothing is ever unpickled or executed):

- **pickle** (``.pkl``, ``.pt``/``.pth``/``.bin``, ``.joblib``): every opcode is
  emulated exactly as CPython's C unpickler runs it (:mod:`.pickle_vm`); imports must
  be on :data:`SAFE_GLOBALS` (what ``torch.load(weights_only=True)`` needs), calls
  must call allowlisted imports; whatever cannot be parsed exactly is refused. A plain
  pickle must end the file; a legacy ``torch.save`` file is exactly five pickles then
  raw storage bytes (what ``torch.load`` reads raw).
- **zip** (PyTorch archives, ``.npz``): every ``*.pkl`` member as above, TorchScript
  ``code/`` refused, ``.npy`` headers parsed and object arrays refused, duplicate
  names and decompression bombs (ratio, size) refused.
- **safetensors**: header length, JSON header, dtypes, shapes and contiguous data
  offsets must describe the file exactly.
- **ONNX**: parsed and checked with the ``onnx`` package (``onnx.checker``); external
  data must be relative paths inside the model's folder.
- **skops** (scikit-learn): ``skops.io.get_untrusted_types`` must be empty.

A container that is malformed (zip, npy, safetensors, ONNX, skops), an empty file or
an unknown format is a :class:`~poisonguard.errors.DataError` (exit 2); a file that
may run code, or that the analysis cannot read exactly or within the limits, is
*refused* (``ModelScan.safe`` False, exit 1).
"""

from __future__ import annotations

import json
import math
import struct
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from poisonguard.errors import DataError, IntegrityError
from poisonguard.provenance.pickle_vm import PickleRefused, analyse_pickle

__all__ = ["SAFE_GLOBALS", "ModelLimits", "ModelRefusedError", "ModelScan", "scan_model",
           "scan_pickle"]

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
_ST_DTYPES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2,
              "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
_LEGACY_MAGIC = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19."  # pickle of torch's MAGIC_NUMBER
_LEGACY_PICKLES = 5  # magic, protocol, sys_info, the object, the storage keys
_PICKLE_SUFFIXES = {".pkl", ".pickle", ".pt", ".pth", ".bin", ".joblib", ".ckpt"}


class ModelRefusedError(IntegrityError):
    """A model file that must not be loaded (it may run code, or changed since signing)."""


@dataclass(frozen=True)
class ModelLimits:
    """Resource limits of the analysis; beyond them a file is refused, not guessed.

    Examples
    --------
    >>> ModelLimits(max_pickle_bytes=1 << 20).max_ratio
    100.0
    """

    max_pickle_bytes: int = 256 << 20
    max_ratio: float = 100.0
    max_header_bytes: int = 100 << 20
    max_ops: int = 50_000_000
    max_seconds: float = 120.0


@dataclass
class ModelScan:
    """The verdict on one model file. ``safe`` is False when it must not be loaded.

    Examples
    --------
    >>> import tempfile, pathlib, pickle
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "w.pkl"
    >>> _ = p.write_bytes(pickle.dumps({"w": [1.0]}))
    >>> result = scan_model(p)
    >>> result.format, result.safe, result.problems
    ('pickle', True, [])
    """

    path: str
    format: str
    safe: bool
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "safe": self.safe,
                "problems": self.problems, "notes": self.notes}


def _allowed(module: str, name: str) -> bool:
    return f"{module}.{name}" in SAFE_GLOBALS


def _pickles(data: bytes, where: str, count: int | None, limits: ModelLimits,
             deadline: float) -> tuple[list[str], int, Counter[str]]:
    """Analyse ``count`` pickles in a row (None: one, which must end ``data``)."""
    problems: list[str] = []
    calls: Counter[str] = Counter()
    pos = 0
    for _ in range(count or 1):
        try:
            verdict = analyse_pickle(data, start=pos, allowed=_allowed,
                                     max_ops=limits.max_ops, deadline=deadline)
        except PickleRefused as exc:
            problems += [f"{where}: {r}" for r in exc.refusals]
            problems.append(f"{where}: pickle at byte {pos}: {exc}; refusing it")
            return problems, pos, calls
        problems += [f"{where}: {r}" for r in verdict.refusals]
        calls.update(verdict.calls)
        pos = verdict.end
    if count is None and pos < len(data):
        problems.append(f"{where}: {len(data) - pos} bytes follow the pickle (a loader that "
                        "reads on would unpickle them); refusing it")
    return problems, pos, calls


def scan_pickle(data: bytes, where: str = "pickle", *, limits: ModelLimits | None = None,
                legacy: bool | None = None) -> tuple[list[str], list[str]]:
    """(problems, notes) for the bytes of a pickle file (or a legacy ``torch.save`` file).

    Examples
    --------
    >>> import pickle
    >>> scan_pickle(pickle.dumps([1, 2, 3]))
    ([], [])
    """
    limits = limits or ModelLimits()
    deadline = time.monotonic() + limits.max_seconds
    if legacy is None:
        legacy = data.startswith(_LEGACY_MAGIC)
    problems, end, calls = _pickles(data, where, _LEGACY_PICKLES if legacy else None,
                                    limits, deadline)
    notes = []
    if legacy and not problems:
        notes.append(f"{where}: legacy torch.save file: {_LEGACY_PICKLES} pickles, then "
                     f"{len(data) - end} bytes of raw tensor storage (read raw by torch.load)")
    if problems and calls:
        problems.append(f"{where}: code-running opcodes present: "
                        + ", ".join(f"{k} x{v}" for k, v in sorted(calls.items())))
    return problems, notes


def _read_bounded(fh: Any, limit: int, where: str, scan: ModelScan) -> bytes | None:
    data = fh.read(limit + 1)
    if len(data) > limit:
        scan.problems.append(f"{where}: larger than {limit} bytes to analyse "
                             "(ModelLimits.max_pickle_bytes); refusing it")
        return None
    return bytes(data)


def _npy_header(head: bytes, where: str) -> Any:
    """The dtype in a .npy header (parsed as a literal, never executed)."""
    import io

    import numpy as np

    stream = io.BytesIO(head)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            _, _, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version in ((2, 0), (3, 0)):
            _, _, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unknown .npy version {version}")
    except Exception as exc:  # numpy raises many types (tokenize, ast) for bad headers
        raise DataError(f"{where}: malformed .npy header ({type(exc).__name__})") from None
    return dtype


def _scan_zip(path: Path, scan: ModelScan, limits: ModelLimits) -> None:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DataError(f"malformed zip archive ({exc})", path=str(path)) from None
    with zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        scan.format = ("pytorch-zip" if any(n.endswith("data.pkl") for n in names)
                       else "npz" if names and all(n.endswith(".npy") for n in names) else "zip")
        dupes = sorted(n for n, k in Counter(names).items() if k > 1)
        if dupes:
            scan.problems.append(f"{path.name}: member names appear twice ({dupes[0]}): loaders "
                                 "may read different copies; refusing it")
        deadline = time.monotonic() + limits.max_seconds
        for info in infos:
            where = f"{path.name}:{info.filename}"
            if info.compress_type != zipfile.ZIP_STORED and \
                    info.file_size > limits.max_ratio * max(info.compress_size, 1):
                scan.problems.append(f"{where}: inflates {info.compress_size} -> "
                                     f"{info.file_size} bytes (ratio above "
                                     f"{limits.max_ratio:g}); refusing it")
                continue
            if info.filename.endswith(".pkl"):
                data = _read_member(zf, info, limits.max_pickle_bytes, where, scan)
                if data is not None:
                    problems, _, calls = _pickles(data, where, None, limits, deadline)
                    if problems and calls:
                        problems.append(f"{where}: code-running opcodes present: " + ", ".join(
                            f"{k} x{v}" for k, v in sorted(calls.items())))
                    scan.problems += problems
            elif "/code/" in f"/{info.filename}" and info.filename.endswith(".py"):
                scan.problems.append(f"{where}: TorchScript code runs when the model is loaded")
            elif info.filename.endswith(".npy"):
                head = _read_member(zf, info, 1 << 16, where, None)
                if head is not None and _npy_header(head, where).hasobject:
                    scan.problems.append(f"{where}: object array (stored as a pickle)")


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, where: str,
                 scan: ModelScan | None) -> bytes | None:
    try:
        with zf.open(info) as fh:
            if scan is None:
                return bytes(fh.read(limit))
            return _read_bounded(fh, limit, where, scan)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise DataError(f"{where}: malformed zip member ({exc})") from None


def _scan_safetensors(path: Path, scan: ModelScan, limits: ModelLimits) -> None:
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise ValueError("shorter than the 8-byte header length")
        n = struct.unpack("<Q", head)[0]
        if n > min(size - 8, limits.max_header_bytes):
            raise ValueError(f"header length {n} runs past the end of the file or the limit")
        header = json.loads(fh.read(n).decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    body = size - 8 - n
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise ValueError("__metadata__ must map strings to strings")
            continue
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise ValueError(f"tensor {name!r}: needs exactly dtype, shape, data_offsets")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in _ST_DTYPES or not isinstance(shape, list) or \
                not all(type(s) is int and s >= 0 for s in shape):
            raise ValueError(f"tensor {name!r}: bad dtype or shape")
        if not isinstance(offsets, list) or len(offsets) != 2 or \
                not all(type(o) is int for o in offsets):
            raise ValueError(f"tensor {name!r}: bad data offsets")
        begin, end = offsets
        if not 0 <= begin <= end <= body or end - begin != math.prod(shape) * _ST_DTYPES[dtype]:
            raise ValueError(f"tensor {name!r}: data offsets do not fit its shape or the file")
        spans.append((begin, end))
    spans.sort()
    edge = 0
    for begin, end in spans:
        if begin != edge:
            raise ValueError("tensor data overlaps or leaves a gap")
        edge = end
    if edge != body:
        raise ValueError(f"{body - edge} bytes after the last tensor")
    scan.notes.append(f"{len(spans)} tensors")


def _scan_onnx(path: Path, scan: ModelScan) -> None:
    try:
        import onnx
        from google.protobuf.message import DecodeError
    except ImportError:
        from poisonguard.errors import MissingDependencyError

        raise MissingDependencyError("onnx", "models", "checking ONNX models") from None
    try:
        model = onnx.load_model(str(path), load_external_data=False)
        onnx.checker.check_model(model)
    except (DecodeError, onnx.checker.ValidationError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"not a valid ONNX model ({first})", path=str(path)) from None
    for tensor in onnx.external_data_helper._get_all_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            location = {e.key: e.value for e in tensor.external_data}.get("location", "")
            where = Path(location)
            if where.is_absolute() or ".." in where.parts or not location:
                scan.problems.append(f"{path.name}: tensor {tensor.name!r} reads external data "
                                     f"from {location!r} (outside the model's folder)")
    domains = sorted({n.domain for n in model.graph.node if n.domain not in ("", "ai.onnx")})
    if domains:
        scan.notes.append("custom operator domains (need a runtime library): "
                          + ", ".join(domains))
    scan.notes.append(f"ONNX IR {model.ir_version}, {len(model.graph.node)} nodes")


def _scan_skops(path: Path, scan: ModelScan) -> None:
    try:
        import skops.io as sio
    except ImportError:
        from poisonguard.errors import MissingDependencyError

        raise MissingDependencyError("skops", "models", "checking skops models") from None
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises many types for corrupt archives
        raise DataError(f"not a valid skops file ({type(exc).__name__}: {exc})",
                        path=str(path)) from None
    for name in untrusted:
        scan.problems.append(f"{path.name}: type {name} is not trusted by skops (loading it "
                             "could run its code)")


def scan_model(path: str | Path, *, limits: ModelLimits | None = None) -> ModelScan:
    """Decide whether ``path`` is safe to load, without loading it.

    Raises :class:`~poisonguard.errors.DataError` for an unreadable, empty, malformed or
    unknown file; returns a :class:`ModelScan` whose ``safe`` is False when refused.

    Examples
    --------
    >>> import tempfile, pathlib, pickle
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "w.pkl"
    >>> _ = p.write_bytes(pickle.dumps({"w": [1.0]}))
    >>> scan_model(p).safe
    True
    """
    limits = limits or ModelLimits()
    p = Path(path)
    try:
        size = p.stat().st_size
        with p.open("rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise DataError(f"cannot read ({exc.strerror})", path=str(p)) from None
    if size == 0:
        raise DataError("empty file: not a model", path=str(p))
    scan = ModelScan(path=str(p), format="unknown", safe=False)
    suffix = p.suffix.lower()
    try:
        if suffix == ".skops":
            scan.format = "skops"
            _scan_skops(p, scan)
        elif suffix == ".onnx":
            scan.format = "onnx"
            _scan_onnx(p, scan)
        elif head[:4] == b"PK\x03\x04":
            _scan_zip(p, scan, limits)
        elif suffix == ".safetensors" or (len(head) > 9 and head[8:9] == b"{"):
            scan.format = "safetensors"
            _scan_safetensors(p, scan, limits)
        elif head[:1] == b"\x80" or suffix in _PICKLE_SUFFIXES:
            scan.format = "pickle"
            with p.open("rb") as fh:
                data = fh.read(limits.max_pickle_bytes + 1)
            legacy = data.startswith(_LEGACY_MAGIC)
            scan.format = "pytorch-legacy" if legacy else "pickle"
            if len(data) > limits.max_pickle_bytes and not legacy:
                scan.problems.append(f"{p.name}: larger than {limits.max_pickle_bytes} bytes "
                                     "to analyse (ModelLimits.max_pickle_bytes); refusing it")
            else:  # a legacy file's pickles must end within the limit; storage follows
                problems, notes = scan_pickle(data[:limits.max_pickle_bytes], p.name,
                                              limits=limits, legacy=legacy)
                scan.problems += problems
                scan.notes += notes
        else:
            raise DataError("unknown model format (expected safetensors, ONNX, skops, a "
                            "PyTorch archive or a pickle)", path=str(p))
    except (ValueError, KeyError, TypeError, struct.error, UnicodeDecodeError) as exc:
        raise DataError(f"malformed {scan.format} file ({exc})", path=str(p)) from None
    scan.safe = not scan.problems
    return scan
