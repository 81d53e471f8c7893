"""Temporal activities: the side effects the eucp workflows ask for."""
