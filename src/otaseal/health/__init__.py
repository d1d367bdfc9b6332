"""Rollout health: pure numbers and decisions from device stats (no I/O in this package's cores)."""
