"""`python -m agent` is the same as the `origin-agent` command."""

from agent.cli import main

raise SystemExit(main())
