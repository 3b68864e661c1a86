"""Detector: spectral (being written)."""
