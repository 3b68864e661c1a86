"""Detector: label (being written)."""
