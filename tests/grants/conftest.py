"""The grants tests use the root conftest's fixtures (redis, clock) and tests/support/brokers.py."""
