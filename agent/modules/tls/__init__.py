"""TLS modules: certificate, tls_site, reload, verify, and tls_origin (all of them as one step)."""
