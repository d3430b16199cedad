"""Test-only helpers: a connector and an authorization source that no config can name."""
