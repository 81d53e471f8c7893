"""`python -m eucp.cli`: the `eucp` command without its installed script."""

from eucp.cli import main

main()
