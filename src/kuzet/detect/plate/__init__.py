"""Licence-plate and text-region detectors."""
