"""Detector: outlier (being written)."""
