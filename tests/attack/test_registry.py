from __future__ import annotations

import pandas as pd
import pytest

import poisonguard.attack as attack
from poisonguard.attack import ATTACKS, attack_applies, run_attack
from poisonguard.data import Dataset
from poisonguard.datasets import builtin_dataset, open_dataset
from poisonguard.errors import DataError, UsageError

CLI_KINDS = ["flip", "flip-targeted", "flip-adversarial", "outliers", "mislabeled",
             "near-duplicates", "badnets", "blend", "tabular-trigger", "categorical-trigger",
             "clean-label", "feature-collision", "token-trigger", "sentence-trigger",
             "style-trigger"]


def test_every_cli_kind_is_registered() -> None:
    assert list(ATTACKS) == CLI_KINDS


def test_public_api_is_exactly_all() -> None:
    public = {n for n in dir(attack) if not n.startswith("_")}
    submodules = {"backdoor", "cleanlabel", "flip", "inject", "options", "text", "trigger",
                  "truth", "write"}
    assert public - submodules - {"annotations", "functools", "Any", "Callable", "Path",
                                  "dataclass", "Dataset", "UsageError", "load_dataset"} \
        == set(attack.__all__)


@pytest.mark.parametrize("kind", CLI_KINDS)
def test_every_applicable_kind_runs_and_records_its_kind(kind: str, digits: Dataset,
                                                         wine: Dataset) -> None:
    data = digits if attack_applies(kind, digits) else wine
    if not attack_applies(kind, data):
        data = builtin_dataset("tweets-300")
    if not attack_applies(kind, data):  # categorical-trigger: a table with categories
        data = open_dataset(pd.DataFrame({"a": ["u", "v", "w", "w"] * 30, "b": ["p", "q"] * 60,
                                          "x": range(120), "y": ["m", "n", "o", "p"] * 30}),
                            label="y")
    res = run_attack(kind, data, rate=0.03, target=0, seed=1)
    assert res.truth.kind == kind
    assert res.truth.seed == 1
    assert len(res.truth.poisoned) >= 1
    assert res.truth.n_rows == len(res.dataset)


def test_run_attack_errors(wine: Dataset) -> None:
    with pytest.raises(UsageError, match="unknown attack"):
        run_attack("sneaky", wine, rate=0.1)
    with pytest.raises(UsageError, match="needs a target"):
        run_attack("tabular-trigger", wine, rate=0.1)


def test_open_dataset_builtin_and_errors(tmp_path) -> None:
    assert open_dataset("builtin:wine").modality == "tabular"
    with pytest.raises(UsageError, match="unknown built-in"):
        open_dataset("builtin:cifar")
    with pytest.raises(DataError):
        open_dataset(str(tmp_path / "missing.csv"))


def test_cli_lists_every_attack_kind() -> None:
    from poisonguard.attack import ATTACK_INFO
    from poisonguard.cli.attack import ATTACK_KINDS

    assert ATTACK_KINDS == tuple(ATTACK_INFO)
