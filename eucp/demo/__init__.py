"""The demo: a Christchurch-like crisis over HTTP (`make demo`), its scenarios, and the
reference platform simulator."""
