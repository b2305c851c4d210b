"""Bearer tokens of the HTTP API and the roles they carry.

Tokens are 256 random bits, shown once when made and stored only as their SHA-256: with that much
entropy a plain hash is as safe as a slow password hash, and checking one costs a lookup.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import IntEnum

from .store import AuditWrite, Store

TOKEN_PREFIX = "ewt_"  # makes a leaked token easy to recognise (and to scan for)


class Role(IntEnum):
    """What a token may do; each role may do everything the ones below it may."""

    VIEWER = 1  # read devices, alerts and the audit log
    OPERATOR = 2  # also change the fleet: labels, rollouts
    ADMIN = 3  # also make tokens

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.upper()]
        except KeyError:
            allowed = ", ".join(role.label for role in cls)
            raise ValueError(f"unknown role {text!r}; use one of {allowed}") from None


@dataclass(frozen=True)
class Principal:
    """Who made a request: the token's name (recorded as the actor in the audit log) and role."""

    name: str
    role: Role


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(store: Store, name: str, role: Role, audit: AuditWrite | None = None) -> str:
    """Make a token; the returned secret is not stored and cannot be shown again."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    store.add_token(name, role.label, hash_token(token), audit)
    return token


def authenticate(store: Store, token: str) -> Principal | None:
    """The principal a token stands for, or None for an unknown token."""
    row = store.token_by_hash(hash_token(token))
    return None if row is None else Principal(row.name, Role.parse(row.role))
