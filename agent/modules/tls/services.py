"""Run-wide services the TLS modules share between hosts: issuers (one per distinct config,
so an ACME account or a CA key is loaded once) and the local state store.

The CLI calls :func:`configure` before a run; tests may too. Everything is lazy and
thread-safe (one worker thread per host).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent.errors import AgentError, IssuerError
from agent.pki.issuers.base import REGISTRY, Issuer
from agent.pki.trust import TrustStore, edge_trust
from agent.registry import suggestion

_lock = threading.Lock()
_issuers: dict[str, Issuer] = {}
_trust: dict[str, str] = {}
_trust_lock = threading.Lock()  # held while one thread reads a trust: the others wait for it
_store: Any = None
_state_dir: str | None = None
_base_dir: str = "."


def configure(*, state_dir: str | None = None, base_dir: str | None = None) -> None:
    """Where the local state lives, and the directory relative paths in issuer configs are
    resolved against (the inventory's). Resets cached issuers and the store."""
    global _store, _state_dir, _base_dir
    with _lock:
        if _store is not None:
            _store.close()
        _store = None
        _issuers.clear()
        _trust.clear()
        _state_dir = state_dir
        if base_dir is not None:
            _base_dir = base_dir


def store() -> Any:
    """The local state store (:class:`agent.state.store.Store`), opened on first use."""
    global _store
    with _lock:
        if _store is None:
            from agent.state.store import Store

            _store = Store(_state_dir)
        return _store


class _LazyStore:
    """The state store, opened only when a backend first uses it (``status`` and the local CA
    never do, so they work without a usable state directory)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(store(), name)


def issuer_id(config: Mapping[str, Any]) -> str:
    """A stable id of an issuer config, computed from the resolved config (relative paths made
    absolute against the inventory's directory), so ``dir: ./ca`` and ``dir: /abs/ca`` naming one
    CA give one id and two inventories' different ``./ca`` give two. Secrets are only ever named
    in a config, so none is hashed."""
    return _digest(_resolve(config))


def legacy_issuer_id(config: Mapping[str, Any]) -> str:
    """The id earlier versions recorded (hashed from the config as written): a certificate
    recorded with it is not renewed for an "issuer change" that is only a spelling."""
    return _digest(config)


def _digest(config: Mapping[str, Any]) -> str:
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _resolve(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with the backend's controller-path keys (and ``trust``) made absolute."""
    out = dict(config)
    loader = REGISTRY.get(str(config.get("backend")))
    keys = ("trust", *(loader().path_keys if loader is not None else ()))
    for key in keys:
        value = out.get(key)
        if isinstance(value, str) and any(c in value for c in "\x00\n\r"):
            # not a path; it may be a secret pasted here: never shown
            raise IssuerError(
                f"{key} is not a file name (value not shown)", backend=str(config["backend"])
            )
        if isinstance(value, str) and value and not value.startswith("/"):
            out[key] = str((Path(_base_dir) / value).resolve())
    return out


def issuer(config: Any, *, where: str) -> Issuer:
    """The issuer for an ``issuer:`` mapping, built once per distinct config.

    Raises:
        IssuerError: not a mapping, no or unknown backend, or the backend refused the config.
    """
    if not isinstance(config, Mapping) or not isinstance(config.get("backend"), str):
        raise IssuerError(
            f"{where}: 'issuer' must be a mapping with a 'backend' key",
            backend="?",
            hint=f"backends: {', '.join(sorted(REGISTRY))}",
        )
    backend = config["backend"]
    if backend not in REGISTRY:
        raise IssuerError(
            f"unknown issuer backend {backend!r}",
            backend=backend,
            hint=suggestion(backend, REGISTRY, "backend"),
        )
    resolved = _resolve(config)
    key = _digest(resolved)
    with _lock:
        found = _issuers.get(key)
    if found is not None:
        return found
    cls = REGISTRY[backend]()
    built = cls.from_config({k: v for k, v in resolved.items() if k != "trust"}, state=_LazyStore())
    with _lock:
        return _issuers.setdefault(key, built)


def trust_anchors(config: Mapping[str, Any], built: Issuer) -> str:
    """PEM of the roots an edge trusts for this issuer *besides* its own defaults (Mozilla's
    public roots and Cloudflare's Origin CA roots, which :func:`agent.pki.modes.evaluate`
    always adds): the config's ``trust:`` (a file or a list of files, relative to the
    inventory), else what the backend knows (the local CA's root), else "".

    Read, checked and parsed once per run per issuer config, not once per host.

    Raises:
        IssuerError: a ``trust:`` file cannot be read or holds no certificate.
    """
    key = issuer_id(config)
    with _lock:
        cached = _trust.get(key)
    if cached is not None:  # read once per run, not once per host
        return cached
    with _trust_lock:  # the hosts of a batch all ask at once: one of them reads
        with _lock:
            cached = _trust.get(key)
        return cached if cached is not None else _read_trust(config, built, key)


def _read_trust(config: Mapping[str, Any], built: Issuer, key: str) -> str:
    resolved = _resolve(config)
    backend = str(config.get("backend"))
    trust = resolved.get("trust")
    files = [trust] if isinstance(trust, str) else trust
    if trust in (None, "", []):
        text = built.trust_anchors_pem()
    elif not isinstance(files, list) or not all(isinstance(f, str) and f for f in files):
        raise IssuerError("'trust' must be a file or a list of files", backend=backend)
    else:
        parts = []
        for name in files:
            path = (Path(_base_dir) / name).resolve()  # an absolute name stays itself
            try:
                parts.append(path.read_text())
            except (OSError, UnicodeDecodeError) as err:
                why = getattr(err, "strerror", None) or "not PEM text"
                raise IssuerError(
                    f"cannot read trust anchors {path}: {why}", backend=backend
                ) from err
            try:
                TrustStore.from_pem(parts[-1], where=str(path))
            except AgentError as err:
                raise IssuerError(f"trust anchors {err}", backend=backend) from err
        text = "\n".join(parts)
    try:  # parse once here, where an error can still name the issuer
        edge_trust(text, where=f"{backend} trust anchors")
    except AgentError as err:
        raise IssuerError(str(err), backend=backend) from err
    with _lock:
        return _trust.setdefault(key, text)
