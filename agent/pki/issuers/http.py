"""Plumbing shared by the remote CA backends (acme, cfssl, cloudflare).

- :func:`check_keys` / :func:`load_secret`: config checks at the edge; secrets come only from an
  environment variable or a file named in the config, never inline.
- :class:`RetryPolicy` and :func:`request_json`: bounded retries with exponential backoff for
  connection failures and transient HTTP answers, then one clear :class:`IssuerError`.
- :func:`check_certificate`: what a CA returned must be certificates, the leaf must carry the
  CSR's key and every requested name.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from cryptography import x509

from agent.errors import IssuerError, ValidationError
from agent.pki.inspect import inspect_certificate, matches
from agent.pki.issuers.keys import RETRY_KEYS, default
from agent.pki.issuers.secretsource import load_secret as load_secret
from agent.validate import check_secret_url

log = logging.getLogger(__name__)
T = TypeVar("T")

_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.S)
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")
_TLS_VERIFY = re.compile(r"certificate verify failed:? ?[^'\"(]*")
INLINE_SECRET_KEYS = frozenset(
    {
        "token",
        "api_token",
        "key",
        "auth_key",
        "hmac_key",
        "eab_hmac_key",
        "origin_ca_key",
        "password",
        "secret",
        "api_key",
    }
)


def check_keys(
    config: Mapping[str, Any],
    *,
    backend: str,
    accepted: Collection[str],
    required: Collection[str] = (),
) -> None:
    """Reject inline secrets, unknown keys and missing required keys, all in one message.

    Raises:
        IssuerError: naming every offending key and listing the accepted ones.
    """
    if not isinstance(config, Mapping):
        raise IssuerError(
            f"issuer config must be a mapping, not {type(config).__name__}", backend=backend
        )
    for key in sorted(config):
        if key in INLINE_SECRET_KEYS:
            if f"{key}_env" in accepted:
                where = f"{key}_env or {key}_file"
            else:
                where = "one of " + ", ".join(
                    sorted(k for k in accepted if k.endswith(("_env", "_file")))
                )
            raise IssuerError(
                f"inline secret {key!r} refused",
                backend=backend,
                hint=f"put it in an environment variable or a file and name it with {where}",
            )
    problems = [f"unknown key {k!r}" for k in sorted(set(config) - set(accepted) - {"backend"})]
    problems += [f"missing key {k!r}" for k in required if config.get(k) in (None, "")]
    if problems:
        raise IssuerError(
            ", ".join(problems),
            backend=backend,
            hint="accepted keys: " + ", ".join(sorted(accepted)),
        )


def opt_str(config: Mapping[str, Any], key: str, *, backend: str, default: str = "") -> str:
    """A one-line string setting (no control characters).

    Raises:
        IssuerError: the value is not a plain one-line string.
    """
    value = config.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str) or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise IssuerError(f"{key} must be a one-line string", backend=backend)
    return value


def check_url(value: str, *, key: str, backend: str) -> str:
    """Return ``value`` (without a trailing slash) if a secret may be sent to it: ``https://``
    with a host, or ``http://`` to a loopback address (tests and labs).

    Raises:
        IssuerError: anything else, e.g. ``http://`` to another host (the token would travel
            in clear text), credentials, a query string or a fragment in the URL.
    """
    try:
        parts = urlsplit(value)
        has_credentials = parts.username is not None or parts.password is not None
    except ValueError:
        has_credentials = False
    if has_credentials:
        raise IssuerError(
            f"{key} must not carry credentials",
            backend=backend,
            hint="name them with the *_env or *_file keys",
        )
    try:
        return check_secret_url(value, where=None, what=key).rstrip("/")
    except ValidationError as err:
        raise IssuerError(err.message, backend=backend, hint=err.hint) from None


def check_file(value: str, *, key: str, backend: str) -> str:
    """Return ``value`` if it names a readable file.

    Raises:
        IssuerError: the file is missing or unreadable.
    """
    if not os.path.isfile(value) or not os.access(value, os.R_OK):
        raise IssuerError(f"{key} {value!r} is not a readable file", backend=backend)
    return value


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; the waits between them grow from ``backoff`` seconds by
    ``factor`` up to ``max_delay``."""

    attempts: int = 4
    backoff: float = 1.0
    factor: float = 2.0
    max_delay: float = 20.0

    def delays(self) -> list[float]:
        """The waits between attempts (``attempts - 1`` of them)."""
        return [
            min(self.max_delay, self.backoff * self.factor**i) for i in range(self.attempts - 1)
        ]

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, backend: str) -> RetryPolicy:
        """Read ``retries`` (extra attempts, 0-10, default 3) and ``backoff`` (first wait in
        seconds, 0-60, default 1).

        Raises:
            IssuerError: out-of-range or non-numeric values.
        """
        retries = config.get("retries", default(RETRY_KEYS, "retries"))
        backoff = config.get("backoff", default(RETRY_KEYS, "backoff"))
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
            raise IssuerError("retries must be an integer from 0 to 10", backend=backend)
        if (
            isinstance(backoff, bool)
            or not isinstance(backoff, int | float)
            or not 0 <= backoff <= 60
        ):
            raise IssuerError("backoff must be a number of seconds from 0 to 60", backend=backend)
        return cls(attempts=retries + 1, backoff=float(backoff))


