"""Gate configuration: thresholds and per-feature test choices, from TOML or YAML.

Validated by pydantic with unknown keys rejected, so a typo is a one-line error
naming the key and the file. See docs/validate.md for every key.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from poisonguard.errors import UsageError

__all__ = ["DEFAULT_THRESHOLDS", "CheckConfig", "FeatureRule", "load_config"]

TestName = Literal["ks", "chi2", "psi", "jensen_shannon", "wasserstein"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureRule(_Strict):
    """Per-feature choices: the test, its threshold, or skip the feature.

    Examples
    --------
    >>> FeatureRule(test="psi", threshold=0.25).test
    'psi'
    """

    test: TestName | None = None
    threshold: float | None = Field(default=None, ge=0)
    ignore: bool = False


class Checks(_Strict):
    """Which checks run (all by default)."""

    schema_: bool = Field(default=True, alias="schema")
    missing: bool = True
    range: bool = True
    drift: bool = True
    class_shift: bool = True
    label_shift: bool = True
    multivariate: bool = True
    label_consistency: bool = True
    outliers: bool = True
    duplicates: bool = True
    triggers: bool = True


class CheckConfig(_Strict):
    """Everything ``check`` can be told; the defaults are documented in docs/validate.md.

    Examples
    --------
    >>> config = CheckConfig(alpha=0.05, features={"proline": FeatureRule(ignore=True)})
    >>> config.alpha, config.features["proline"].ignore
    (0.05, True)
    """

    alpha: float = Field(default=0.01, gt=0, lt=1)
    correction: Literal["holm", "bh"] = "holm"
    large_batch: int = Field(default=50_000, ge=1)
    bins: int = Field(default=10, ge=2, le=1000)
    thresholds: dict[TestName, float] = Field(default_factory=dict)
    features: dict[str, FeatureRule] = Field(default_factory=dict)
    checks: Checks = Field(default_factory=Checks)
    sample_per_class: int = Field(default=2000, ge=10)
    permutations: int = Field(default=200, ge=20, le=10_000)
    mmd_rows: int = Field(default=500, ge=20)
    knn: int = Field(default=10, ge=1, le=100)
    knn_rows: int = Field(default=10_000, ge=100)
    knn_max_agreement: float = Field(default=0.1, ge=0, lt=1)
    trigger_min_rows: int = Field(default=3, ge=2)
    max_label_conflicts: int = Field(default=0, ge=0)
    allow_extra_columns: bool = False
    allow_new_categories: bool = False
    max_rows: int = Field(default=10_000, ge=0)
    seed: int = 0

    def threshold(self, test: str, feature: str | None = None) -> float:
        rule = self.features.get(feature) if feature else None
        if rule is not None and rule.threshold is not None:
            return rule.threshold
        given: dict[str, float] = {str(k): v for k, v in self.thresholds.items()}
        return float(given.get(test, DEFAULT_THRESHOLDS.get(test, 0.0)))


# The minimum effect for a drift finding to fail the gate (p-values alone decide
# for ks and chi2; psi, Jensen-Shannon distance and normalised Wasserstein need an
# effect this large too, the thresholds in common use by Evidently and others).
DEFAULT_THRESHOLDS = {"ks": 0.0, "chi2": 0.0, "psi": 0.1, "jensen_shannon": 0.1,
                      "wasserstein": 0.1}


def _read(path: Path) -> dict[str, Any]:
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such config file") from None
    if suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{path}: invalid TOML: {exc}") from None
    if suffix in {".yaml", ".yml"}:
        try:
            import yaml
        except ImportError:
            raise UsageError(f"{path}: YAML configs need PyYAML (pip install pyyaml), "
                             "or write the config as TOML") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise UsageError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise UsageError(f"{path}: the config must be a mapping of keys to values")
        return data
    raise UsageError(f"{path}: config files are .toml, .yaml or .yml")


def load_config(path: str | Path | None) -> CheckConfig:
    """The config in ``path`` (defaults when None); bad keys are a one-line UsageError.

    Examples
    --------
    >>> load_config(None).alpha  # no file: the defaults
    0.01
    """
    if path is None:
        return CheckConfig()
    p = Path(path)
    try:
        return CheckConfig.model_validate(_read(p))
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(part) for part in err["loc"])
        if err["type"] == "extra_forbidden":
            raise UsageError(f"{p}: unknown key '{key}'") from None
        raise UsageError(f"{p}: bad value for '{key}': {err['msg']}") from None
