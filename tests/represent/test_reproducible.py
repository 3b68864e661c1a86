"""The image CNN's reproducible CPU mode: the same bits under other instruction sets.

Each child process sets the environment variables that pick torch's, oneDNN's and
MKL's kernels before torch loads (an AVX2 machine emulated on an AVX-512 one), trains
the representation on 300 digits and prints digests of the out-of-fold probabilities
and of both embeddings. Without the mode the digests differ on an AVX-512 machine
(torch's log-softmax, oneDNN's convolutions and MKL's products round by the kernel);
on an AVX2-only machine the emulation changes nothing and the tests still hold.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from poisonguard.datasets import builtin_dataset
from poisonguard.errors import UsageError
from poisonguard.represent.image import image_representation

ROOT = Path(__file__).resolve().parents[2]
#: An AVX2 CPU's kernels for torch, oneDNN and MKL (MKL_ENABLE_INSTRUCTIONS caps MKL's
#: dispatch as the CPU would; it is not a reproducibility setting).
AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
        "DNNL_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
KERNEL_VARIABLES = (*AVX2, "MKL_CBWR")


def digests(reproducible: bool = True, use_mkl_first: bool = False) -> str:
    """JSON: digests of the representation of 300 digits (2 folds, 2 epochs) and its
    ``meta["cpu_reproducible"]``; what the child processes print."""
    import hashlib

    import torch

    if use_mkl_first:  # a matrix product before poisonguard asks for MKL's branch
        torch.ones(64, 64) @ torch.ones(64, 64)
    rep = image_representation(builtin_dataset("digits").subset(np.arange(300)), folds=2,
                               epochs=2, seed=0, threads=1, reproducible=reproducible)
    out = {name: hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()[:16]
           for name, arr in (("proba", rep.proba), ("embedding", rep.embedding),
                             ("embedding_oof", rep.embedding_oof))}
    out["state"] = rep.meta["cpu_reproducible"]
    out["mkl"] = str(torch.backends.mkl.is_available())
    return json.dumps(out, sort_keys=True)


def _child_env(variables: dict[str, str]) -> dict[str, str]:
    """This process's environment with ``variables`` as the only kernel settings."""
    env = {k: v for k, v in os.environ.items() if k not in KERNEL_VARIABLES}
    env.update(variables, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return env


def _digests_under(variables: dict[str, str], *, reproducible: bool = True,
                   use_mkl_first: bool = False) -> dict[str, str]:
    env = _child_env(variables)
    code = ("from tests.represent.test_reproducible import digests; "
            f"print(digests({reproducible}, {use_mkl_first}))")
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_same_weights_and_probabilities_under_avx2_and_the_machines_own_kernels() -> None:
    own = _digests_under({})
    avx2 = _digests_under(AVX2)
    assert own == avx2
    assert own["state"] == ("yes" if own["mkl"] == "True" else
                            "no: torch without MKL (its BLAS rounds by the CPU)")


def test_mkl_already_used_or_set_by_the_user_is_reported_not_fatal() -> None:
    late = _digests_under({}, use_mkl_first=True)
    assert late["state"] == ("MKL: too late" if late["mkl"] == "True" else
                             "no: torch without MKL (its BLAS rounds by the CPU)")
    if late["mkl"] == "True":
        users = _digests_under({"MKL_CBWR": "AUTO"})
        assert users["state"] == "MKL: MKL_CBWR=AUTO"


def test_reproducible_is_off_by_default_and_checked() -> None:
    data = builtin_dataset("digits").subset(np.arange(60))
    rep = image_representation(data, folds=2, epochs=1, threads=1)
    assert rep.meta["cpu_reproducible"] == "off"
    with pytest.raises(UsageError, match="reproducible must be True or False"):
        image_representation(data, folds=2, epochs=1, reproducible="yes")  # type: ignore[arg-type]


def _scan_under(variables: dict[str, str], data: Path, out: Path) -> dict[str, object]:
    env = _child_env(variables)
    done = subprocess.run(
        [sys.executable, "-m", "poisonguard", "scan", str(data), "--detectors", "label,knn",
         "--reproducible", "--threads", "1", "--no-ledger", "--json", "--out", str(out)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_cli_scan_gives_the_same_findings_under_avx2_and_the_machines_own_kernels(
        tmp_path: Path) -> None:
    digits = builtin_dataset("digits")
    data = tmp_path / "digits.npz"
    np.savez(data, X=np.asarray(digits.images)[:400], y=np.asarray(digits.labels)[:400])
    own = _scan_under({}, data, tmp_path / "own")
    avx2 = _scan_under(AVX2, data, tmp_path / "avx2")
    representation = own["representation"]
    assert isinstance(representation, dict)
    assert representation["cpu_reproducible"] in ("yes", "no: torch without MKL (its BLAS "
                                                          "rounds by the CPU)")
    if representation["cpu_reproducible"] == "yes":
        assert (tmp_path / "own" / "findings.json").read_bytes() == \
            (tmp_path / "avx2" / "findings.json").read_bytes()
    assert {k: v for k, v in own.items() if k != "findings"} == \
        {k: v for k, v in avx2.items() if k != "findings"}
