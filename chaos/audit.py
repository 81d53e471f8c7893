"""`python -m chaos.audit INCIDENT_ID`: the auditor's `eucp audit verify`, `replay` and `timeline`
on one incident, the same click commands in one process (one interpreter start, not three),
with the settings from the environment. Prints each command's output; exits 1 if any of them
found something or failed."""

from __future__ import annotations

import sys

import click

from eucp.audit.cli import audit

COMMANDS = ("verify", "replay", "timeline")


def main(argv: list[str]) -> int:
    [incident_id] = argv
    failed = 0
    for command in COMMANDS:
        print(f"== eucp audit {command} {incident_id}", flush=True)
        try:
            code = audit.main([command, incident_id], "eucp audit", standalone_mode=False)
        except click.ClickException as err:
            print(f"FINDING {err.format_message()}")
            code = err.exit_code
        if code:
            print(f"FAILED eucp audit {command} {incident_id}: exit {code}", flush=True)
            failed = 1
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
