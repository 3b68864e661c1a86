"""The validation gate: profile a trusted baseline, check new batches against it.

::

    from poisonguard.validate import profile_data, check, load_config
    base = profile_data("trusted.parquet", label="y")          # mergeable sketches
    report = check(base, "new_batch.parquet", config=load_config("gate.toml"))
    report.passed, report.failures, report.blamed_rows()

See docs/validate.md for the tests, the defaults and the design.
"""

from poisonguard.validate.build import profile_data
from poisonguard.validate.check import check
from poisonguard.validate.config import CheckConfig, FeatureRule, load_config
from poisonguard.validate.profile import (
    Profile,
    Profiler,
    load_profile,
    merge_profiles,
    save_profile,
)
from poisonguard.validate.result import CheckReport, Finding, save_report
from poisonguard.validate.sources import ColumnBatch, Source, open_source

__all__ = [
    "CheckConfig",
    "CheckReport",
    "ColumnBatch",
    "FeatureRule",
    "Finding",
    "Profile",
    "Profiler",
    "Source",
    "check",
    "load_config",
    "load_profile",
    "merge_profiles",
    "open_source",
    "profile_data",
    "save_profile",
    "save_report",
]
