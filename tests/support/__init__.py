"""Test support shared by the tests (never imported by production code, benchmarks or scripts)."""
