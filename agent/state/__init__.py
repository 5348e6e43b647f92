"""state layer: the local SQLite store of issued certificates, ACME accounts and runs."""

from agent.state.paths import default_state_dir
from agent.state.records import AcmeAccount, IssuedCertificate, RunRecord
from agent.state.store import Store

__all__ = ["AcmeAccount", "IssuedCertificate", "RunRecord", "Store", "default_state_dir"]
