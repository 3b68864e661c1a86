"""Detector: activation (being written)."""
