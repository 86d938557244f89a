"""Integration tests use the session engines of tests/engines.py."""
