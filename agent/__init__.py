"""origin-agent: move web origins behind a CDN edge up the TLS ladder and keep them there."""

__version__ = "0.1.0"
