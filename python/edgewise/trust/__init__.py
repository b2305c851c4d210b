"""Trust: Ed25519 keys, a TUF repository of bundles, and verification through python-tuf.

docs/trust.md says which key signs what and what each check stops.
"""

from __future__ import annotations

from .keys import KeyRing, generate_key, init_keys
from .operators import operator_keys, verify_operator_signature
from .repository import DirectoryRepository
from .targets import BundleTarget, target_path
from .verify import TrustClient, VerifiedBundle, verify_bundle

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
