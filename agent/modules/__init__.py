"""modules layer."""
