"""Deterministic workflow code only: the protocol as Temporal workflows."""
