"""Issue 10 item 2: ``verify-model`` must refuse every file that runs code when loaded.

Attack files are built here and never loaded in this process; where a test proves
the payload is live, it loads it in a child process whose payload only creates a
marker file in the test's temporary folder.
"""

from __future__ import annotations

import io
import pickle
import random
import struct
import subprocess
import sys
import zipfile
from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING
from pathlib import Path

import numpy as np
import pytest
import torch

from poisonguard.provenance.modelio import load_model, save_model
from poisonguard.provenance.modelscan import SAFE_GLOBALS, ModelRefusedError, scan_model
from tests.security.conftest import run_cli


def _u(text: str) -> bytes:
    data = text.encode()
    return b"\x8c" + bytes([len(data)]) + data  # SHORT_BINUNICODE


def _stack_global_attack(marker: Path, variant: str) -> bytes:
    """os.system(touch marker): the scanner of old read the last two strings pushed."""
    cmd = f"touch {marker}"
    body = _u("os") + _u("system")
    if variant == "pop":
        body += _u("collections") + _u("OrderedDict") + b"00"
    else:  # MARK ... POP_MARK
        body += b"(" + _u("collections") + _u("OrderedDict") + b"1"
    return b"\x80\x04" + body + b"\x93" + _u(cmd) + b"\x85R."


def _live(path: Path, marker: Path, loader: str = "pickle") -> None:
    """Load ``path`` in a child process: the payload creates ``marker``."""
    code = {"pickle": "import pickle,sys; pickle.load(open(sys.argv[1],'rb'))",
            "legacy": "import pickle,sys; f=open(sys.argv[1],'rb'); pickle.load(f); pickle.load(f)",
            "torch": "import torch,sys; torch.load(sys.argv[1], weights_only=False)"}[loader]
    subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, timeout=120)
    assert marker.exists(), "the attack payload should be live"
    marker.unlink()


