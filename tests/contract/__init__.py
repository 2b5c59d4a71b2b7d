"""Backend-independent contract suites (imported by the backend test modules)."""
