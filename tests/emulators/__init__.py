"""Faithful emulators of remote services the tests cannot reach (Cloudflare)."""
