"""Detector backends."""
