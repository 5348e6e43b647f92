"""The few Cloudflare v4 API calls the agent needs: Origin CA certificates and the zone's SSL
mode (here), DNS records (:mod:`agent.pki.issuers.cloudflare_dns`); envelope parsing, auth
headers and bounded retries in one client."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

import requests

from agent.errors import IssuerError
from agent.pki.issuers.http import RetryPolicy, request_json
from agent.secret import Secret

BACKEND = "cloudflare"
DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"
SSL_MODES = ("off", "flexible", "full", "strict", "origin_pull")
TRANSIENT_CODES = frozenset({1100})
MAX_PAGES = 200
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def _error_codes(body: Any) -> set[int]:
    errors = body.get("errors") if isinstance(body, dict) else None
    return {
        e["code"] for e in errors or [] if isinstance(e, dict) and isinstance(e.get("code"), int)
    }


class CloudflareClient:
    """Minimal Cloudflare v4 API client: envelope parsing, auth headers, bounded retries."""

    def __init__(
        self,
        base_url: str,
        *,
        credential: Secret,
        service_key: bool = False,
        ca_bundle: str | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        backend: str = BACKEND,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.backend = backend  # the issuer its errors name (acme, for dns-01 records)
        self._credential = credential
        self._service_key = service_key
        self.ca_bundle = ca_bundle
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._session = session or requests.Session()

    def __repr__(self) -> str:
        return f"CloudflareClient(base_url={self.base_url!r}, credential=****)"

    def _headers(self) -> dict[str, str]:
        if self._service_key:
            auth = {"X-Auth-User-Service-Key": self._credential.reveal()}
        else:
            auth = {"Authorization": "Bearer " + self._credential.reveal()}
        return {**auth, "Accept": "application/json", "User-Agent": "origin-agent"}

    def call(
        self,
        method: str,
        path: str,
        what: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        """Send one request; return ``(result, result_info)`` of a successful envelope.

        Raises:
            IssuerError: Cloudflare refused (its codes and messages), unreachable, or the
                answer is not a v4 envelope.
        """
        url = self.base_url + path + (("?" + urlencode(params)) if params else "")
        status, answer = request_json(
            self._session,
            method,
            url,
            backend=self.backend,
            what=what,
            policy=self.retry,
            timeout=self.timeout,
            verify=self.ca_bundle or True,
            headers=self._headers(),
            json_body=body,
            is_transient=lambda _status, got: bool(_error_codes(got) & TRANSIENT_CODES),
        )
        if not isinstance(answer, dict) or not isinstance(answer.get("success"), bool):
            raise IssuerError(
                f"{what}: HTTP {status} answer is not a Cloudflare API envelope",
                backend=self.backend,
            )
        if not answer["success"] or not 200 <= status < 300:
            errors = [e for e in answer.get("errors") or [] if isinstance(e, dict)]
            text = (
                "; ".join(f"{e.get('message', '?')} (code {e.get('code', '?')})" for e in errors)
                or "no error message"
            )
            raise IssuerError(
                f"{what}: Cloudflare refused (HTTP {status}): {text}", backend=self.backend
            )
        info = answer.get("result_info")
        return answer.get("result"), info if isinstance(info, dict) else {}

    def segment(self, value: str, what: str) -> str:
        """``value`` checked as an id and quoted for a URL path.

        Raises:
            IssuerError: not an id.
        """
        if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
            raise IssuerError(f"invalid {what} {value!r}", backend=self.backend)
        return quote(value, safe="")

    def create_certificate(
        self, csr_pem: str, hostnames: list[str], request_type: str, requested_validity: int
    ) -> dict[str, Any]:
        """``POST /certificates``; the result object (``id``, ``certificate``, ...)."""
        result, _ = self.call(
            "POST",
            "/certificates",
            "create certificate",
            body={
                "csr": csr_pem,
                "hostnames": hostnames,
                "request_type": request_type,
                "requested_validity": requested_validity,
            },
        )
        if not isinstance(result, dict):
            raise IssuerError("create certificate: answer has no result object", backend=BACKEND)
        return result

    def list_certificates(self, zone_id: str) -> list[dict[str, Any]]:
        """``GET /certificates?zone_id=``, every page (bounded)."""
        zone = self.segment(zone_id, "zone_id")
        rows: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            result, info = self.call(
                "GET",
                "/certificates",
                "list certificates",
                params={"zone_id": zone, "page": page, "per_page": 50},
            )
            rows += [r for r in result or [] if isinstance(r, dict)]
            if page >= int(info.get("total_pages") or 1):
                break
        return rows

    def get_certificate(self, certificate_id: str) -> dict[str, Any]:
        """``GET /certificates/{id}``."""
        cid = self.segment(certificate_id, "certificate id")
        result, _ = self.call("GET", f"/certificates/{cid}", "get certificate")
        return result if isinstance(result, dict) else {}

    def revoke_certificate(self, certificate_id: str) -> dict[str, Any]:
        """``DELETE /certificates/{id}``; ``{id, revoked_at}``."""
        cid = self.segment(certificate_id, "certificate id")
        result, _ = self.call("DELETE", f"/certificates/{cid}", "revoke certificate")
        return result if isinstance(result, dict) else {}

    def get_ssl_mode(self, zone_id: str) -> str:
        """The zone's SSL/TLS encryption mode (``off``, ``flexible``, ``full``, ``strict``...)."""
        zone = self.segment(zone_id, "zone_id")
        result, _ = self.call("GET", f"/zones/{zone}/settings/ssl", "get SSL mode")
        return str(result.get("value")) if isinstance(result, dict) else ""

    def set_ssl_mode(self, zone_id: str, mode: str) -> str:
        """``PATCH /zones/{zone_id}/settings/ssl``; returns the mode now in force."""
        if mode not in SSL_MODES:
            raise IssuerError(
                f"unknown SSL mode {mode!r} (one of {', '.join(SSL_MODES)})", backend=BACKEND
            )
        zone = self.segment(zone_id, "zone_id")
        result, _ = self.call(
            "PATCH", f"/zones/{zone}/settings/ssl", "set SSL mode", body={"value": mode}
        )
        return str(result.get("value")) if isinstance(result, dict) else ""
