"""Audit tools: replay an incident's histories, rebuild its timeline against the ledger, verify
the hash chain, and export an offline bundle. The `eucp audit` commands are in `cli.py`."""
