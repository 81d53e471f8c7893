"""The HTTP API: a thin layer over eucp.service, one process (`eucp api`)."""
