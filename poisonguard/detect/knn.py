"""Detector: knn (being written)."""
