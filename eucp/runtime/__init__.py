"""The runtime: settings, the Temporal connection and codec, logs, the dev server, the ledger,
the registry and tokens, webhook signing and mail. Imports the protocol only."""
