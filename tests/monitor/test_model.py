"""Model files: safetensors round trip; anything else refused without being unpickled."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from poisonguard.errors import DataError, IntegrityError
from poisonguard.monitor import load_model
from tests.monitor.conftest import Digits


def test_round_trip_gives_the_same_predictions(digits: Digits) -> None:
    loaded = load_model(digits.clean_path)
    x = digits.golden.images[:50]
    np.testing.assert_allclose(loaded.predict_proba(x), digits.clean_model.predict_proba(x),
                               atol=1e-6)
    assert loaded.classes == digits.clean_model.classes


class _Boom:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pickle ran",))


def test_a_pickle_is_refused_unread(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(pickle.dumps(_Boom()))
    with pytest.raises((DataError, IntegrityError)):
        load_model(path)
    assert "pickle ran" not in capsys.readouterr().out


def test_a_safetensors_file_without_our_architecture_is_refused(tmp_path: Path,
                                                               digits: Digits) -> None:
    from safetensors.numpy import save_file

    path = tmp_path / "other.safetensors"
    save_file({"w": np.zeros((2, 2), dtype=np.float32)}, str(path))
    with pytest.raises(DataError, match="not a poisonguard model file"):
        load_model(path)
