"""PKI: keys, CSRs, certificate inspection, pins, and issuers. No SSH, no web servers."""
