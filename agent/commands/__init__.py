"""One module per CLI subcommand; see :mod:`agent.cli`."""
