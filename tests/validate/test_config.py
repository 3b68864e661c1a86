"""Gate configuration: TOML/YAML, strict keys, per-feature choices."""

from __future__ import annotations

from pathlib import Path

import pytest

from poisonguard.errors import UsageError
from poisonguard.validate import CheckConfig, Profile, check, load_config


def test_defaults_without_a_file() -> None:
    cfg = load_config(None)
    assert cfg.alpha == 0.01 and cfg.correction == "holm"
    assert cfg.threshold("psi") == 0.1 and cfg.threshold("ks") == 0.0


def test_toml_config(tmp_path: Path) -> None:
    p = tmp_path / "gate.toml"
    p.write_text("""
alpha = 0.05
correction = "bh"
[thresholds]
psi = 0.25
[features."mean radius"]
test = "wasserstein"
threshold = 0.3
[features."mean texture"]
ignore = true
[checks]
multivariate = false
""")
    cfg = load_config(p)
    assert cfg.alpha == 0.05 and cfg.correction == "bh"
    assert cfg.threshold("psi") == 0.25 and cfg.threshold("jensen_shannon") == 0.1
    assert cfg.threshold("wasserstein", "mean radius") == 0.3
    assert cfg.features["mean texture"].ignore and not cfg.checks.multivariate


@pytest.mark.parametrize("text, message", [
    ("alpha = 0.05\nalpah = 0.1\n", "unknown key 'alpah'"),
    ("[features.x]\ntset = \"ks\"\n", "unknown key 'features.x.tset'"),
    ("[checks]\nmultivarite = false\n", "unknown key 'checks.multivarite'"),
    ("alpha = 2\n", "bad value for 'alpha'"),
    ("[features.x]\ntest = \"t-test\"\n", "bad value for 'features.x.test'"),
    ("alpha = \n", "invalid TOML"),
])
def test_bad_configs_are_one_line_errors_naming_key_and_file(tmp_path: Path, text: str,
                                                             message: str) -> None:
    p = tmp_path / "gate.toml"
    p.write_text(text)
    with pytest.raises(UsageError) as err:
        load_config(p)
    assert message in str(err.value) and str(p) in str(err.value)
    assert "\n" not in str(err.value)


def test_yaml_config_or_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "gate.yaml"
    p.write_text("alpha: 0.02\nfeatures:\n  x:\n    test: psi\n")
    try:
        import yaml  # noqa: F401
    except ImportError:
        with pytest.raises(UsageError, match="PyYAML"):
            load_config(p)
        return
    cfg = load_config(p)
    assert cfg.alpha == 0.02 and cfg.features["x"].test == "psi"
    p.write_text("alpha: 0.02\nbogus: 1\n")
    with pytest.raises(UsageError, match="unknown key 'bogus'"):
        load_config(p)


def test_other_suffix_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such config file"):
        load_config(tmp_path / "nope.toml")
    (tmp_path / "x.ini").write_text("")
    with pytest.raises(UsageError, match=".toml, .yaml or .yml"):
        load_config(tmp_path / "x.ini")


def test_per_feature_tests_are_used(cancer_split: tuple[Profile, object]) -> None:
    base, new = cancer_split
    cfg = CheckConfig.model_validate({"features": {
        "mean radius": {"test": "psi"}, "mean texture": {"test": "wasserstein"},
        "mean area": {"test": "jensen_shannon"}, "mean smoothness": {"test": "chi2"},
        "mean perimeter": {"ignore": True}}})
    report = check(base, new, config=cfg)  # type: ignore[arg-type]
    tests = {f.feature: f.test for f in report.findings if f.check == "drift"}
    assert tests["mean radius"] == "psi" and tests["mean texture"] == "wasserstein"
    assert tests["mean area"] == "jensen_shannon" and tests["mean smoothness"] == "chi2"
    assert tests["worst area"] == "ks" and "mean perimeter" not in tests
    assert report.passed


def test_large_batches_default_to_effect_size_tests(cancer_split: tuple[Profile, object]) -> None:
    base, new = cancer_split
    report = check(base, new, config=CheckConfig(large_batch=100))  # type: ignore[arg-type]
    assert {f.test for f in report.findings if f.check == "drift"} == {"psi"}
    assert {f.test for f in report.findings if f.check == "label_shift"} == {"jensen_shannon"}


def test_config_naming_unknown_feature_is_rejected(cancer_split: tuple[Profile, object]) -> None:
    base, new = cancer_split
    cfg = CheckConfig.model_validate({"features": {"mean radius ": {"ignore": True}}})
    with pytest.raises(UsageError, match="'mean radius '"):
        check(base, new, config=cfg)  # type: ignore[arg-type]


def test_categorical_feature_rejects_sample_tests(tmp_path: Path) -> None:
    import pandas as pd

    from poisonguard.validate import profile_data

    t = pd.DataFrame({"c": ["a", "b"] * 20, "label": [0, 1] * 20})
    t.to_csv(tmp_path / "t.csv", index=False)
    base = profile_data(tmp_path / "t.csv")
    cfg = CheckConfig.model_validate({"features": {"c": {"test": "ks"}}})
    with pytest.raises(UsageError, match="categorical"):
        check(base, tmp_path / "t.csv", config=cfg)