@pytest.mark.parametrize("variant", ["pop", "pop_mark"])
def test_stack_global_takes_its_name_from_the_stack(tmp_path: Path, keys: tuple[Path, Path],
                                                    variant: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pkl"
    path.write_bytes(_stack_global_attack(marker, variant))
    code, text = run_cli("verify-model", path)
    assert code == 1 and "REFUSED" in text and "imports os.system" in text
    code, text = run_cli("sign-model", path, "--key", keys[0], "--out", tmp_path / "s.json")
    assert code == 2 and "refusing to sign" in text
    assert not marker.exists()
    _live(path, marker)


def test_attack_inside_a_real_torch_zip(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    good = tmp_path / "good.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), good)
    evil = tmp_path / "evil.pt"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(evil, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("data.pkl"):  # payload, POP, then the real state dict
                data = _stack_global_attack(marker, "pop")[:-1] + b"0" + data[2:]
            dst.writestr(info, data)
    code, text = run_cli("verify-model", evil)
    assert code == 1 and "imports os.system" in text
    assert not marker.exists()
    assert run_cli("verify-model", good)[0] == 0
    _live(evil, marker, "torch")


def test_legacy_pt_hides_nothing_after_an_unusual_int(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    hidden = (b"\x80\x02I0x3e9\n0" + b"cos\nsystem\n" + _u(f"touch {marker}") + b"\x85R.")
    path = tmp_path / "legacy.pt"
    path.write_bytes(magic + hidden + b"\x00" * 64)
    code, text = run_cli("verify-model", path)
    assert code == 1 and "REFUSED" in text and "INT argument" in text
    assert not marker.exists()
    _live(path, marker, "legacy")


def test_empty_and_malformed_files_are_one_line_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    code, text = run_cli("verify-model", empty)
    assert code == 2 and "OK" not in text and "empty" in text
    npz = tmp_path / "bad.npz"
    with zipfile.ZipFile(npz, "w") as zf:
        zf.writestr("X.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': <f4'   \n")
    code, text = run_cli("verify-model", npz)
    assert code == 2 and "malformed .npy header" in text and "Traceback" not in text
    assert len(text.strip().splitlines()) == 1
    odd = tmp_path / "odd.pt"
    with zipfile.ZipFile(odd, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"a": 1}))
    raw = bytearray(odd.read_bytes())
    raw[8:10] = struct.pack("<H", 99)  # unknown compression method in the local header
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 10:central + 12] = struct.pack("<H", 99)
    odd.write_bytes(bytes(raw))
    code, text = run_cli("verify-model", odd)
    assert code == 2 and "Traceback" not in text and len(text.strip().splitlines()) == 1


def test_decompression_bomb_is_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", pickle.dumps("a" * (20 << 20), protocol=4))
    assert bomb.stat().st_size < 200_000
    code, text = run_cli("verify-model", bomb)
    assert code == 1 and "ratio above" in text


def test_signature_needs_a_pinned_key_or_an_explicit_flag(tmp_path: Path,
                                                          keys: tuple[Path, Path]) -> None:
    model = save_model({"w": np.ones(4, dtype=np.float32)}, tmp_path / "m.safetensors")
    sig = tmp_path / "m.sig.json"
    assert run_cli("sign-model", model, "--key", keys[0], "--out", sig)[0] == 0
    code, text = run_cli("verify-model", model, "--signature", sig)
    assert code == 2 and "--pubkey" in text and "--trust-embedded-key" in text
    code, text = run_cli("verify-model", model, "--signature", sig, "--trust-embedded-key")
    assert code == 0 and "not pinned" in text
    assert run_cli("verify-model", model, "--signature", sig, "--pubkey", keys[1])[0] == 0


class _Custom:
    def __init__(self) -> None:
        self.coef = [1.0]


def test_safe_formats_round_trip_and_skops_refuses_unknown_types(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(0).normal(size=(40, 3))
    est = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    path = save_model(est, tmp_path / "clf.skops")
    assert scan_model(path).safe and scan_model(path).format == "skops"
    assert np.array_equal(load_model(path).predict(x), est.predict(x))
    tensors = load_model(save_model({"w": torch.ones(2)}, tmp_path / "t.safetensors"),
                         framework="pt")
    assert torch.equal(tensors["w"], torch.ones(2))
    import skops.io as sio

    sio.dump({"model": _Custom()}, tmp_path / "custom.skops")
    scan = scan_model(tmp_path / "custom.skops")
    assert not scan.safe and "_Custom" in scan.problems[0]
    with pytest.raises(ModelRefusedError):
        load_model(tmp_path / "custom.skops")
    with pytest.raises(ModelRefusedError):
        load_model(tmp_path / "t.pkl" if (tmp_path / "t.pkl").write_bytes(pickle.dumps(1))
                   else tmp_path)


def _allowed_by_c_unpickler(data: bytes) -> set[str]:
    """Names CPython's C unpickler asks for while loading ``data`` (never importing)."""
    asked: set[str] = set()

    class _Stub:
        def __init__(self, *a: object, **k: object) -> None:
            pass

        def __call__(self, *a: object, **k: object) -> _Stub:
            return _Stub()

        def __setstate__(self, state: object) -> None:
            pass

        def append(self, v: object) -> None:
            pass

        def extend(self, v: object) -> None:
            pass

        def __setitem__(self, k: object, v: object) -> None:
            pass

    class _Recorder(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> object:
            # the default find_class maps Python 2 names first (protocols < 3)
            module, name = NAME_MAPPING.get((module, name), (IMPORT_MAPPING.get(module, module),
                                                             name))
            asked.add(f"{module}.{name}")
            return _Stub

        def persistent_load(self, pid: object) -> object:
            return _Stub()

    try:
        _Recorder(io.BytesIO(data)).load()
    except Exception:  # noqa: BLE001 - malformed mutants fail in many ways
        pass
    return asked


def test_what_the_analyser_accepts_imports_only_allowlisted_names() -> None:
    from poisonguard.provenance.modelscan import scan_pickle

    rng = random.Random(7)
    seeds = [pickle.dumps(o, protocol=p) for p in range(6)
             for o in ({"w": [1.0, 2]}, (1, "os", "system"), [b"x", {1, 2}])]
    seeds += [_stack_global_attack(Path("/nonexistent/m"), v) for v in ("pop", "pop_mark")]
    tokens = [b"0", b"1", b"2", b"(", b"\x93", b"R", b"\x94", b"h\x00", b"h\x01", b"q\x00",
              _u("os"), _u("system"), _u("builtins"), _u("eval"), b"cos\nsystem\n"]
    accepted = 0
    for _ in range(400):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data))
            data[at:at + rng.randint(0, 2)] = rng.choice(tokens)
        problems, _ = scan_pickle(bytes(data))
        if not problems:
            accepted += 1
            names = _allowed_by_c_unpickler(bytes(data))
            assert names <= SAFE_GLOBALS, (bytes(data), names)
    assert accepted > 20
