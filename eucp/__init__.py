"""eucp: the EU Crisis Protocol as durable Temporal workflows."""
