"""Detector: duplicate (being written)."""
