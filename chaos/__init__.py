"""`make chaos`: faults injected into a real eucp (Temporal dev server, worker and API processes,
SQLite and PostgreSQL ledgers, webhook and SMTP receivers on loopback) while a crisis runs.

Every scenario records the evidence that its fault struck (a killed pid gone, a new postmaster,
connections dropped) and ends with the crisis closed, every task read back in its final state,
each decision the clients were told was accepted in the ledger exactly once, the hash chain
valid and `eucp audit replay` clean. Run it with `python -m chaos`; results go to
`var/chaos/results.json`.
"""
