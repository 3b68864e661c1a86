"""Robust training: partition ensembles with certificates, trimmed loss, anti-backdoor
learning and DP-SGD, as scikit-learn estimators; model folders in safe formats.

See docs/train.md. The torch estimators need the ``torch`` extra; DP-SGD needs
``opacus`` and model folders need ``skops`` / ``safetensors`` (the ``train`` extra).
"""

from poisonguard.train.abl import ABLClassifier
from poisonguard.train.certify import (
    RADII,
    certified_accuracy,
    dpa_radius,
    fa_radius,
    plurality,
    vote_counts,
)
from poisonguard.train.dp import DPSGDClassifier
from poisonguard.train.ensemble import DPAClassifier, FAClassifier, default_estimator
from poisonguard.train.hashing import content_hashes, members_of_buckets
from poisonguard.train.itlm import TrimmedLossClassifier
from poisonguard.train.pipeline import (
    BASES,
    METHODS,
    Certificates,
    TrainResult,
    certify_dataset,
    train_dataset,
    write_model,
)
from poisonguard.train.storage import load_model, save_model
from poisonguard.train.torch_estimator import TorchClassifier

__all__ = [
    "ABLClassifier",
    "BASES",
    "Certificates",
    "DPAClassifier",
    "DPSGDClassifier",
    "FAClassifier",
    "METHODS",
    "RADII",
    "TorchClassifier",
    "TrainResult",
    "TrimmedLossClassifier",
    "certified_accuracy",
    "certify_dataset",
    "content_hashes",
    "default_estimator",
    "dpa_radius",
    "fa_radius",
    "load_model",
    "members_of_buckets",
    "plurality",
    "save_model",
    "train_dataset",
    "vote_counts",
    "write_model",
]
