"""Trust: Ed25519 keys, a TUF repository of bundles, and verification through python-tuf.

docs/trust.md says which key signs what and what each check stops.

The names below load on first use (PEP 562): `edgewise score --trust` verifies through
`verify` alone and so skips the signing side (keys, repository, operators), about 15 ms of
cryptography and python-tuf imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:
    from .keys import KeyRing, generate_key, init_keys
    from .operators import operator_keys, verify_operator_signature
    from .repository import DirectoryRepository
    from .targets import BundleTarget, target_path
    from .verify import TrustClient, VerifiedBundle, verify_bundle

#: Where each lazily loaded name lives.
_LAZY = {
    "KeyRing": ".keys",
    "generate_key": ".keys",
    "init_keys": ".keys",
    "operator_keys": ".operators",
    "verify_operator_signature": ".operators",
    "DirectoryRepository": ".repository",
    "BundleTarget": ".targets",
    "target_path": ".targets",
    "TrustClient": ".verify",
    "VerifiedBundle": ".verify",
    "verify_bundle": ".verify",
}


__all__ = [
    "BundleTarget",
    "DirectoryRepository",
    "KeyRing",
    "TrustClient",
    "VerifiedBundle",
    "generate_key",
    "init_keys",
    "operator_keys",
    "target_path",
    "verify_bundle",
    "verify_operator_signature",
]

__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)
