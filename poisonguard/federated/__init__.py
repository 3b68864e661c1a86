"""Federated learning under poisoned clients: robust aggregation, reputation, simulator.

Aggregators take client updates (lists of numpy arrays), return the aggregate and a
per-client anomaly score; :class:`Reputation` turns scores across rounds into flags;
:func:`simulate` measures a defence against an attack; :mod:`poisonguard.federated.flower`
wraps every aggregator as a Flower strategy (extra ``fl``).
"""

from poisonguard.federated.attacks import FL_ATTACKS
from poisonguard.federated.base import AggregationResult, Aggregator
from poisonguard.federated.coordinate import CoordinateMedian, TrimmedMean
from poisonguard.federated.fltrust import FLTrust
from poisonguard.federated.geomed import GeometricMedian
from poisonguard.federated.krum import Bulyan, Krum, MultiKrum
from poisonguard.federated.mean import FedAvg, NormClipping
from poisonguard.federated.model import NumpyClassifier
from poisonguard.federated.partition import FederatedData, make_federated_data
from poisonguard.federated.registry import aggregator_for, available_aggregators, get_aggregator
from poisonguard.federated.reputation import ClientRecord, Reputation
from poisonguard.federated.simulator import (
    RoundRecord,
    SimulationConfig,
    SimulationResult,
    simulate,
)

__all__ = [
    "FL_ATTACKS",
    "AggregationResult",
    "Aggregator",
    "Bulyan",
    "ClientRecord",
    "CoordinateMedian",
    "FLTrust",
    "FedAvg",
    "FederatedData",
    "GeometricMedian",
    "Krum",
    "MultiKrum",
    "NormClipping",
    "NumpyClassifier",
    "Reputation",
    "RoundRecord",
    "SimulationConfig",
    "SimulationResult",
    "TrimmedMean",
    "aggregator_for",
    "available_aggregators",
    "get_aggregator",
    "make_federated_data",
    "simulate",
]
