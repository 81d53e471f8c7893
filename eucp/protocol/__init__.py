"""The pure protocol: the phase machine, the table of actions, commands, tasks, identifiers,
incidents, decisions and state. No I/O, no clock: workflows import it, and so does every
layer above."""
