"""Helpers for the tests (and benchmarks): loopback servers."""
