"""Save and load models only in formats that cannot run code when loaded.

:func:`save_model` writes tensors as safetensors, scikit-learn estimators as skops and
ONNX graphs as ONNX; it never pickles. :func:`load_model` refuses anything
:func:`~poisonguard.provenance.modelscan.scan_model` refuses, checks a
``sign-model`` manifest under the shared
:class:`~poisonguard.provenance.trust.SignaturePolicy` when given one, and only then
loads. Pickles and PyTorch ``.pt`` files are never loaded here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from poisonguard.errors import DataError, MissingDependencyError, UsageError
from poisonguard.provenance.models import read_model_manifest, verify_model_file
from poisonguard.provenance.modelscan import ModelLimits, ModelRefusedError, scan_model
from poisonguard.provenance.trust import SignaturePolicy

__all__ = ["LOADABLE_FORMATS", "load_model", "save_model"]

LOADABLE_FORMATS = ("safetensors", "skops", "onnx")


def _need(module: str, purpose: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(module.split(".")[0], "models", purpose) from None


def save_model(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``obj`` in a safe format chosen by its type; returns the path.

    A mapping of names to numpy arrays or torch tensors -> safetensors; a
    scikit-learn estimator -> skops; an ``onnx.ModelProto`` -> ONNX. The file's
    suffix must match (``.safetensors``, ``.skops``, ``.onnx``).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> p = save_model({"w": np.ones(3, dtype=np.float32)},
    ...                pathlib.Path(tempfile.mkdtemp()) / "m.safetensors")
    >>> load_model(p)["w"].tolist()
    [1.0, 1.0, 1.0]
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if isinstance(obj, dict):
        if suffix != ".safetensors":
            raise UsageError(f"{p}: tensors are saved as .safetensors")
        if obj and all(type(v).__module__.startswith("torch") for v in obj.values()):
            _need("safetensors.torch", "saving tensors").save_file(
                {k: v.contiguous() for k, v in obj.items()}, str(p))
        else:
            import numpy as np

            arrays = {str(k): np.ascontiguousarray(v) for k, v in obj.items()}
            _need("safetensors.numpy", "saving tensors").save_file(arrays, str(p))
        return p
    if type(obj).__name__ == "ModelProto" and type(obj).__module__.startswith("onnx"):
        if suffix != ".onnx":
            raise UsageError(f"{p}: ONNX models are saved as .onnx")
        _need("onnx", "saving ONNX models").save_model(obj, str(p))
        return p
    if hasattr(obj, "get_params") and hasattr(obj, "fit"):
        if suffix != ".skops":
            raise UsageError(f"{p}: scikit-learn models are saved as .skops")
        _need("skops.io", "saving scikit-learn models").dump(obj, p)
        return p
    raise UsageError(f"{p}: cannot save a {type(obj).__name__} safely (give a dict of "
                     "tensors, a scikit-learn estimator or an onnx.ModelProto)")


def load_model(
    path: str | os.PathLike[str], *, signature: str | os.PathLike[str] | None = None,
    pubkey: Ed25519PublicKey | str | os.PathLike[str] | None = None,
    trust_embedded_key: bool = False, framework: str = "numpy",
    limits: ModelLimits | None = None,
) -> Any:
    """Check ``path`` (and its signed manifest, if given), then load it.

    Returns ``dict[str, numpy.ndarray]`` for safetensors (torch tensors with
    ``framework="pt"``), the estimator for skops (only skops' default-trusted types)
    and an ``onnx.ModelProto`` for ONNX. Raises :class:`ModelRefusedError` for a file
    that may run code or changed since signing, :class:`DataError` for a malformed
    one, :class:`UsageError` for a signature without a pinned key (or
    ``trust_embedded_key=True``).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> p = save_model({"b": np.zeros(2)}, pathlib.Path(tempfile.mkdtemp()) / "b.safetensors")
    >>> sorted(load_model(p))
    ['b']
    """
    p = Path(path)
    scan = scan_model(p, limits=limits)
    if not scan.safe:
        raise ModelRefusedError(f"{p}: refused: " + "; ".join(scan.problems[:3]))
    if scan.format not in LOADABLE_FORMATS:
        raise ModelRefusedError(f"{p}: {scan.format} files are not loaded by load_model "
                                f"(save the model as {', '.join(LOADABLE_FORMATS)})")
    if signature is not None:
        if isinstance(pubkey, Ed25519PublicKey) or pubkey is None:
            policy = SignaturePolicy(pinned=pubkey, trust_embedded=trust_embedded_key)
        else:
            policy = SignaturePolicy.from_options(pubkey, trust_embedded_key=trust_embedded_key)
        _, diffs = verify_model_file(p, read_model_manifest(Path(signature)), policy=policy)
        if diffs:
            raise ModelRefusedError(f"{p}: changed since signing: " + "; ".join(diffs))
    try:
        if scan.format == "safetensors":
            module = "safetensors.torch" if framework == "pt" else "safetensors.numpy"
            return _need(module, "loading safetensors").load_file(str(p))
        if scan.format == "onnx":
            return _need("onnx", "loading ONNX").load_model(str(p), load_external_data=False)
        return _need("skops.io", "loading skops").load(p, trusted=None)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot load the model ({exc})", path=str(p)) from None
