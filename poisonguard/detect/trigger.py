"""Detector: trigger (being written)."""
