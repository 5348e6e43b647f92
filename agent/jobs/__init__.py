"""The jobs users come for: status, pins, promote, bootstrap and rotate."""
