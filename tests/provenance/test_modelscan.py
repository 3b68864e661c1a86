"""verify-model refuses pickles that can run code, without ever unpickling them."""

from __future__ import annotations

import json
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from poisonguard.cli import app
from poisonguard.errors import DataError
from poisonguard.provenance.modelscan import scan_model

runner = CliRunner()


class _Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("echo pwned > /tmp/poisonguard-pwned",))


def _run(*args: str | Path) -> tuple[int, str]:
    res = runner.invoke(app, [str(a) for a in args])
    return res.exit_code, res.output


def _safetensors(path: Path) -> Path:
    body = np.arange(6, dtype="<f4").tobytes()
    header = json.dumps({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
                         "__metadata__": {"format": "pt"}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + body)
    return path


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_malicious_pickle_is_refused_with_opcode_and_callable(
    tmp_path: Path, protocol: int
) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"weights": [1.0, 2.0], "x": _Evil()}, protocol=protocol))
    code, text = _run("verify-model", path)
    assert code == 1 and "REFUSED" in text
    op = "GLOBAL" if protocol < 4 else "STACK_GLOBAL"
    assert f"{op} at byte" in text and f"imports {os.system.__module__}.system" in text
    assert "REDUCE x1" in text
    assert not Path("/tmp/poisonguard-pwned").exists()


def test_memoised_names_are_resolved() -> None:
    # a hand-written protocol-4 pickle that fetches the module name through the memo
    data = (b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94h\x00h\x01\x93\x8c\x02id\x85R.")
    from poisonguard.provenance.modelscan import scan_pickle

    problems, _ = scan_pickle(data, "p")
    assert any("imports os.system" in p for p in problems)


def test_torch_archives(tmp_path: Path) -> None:
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    torch.save(net.state_dict(), tmp_path / "good.pt")
    scan = scan_model(tmp_path / "good.pt")
    assert scan.safe and scan.format == "pytorch-zip"
    assert _run("verify-model", tmp_path / "good.pt")[0] == 0
    torch.save({"state": net.state_dict(), "hook": _Evil()}, tmp_path / "evil.pth")
    code, text = _run("verify-model", tmp_path / "evil.pth")
    assert code == 1 and "data.pkl: GLOBAL at byte" in text and "system" in text
    torch.save(net, tmp_path / "whole.pt")  # a whole module pickles its class: refused
    scan = scan_model(tmp_path / "whole.pt")
    assert not scan.safe and any("torch.nn.modules" in p for p in scan.problems)


def test_safetensors_and_onnx_are_accepted(tmp_path: Path) -> None:
    st = _safetensors(tmp_path / "m.safetensors")
    assert scan_model(st).format == "safetensors" and scan_model(st).safe
    onnx = _onnx(tmp_path / "m.onnx")
    assert scan_model(onnx).safe and scan_model(onnx).format == "onnx"
    code, text = _run("verify-model", onnx)
    assert code == 0 and "OK" in text


def _onnx(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                         [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save_model(helper.make_model(graph), str(path))
    return path


def test_malformed_files_are_refused(tmp_path: Path) -> None:
    st = _safetensors(tmp_path / "m.safetensors")
    st.write_bytes(st.read_bytes()[:-4])  # data offsets run past the end
    with pytest.raises(DataError, match="malformed safetensors"):
        scan_model(st)
    onnx = tmp_path / "bad.onnx"
    onnx.write_bytes(b"\x08\x07\x3a\x09\x12")  # graph length past the end
    with pytest.raises(DataError, match="not a valid ONNX"):
        scan_model(onnx)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x80\x04not a pickle at all")
    assert not scan_model(junk).safe
    with zipfile.ZipFile(tmp_path / "x.npz", "w") as zf:
        with zf.open("X.npy", "w") as fh:
            np.lib.format.write_array(fh, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert not scan_model(tmp_path / "x.npz").safe
    (tmp_path / "weights.txt").write_text("hello")
    code, text = _run("verify-model", tmp_path / "weights.txt")
    assert code == 2 and "unknown model format" in text


def test_sign_and_verify_model(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    st = _safetensors(tmp_path / "m.safetensors")
    sig = tmp_path / "m.sig.json"
    code, text = _run("sign-model", st, "--key", keys[0], "--out", sig)
    assert code == 0, text
    assert _run("verify-model", st, "--signature", sig, "--pubkey", keys[1])[0] == 0
    data = bytearray(st.read_bytes())
    data[-1] ^= 1
    st.write_bytes(bytes(data))
    code, text = _run("verify-model", st, "--signature", sig, "--pubkey", keys[1])
    assert code == 1 and "changed since signing: sha256" in text
    manifest = json.loads(sig.read_text())
    manifest["sha256"] = "0" * 64
    sig.write_text(json.dumps(manifest))
    code, text = _run("verify-model", st, "--signature", sig, "--pubkey", keys[1])
    assert code == 2 and "bad signature" in text
    manifest = json.loads(sig.read_text())
    assert _run("verify-model", st, "--signature", sig)[0] == 2  # no signer pinned
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(_Evil()))
    code, text = _run("sign-model", evil, "--key", keys[0], "--out", tmp_path / "e.sig")
    assert code == 2 and "refusing to sign" in text
