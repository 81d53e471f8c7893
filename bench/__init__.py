"""`make bench`: the crisis benchmark of issue 5, every figure measured in one run on a fresh
Temporal dev server (`python -m bench --help`)."""
