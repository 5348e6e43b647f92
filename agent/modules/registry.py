"""Module name (the key used in plans) -> a loader of its class (:mod:`agent.registry`'s
pattern, shared with issuers and server adapters): a module's imports (cryptography, an issuer
backend...) cost nothing when a plan does not use it. To add a module, add one line here.
"""

from __future__ import annotations

from agent.modules.base import Module
from agent.registry import Loader, lazy

_TARGETS: dict[str, str] = {
    "command": "agent.modules.command:CommandModule",
    "shell": "agent.modules.command:ShellModule",
    "copy": "agent.modules.copy:CopyModule",
    "template": "agent.modules.copy:TemplateModule",
    "file": "agent.modules.file:FileModule",
    "package": "agent.modules.package:PackageModule",
    "service": "agent.modules.service:ServiceModule",
    "meta": "agent.modules.meta:MetaModule",
    "tls_origin": "agent.modules.tls.origin:TlsOriginModule",
    "certificate": "agent.modules.tls.parts:CertificateModule",
    "tls_site": "agent.modules.tls.parts:TlsSiteModule",
    "reload": "agent.modules.tls.parts:ReloadModule",
    "verify": "agent.modules.tls.parts:VerifyModule",
}
REGISTRY: dict[str, Loader] = {name: lazy(target) for name, target in _TARGETS.items()}


def names() -> list[str]:
    """Every module name a plan may use."""
    return sorted(REGISTRY)


def get(name: str) -> type[Module]:
    """The module class registered as ``name``.

    Raises:
        KeyError: no module has that name.
    """
    cls: type[Module] = REGISTRY[name]()
    return cls