def describe_network_error(err: BaseException) -> str:
    """A short reason for a connection failure (``Connection refused``, ``timed out``...)."""
    text = str(err)
    match = _TLS_VERIFY.search(text)
    if match:
        return match.group(0).strip()
    match = _ERRNO.search(text)
    if match:
        return match.group(1).strip()
    if isinstance(err, requests.Timeout):
        return "timed out"
    return " ".join(text.split())[:160] or type(err).__name__


def snippet(data: bytes | str, limit: int = 60) -> str:
    """The start of an answer, printable and on one line, for error messages."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = "".join(c if c.isprintable() else " " for c in text)
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "")


def with_retries(
    call: Callable[[], T],
    *,
    policy: RetryPolicy,
    backend: str,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``call``, retrying connection failures per ``policy``.

    TLS verification failures are not retried (they are configuration errors).

    Raises:
        IssuerError: still unreachable after the last attempt, or TLS verification failed.
    """
    delays = policy.delays()
    for attempt in range(policy.attempts):
        try:
            return call()
        except (requests.ConnectionError, requests.Timeout) as err:
            _raise_unless_retryable(err, attempt, policy, backend=backend, what=what)
            sleep(delays[attempt])
    raise AssertionError("unreachable")  # pragma: no cover


def _raise_unless_retryable(
    err: requests.RequestException,
    attempt: int,
    policy: RetryPolicy,
    *,
    backend: str,
    what: str,
) -> None:
    """Turn a network failure into the one-line IssuerError, unless another attempt is due.

    A TLS verification failure is configuration, never retried. Raises:
        IssuerError: TLS failure, or unreachable after the last attempt.
    """
    if isinstance(err, requests.exceptions.SSLError):
        raise IssuerError(
            f"{what}: TLS failure: {describe_network_error(err)}",
            backend=backend,
            hint="check ca_bundle",
        ) from err
    if attempt == policy.attempts - 1:
        raise IssuerError(
            f"{what}: unreachable after {policy.attempts} attempts ({describe_network_error(err)})",
            backend=backend,
            hint="check that the CA is up and the URL is right",
        ) from err
    log.info("%s: %s; retrying", what, describe_network_error(err))


TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def request_json(
    session: requests.Session,
    method: str,
    url: str,
    *,
    backend: str,
    what: str,
    policy: RetryPolicy,
    timeout: float,
    verify: bool | str = True,
    headers: Mapping[str, str] | None = None,
    json_body: Any = None,
    is_transient: Callable[[int, Any], bool] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[int, Any]:
    """Send one JSON request with bounded retries; return ``(status, parsed body)``.

    Connection failures, HTTP 408/429/5xx and answers ``is_transient`` flags are retried; after
    the last attempt a transient JSON answer is returned to the caller (so it can show the CA's
    own error), a connection failure raises.

    Raises:
        IssuerError: unreachable after retries, TLS failure, or an answer that is not JSON.
    """
    delays = policy.delays() + [0.0]
    for attempt in range(policy.attempts):
        last = attempt == policy.attempts - 1
        try:
            resp = session.request(
                method,
                url,
                headers=dict(headers or {}),
                json=json_body,
                timeout=timeout,
                verify=verify,
            )
        except (requests.ConnectionError, requests.Timeout) as err:
            _raise_unless_retryable(err, attempt, policy, backend=backend, what=what)
            sleep(delays[attempt])
            continue
        try:
            body: Any = resp.json()
        except ValueError:
            if resp.status_code in TRANSIENT_STATUSES and not last:
                sleep(delays[attempt])
                continue
            raise IssuerError(
                f"{what}: HTTP {resp.status_code} answer is not JSON: {snippet(resp.content)!r}",
                backend=backend,
            ) from None
        if _transient(resp.status_code, body, is_transient) and not last:
            log.info(
                "%s: transient HTTP %d; retrying in %.1fs", what, resp.status_code, delays[attempt]
            )
            sleep(delays[attempt])
            continue
        return resp.status_code, body
    raise AssertionError("unreachable")  # pragma: no cover


def _transient(status: int, body: Any, is_transient: Callable[[int, Any], bool] | None) -> bool:
    """An answer worth asking again: 408/429/5xx, or what the backend says is transient."""
    return status in TRANSIENT_STATUSES or (is_transient is not None and is_transient(status, body))


def split_pem_certs(text: str) -> list[str]:
    """Every PEM certificate block in ``text``, in order, each ending with a newline."""
    return [m.group(0).replace("\r\n", "\n") + "\n" for m in _PEM_CERT.finditer(text)]


def check_certificate(
    pem: str,
    *,
    csr_pem: str,
    names: Collection[str],
    backend: str,
) -> tuple[str, str]:
    """Check a CA's answer and split it into ``(leaf PEM, chain PEM)``; a self-signed root
    in the answer is left out of the chain (the verifier holds it already).

    Raises:
        IssuerError: no certificate, unparsable, not for the CSR's key, or missing names.
    """
    blocks = split_pem_certs(pem if isinstance(pem, str) else "")
    if not blocks:
        raise IssuerError(f"the CA answered no certificate: {snippet(str(pem))!r}", backend=backend)
    try:
        certs = [x509.load_pem_x509_certificate(b.encode()) for b in blocks]
    except ValueError as err:
        raise IssuerError(
            f"the CA answered an unparsable certificate ({err})", backend=backend
        ) from None
    if not matches(certs[0], csr_pem):
        raise IssuerError("the certificate returned is not for the CSR's key", backend=backend)
    have = {n.lower().rstrip(".") for n in inspect_certificate(certs[0]).dns_names}
    missing = sorted(n for n in names if n.lower().rstrip(".") not in have)
    if missing:
        raise IssuerError(
            "the certificate returned lacks the names " + ", ".join(missing), backend=backend
        )
    chain = [b for b, c in zip(blocks[1:], certs[1:], strict=True) if c.issuer != c.subject]
    return blocks[0], "".join(chain)


def csr_names(csr_pem: str, *, backend: str) -> list[str]:
    """The DNS names in a CSR's subjectAltName extension.

    Raises:
        IssuerError: the CSR is not a PEM CSR.
    """
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
    except ValueError:
        raise IssuerError("the CSR is not a PEM certificate request", backend=backend) from None
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(san.get_values_for_type(x509.DNSName))
