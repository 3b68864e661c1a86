"""After training: a model registry with promotion gates, golden sets, trigger canaries,
a model-level backdoor scan, runtime screening, prediction drift, alerts and rollback.

Everything is recorded in the provenance ledger (SQLite by default, PostgreSQL by
URL); see docs/monitor.md. The registry, alias history and alerts are plain
functions (``list_versions``, ``alias_history``, ``aliases``, ``list_alerts``) for
scripts and the service's dashboard. Running models needs the ``torch`` extra.
"""

from poisonguard.monitor.alerts import WEBHOOK_ENV, Alert, list_alerts, raise_alert
from poisonguard.monitor.canary import (
    CanaryResult,
    Trigger,
    findings_triggers,
    library_triggers,
    run_canaries,
    truth_triggers,
)
from poisonguard.monitor.checks import CheckReport, canary_check, scan_model_check, screen_check
from poisonguard.monitor.drift import DriftResult, prediction_drift
from poisonguard.monitor.gate import GateConfig, GateVerdict, check_gate, promote
from poisonguard.monitor.golden import (
    Evaluation,
    GoldenSet,
    evaluate,
    expected_calibration_error,
    get_golden,
    list_golden,
    load_golden,
    register_golden,
)
from poisonguard.monitor.model import (
    ImageClassifier,
    NetConfig,
    load_model,
    save_model,
    train_classifier,
)
from poisonguard.monitor.neural_cleanse import (
    ClassTrigger,
    ModelScanResult,
    anomaly_index,
    neural_cleanse,
)
from poisonguard.monitor.registry import (
    CHAMPION,
    SAFE_FORMATS,
    AliasMove,
    ModelVersion,
    alias_history,
    aliases,
    get_version,
    list_versions,
    load_version,
    move_alias,
    register_model,
    rollback,
)
from poisonguard.monitor.strip import ScreenResult, StripScreener, strip_dependency

__all__ = [
    "CHAMPION",
    "SAFE_FORMATS",
    "WEBHOOK_ENV",
    "Alert",
    "AliasMove",
    "CanaryResult",
    "CheckReport",
    "ClassTrigger",
    "DriftResult",
    "Evaluation",
    "GateConfig",
    "GateVerdict",
    "GoldenSet",
    "ImageClassifier",
    "ModelScanResult",
    "ModelVersion",
    "NetConfig",
    "ScreenResult",
    "StripScreener",
    "Trigger",
    "alias_history",
    "aliases",
    "anomaly_index",
    "canary_check",
    "check_gate",
    "evaluate",
    "expected_calibration_error",
    "findings_triggers",
    "get_golden",
    "get_version",
    "library_triggers",
    "list_alerts",
    "list_golden",
    "list_versions",
    "load_golden",
    "load_model",
    "load_version",
    "move_alias",
    "neural_cleanse",
    "prediction_drift",
    "promote",
    "raise_alert",
    "register_golden",
    "register_model",
    "rollback",
    "run_canaries",
    "save_model",
    "scan_model_check",
    "screen_check",
    "strip_dependency",
    "train_classifier",
    "truth_triggers",
]
