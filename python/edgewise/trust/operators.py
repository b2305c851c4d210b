"""Operator keys: who may send fleet commands, recorded in the signed root metadata.

The keys live in a field of root metadata that the TUF specification does not define; python-tuf
keeps such fields and they are covered by the root signatures, so a device learns which operator
keys to trust through the same verified chain as everything else, and a root rotation changes
them. A command carries ``Signer.sign(payload)`` from the operator key; this module checks it.
"""

from __future__ import annotations

from collections.abc import Iterable

from securesystemslib.exceptions import UnverifiedSignatureError
from securesystemslib.signer import Key, Signature
from tuf.api.metadata import Root

from ..exceptions import TrustError

OPERATOR_KEYS_FIELD = "x-edgewise-operator-keys"


def set_operator_keys(root: Root, keys: Iterable[Key]) -> None:
    root.unrecognized_fields[OPERATOR_KEYS_FIELD] = {key.keyid: key.to_dict() for key in keys}


def operator_keys(root: Root) -> dict[str, Key]:
    """The operator public keys by key id that this (verified) root trusts."""
    recorded = root.unrecognized_fields.get(OPERATOR_KEYS_FIELD, {})
    try:
        return {keyid: Key.from_dict(keyid, dict(fields)) for keyid, fields in recorded.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TrustError(f"root version {root.version}: malformed operator keys ({exc})") from exc


def verify_operator_signature(root: Root, payload: bytes, signature: Signature) -> Key:
    """Return the operator key that made `signature` over `payload`, or raise `TrustError`."""
    key = operator_keys(root).get(signature.keyid)
    if key is None:
        raise TrustError(
            f"operator signature by key {signature.keyid[:12]}: not an operator key of "
            f"root version {root.version}"
        )
    try:
        key.verify_signature(signature, payload)
    except UnverifiedSignatureError as exc:
        raise TrustError(
            f"operator signature by key {signature.keyid[:12]}: does not match the payload"
        ) from exc
    return key
