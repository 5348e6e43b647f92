"""Issuer backends, chosen by name from :data:`agent.pki.issuers.base.REGISTRY`."""
