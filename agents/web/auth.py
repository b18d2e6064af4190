"""Who may read and who may act: a bearer token from the settings, and loopback for read-only views.

Pure functions of the request's remote address and ``Authorization`` header, so they are tested without
a server. The token is compared in constant time and never logged or echoed.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass, field
from typing import Mapping

READ_POLICIES = ("loopback", "open", "token")


def bearer(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if there is one."""
    value = headers.get("Authorization") or headers.get("authorization") or ""
    scheme, _, token = value.partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def is_loopback(remote: str | None) -> bool:
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote.split("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


@dataclass(frozen=True)
class Decision:
    allowed: bool
    status: int = 200  # 401: no or wrong token; 403: actions are switched off
    reason: str = ""


ALLOW = Decision(True)


@dataclass(frozen=True)
class Access:
    """``reads``: ``loopback`` (open to clients on this host, token elsewhere), ``open`` or ``token``.
    Actions always need the token; without a configured token they are off."""

    token: str | None = field(default=None, repr=False)
    reads: str = "loopback"

    def __post_init__(self) -> None:
        if self.reads not in READ_POLICIES:
            raise ValueError(f"read access must be one of {READ_POLICIES}, got {self.reads!r}")

    def _token_ok(self, headers: Mapping[str, str]) -> bool:
        presented = bearer(headers)
        return bool(self.token and presented and hmac.compare_digest(presented.encode(), self.token.encode()))

    def read(self, remote: str | None, headers: Mapping[str, str]) -> Decision:
        if self.reads == "open" or (self.reads == "loopback" and is_loopback(remote)) or self._token_ok(headers):
            return ALLOW
        return Decision(False, 401, "reading needs a bearer token from this address")

    def act(self, headers: Mapping[str, str]) -> Decision:
        if not self.token:
            return Decision(False, 403, "actions are disabled: the worker has no EMLOPS_API_TOKEN")
        if self._token_ok(headers):
            return ALLOW
        return Decision(False, 401, "actions need 'Authorization: Bearer <token>'")
