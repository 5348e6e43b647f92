"""Cloudflare's DNS API, as much of it as ACME dns-01 needs: find a zone, create, list and delete
the ``_acme-challenge`` TXT records.

Every record this tool creates carries :data:`RECORD_COMMENT`, so records left by an
interrupted run are recognised (and only ours) and removed by the next run that touches the
same name. Calls go through :class:`~agent.pki.issuers.cloudflare_api.CloudflareClient` (v4
envelope, Bearer token, bounded retries).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from agent.errors import IssuerError
from agent.pki.issuers.cloudflare_api import CloudflareClient

log = logging.getLogger(__name__)

RECORD_COMMENT = "origin-agent acme dns-01 challenge"
TTL = 60  # seconds: Cloudflare's shortest for non-enterprise zones
MAX_PAGES = 20
_NAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z]{2,63}$"
)


@dataclass(frozen=True)
class TxtRecord:
    """One TXT record in a Cloudflare zone."""

    zone_id: str
    record_id: str
    name: str
    content: str


def challenge_name(identifier: str) -> str:
    """The TXT record name of a dns-01 challenge for ``identifier`` (``*.`` dropped)."""
    base = identifier[2:] if identifier.startswith("*.") else identifier
    return "_acme-challenge." + base.rstrip(".").lower()


def _check_name(name: str, backend: str) -> str:
    if not _NAME.fullmatch(name):
        raise IssuerError(f"dns-01: invalid DNS name {name!r}", backend=backend)
    return name.lower()


class CloudflareDns:
    """The TXT records of ACME dns-01 challenges in Cloudflare zones."""

    def __init__(self, client: CloudflareClient, *, zone_id: str = "", zone: str = "") -> None:
        self.client = client
        self.backend = client.backend
        self._zone_id = zone_id
        self._zone = zone.rstrip(".").lower()
        self._zones: dict[str, str] = {}  # zone name -> id, looked up once

    def zone_of(self, record_name: str) -> tuple[str, str]:
        """``(zone id, zone name)`` holding ``record_name``: the configured zone, else the
        longest parent domain Cloudflare knows (``GET /zones?name=``).

        Raises:
            IssuerError: the name is outside the configured zone, or no zone holds it.
        """
        name = _check_name(record_name, self.backend)
        if self._zone_id:
            zone = self._zone or self._zone_name(self._zone_id)
            if name != zone and not name.endswith("." + zone):
                raise IssuerError(f"dns-01: {name} is not in zone {zone}", backend=self.backend)
            return self._zone_id, zone
        labels = name.split(".")
        candidates = [".".join(labels[i:]) for i in range(1, len(labels) - 1)]
        if self._zone:
            candidates = [self._zone] if name.endswith("." + self._zone) else []
        for candidate in candidates:
            zone_id = self._lookup(candidate)
            if zone_id:
                return zone_id, candidate
        raise IssuerError(
            f"dns-01: no Cloudflare zone holds {name}",
            backend=self.backend,
            hint="set dns_zone_id, or give the token Zone:Read on the zone",
        )

    def _zone_name(self, zone_id: str) -> str:
        result, _ = self.client.call(
            "GET", f"/zones/{self.client.segment(zone_id, 'dns_zone_id')}", "get zone"
        )
        name = result.get("name") if isinstance(result, dict) else None
        if not isinstance(name, str) or not name:
            raise IssuerError(f"get zone: zone {zone_id} has no name", backend=self.backend)
        self._zone = name.rstrip(".").lower()
        return self._zone

    def _lookup(self, zone: str) -> str:
        if zone not in self._zones:
            result, _ = self.client.call(
                "GET", "/zones", f"find zone {zone}", params={"name": zone, "per_page": 5}
            )
            found = [
                z
                for z in result or []
                if isinstance(z, dict) and z.get("name") == zone and z.get("id")
            ]
            self._zones[zone] = str(found[0]["id"]) if found else ""
        return self._zones[zone]

    def create(self, record_name: str, content: str) -> TxtRecord:
        """``POST /zones/{id}/dns_records``: one TXT record carrying our comment."""
        zone_id, _ = self.zone_of(record_name)
        zone = self.client.segment(zone_id, "zone id")
        result, _ = self.client.call(
            "POST",
            f"/zones/{zone}/dns_records",
            f"create TXT record {record_name}",
            body={
                "type": "TXT",
                "name": record_name,
                "content": content,
                "ttl": TTL,
                "comment": RECORD_COMMENT,
            },
        )
        if not isinstance(result, dict) or not result.get("id"):
            raise IssuerError(
                f"create TXT record {record_name}: answer has no record id", backend=self.backend
            )
        return TxtRecord(zone_id, str(result["id"]), record_name, content)

    def ours(self, record_name: str) -> list[TxtRecord]:
        """Our TXT records named ``record_name`` (``GET /zones/{id}/dns_records``, paged)."""
        zone_id, _ = self.zone_of(record_name)
        zone = self.client.segment(zone_id, "zone id")
        found: list[TxtRecord] = []
        for page in range(1, MAX_PAGES + 1):
            result, info = self.client.call(
                "GET",
                f"/zones/{zone}/dns_records",
                f"list TXT records {record_name}",
                params={"type": "TXT", "name.exact": record_name, "page": page, "per_page": 100},
            )
            for row in result or []:
                if (
                    isinstance(row, dict)
                    and row.get("comment") == RECORD_COMMENT
                    and str(row.get("name", "")).lower() == record_name
                    and row.get("id")
                ):
                    found.append(
                        TxtRecord(zone_id, str(row["id"]), record_name, str(row.get("content")))
                    )
            if page >= int(info.get("total_pages") or 1):
                break
        return found

    def delete(self, record: TxtRecord) -> None:
        """``DELETE /zones/{id}/dns_records/{record id}``."""
        zone = self.client.segment(record.zone_id, "zone id")
        rid = self.client.segment(record.record_id, "record id")
        self.client.call(
            "DELETE", f"/zones/{zone}/dns_records/{rid}", f"delete TXT record {record.name}"
        )

    def remove_leftovers(self, record_names: list[str]) -> int:
        """Delete our records left under ``record_names`` by an earlier, interrupted run;
        return how many were removed."""
        removed = 0
        for name in dict.fromkeys(record_names):
            for record in self.ours(name):
                log.info("removing leftover challenge record %s (%s)", name, record.record_id)
                self.delete(record)
                removed += 1
        return removed
