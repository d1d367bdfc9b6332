"""DSSE envelopes: the signature covers the exact payload bytes (PAE), so no canonical JSON.

The algorithm of each signature comes from the trusted key entry (root.json), never from the
envelope. A threshold counts distinct trusted key ids, so one key cannot be counted twice.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from otaseal import jsonread
from otaseal.errors import MalformedMetadataError, UnsignedMetadataError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from otaseal.crypto import PublicKey

PAYLOAD_TYPE_ROOT = "application/vnd.otaseal.root+json"
PAYLOAD_TYPE_CHANNEL = "application/vnd.otaseal.channel+json"


class Signer(Protocol):
    """Anything that signs: a key in this process, AWS KMS, Vault transit."""

    @property
    def keyid(self) -> str:
        """SHA-256 of the public key's DER SPKI, hex."""
        ...

    @property
    def public(self) -> PublicKey:
        """The verification key root.json must list for this signer."""
        ...

    def sign(self, data: bytes) -> bytes:
        """Signature over ``data`` (DER ECDSA-SHA256 or raw Ed25519)."""
        ...


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: ``DSSEv1 SP len(type) SP type SP len(body) SP body``."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True, slots=True)
class Envelope:
    """A DSSE envelope as stored: payload bytes, their type, and signatures by key id."""

    payload_type: str
    payload: bytes
    signatures: tuple[tuple[str, bytes], ...]

    def to_json(self) -> bytes:
        """Serialize as the DSSE JSON envelope."""
        doc = {
            "payloadType": self.payload_type,
            "payload": base64.b64encode(self.payload).decode(),
            "signatures": [
                {"keyid": keyid, "sig": base64.b64encode(sig).decode()}
                for keyid, sig in self.signatures
            ],
        }
        return json.dumps(doc, indent=2).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> Envelope:
        """Parse the envelope only; the payload stays untouched bytes until verified."""
        try:
            doc = jsonread.loads(data)
        except jsonread.JsonError as exc:
            raise _not_envelope(exc.detail) from None
        if not isinstance(doc, dict):
            raise _not_envelope("it is not a JSON object")
        payload_type, payload = doc.get("payloadType"), jsonread.decode_base64(doc.get("payload"))
        if not isinstance(payload_type, str):
            raise _not_envelope('"payloadType" is not a string')
        if payload is None:
            raise _not_envelope('"payload" is not padded standard base64')
        entries = doc.get("signatures")
        if not isinstance(entries, list):
            raise _not_envelope('"signatures" is not an array')
        sigs: list[tuple[str, bytes]] = []
        for entry in entries:
            keyid = entry.get("keyid") if isinstance(entry, dict) else None
            sig = jsonread.decode_base64(entry.get("sig")) if isinstance(entry, dict) else None
            if not isinstance(keyid, str) or sig is None:
                raise _not_envelope(
                    'a signature is not an object with a string "keyid" and a base64 "sig"'
                )
            sigs.append((keyid, sig))
        return cls(payload_type, payload, tuple(sigs))


def _not_envelope(detail: str) -> MalformedMetadataError:
    return MalformedMetadataError(
        f"the metadata is not a DSSE envelope: {detail}",
        expected='{"payloadType", "payload", "signatures": [{"keyid", "sig"}]} in UTF-8 JSON, '
        "with padded standard base64",
        fix="the store holds a damaged or foreign file; republish",
    )


def sign(payload_type: str, payload: bytes, signers: Sequence[Signer]) -> Envelope:
    """Sign ``payload`` with every signer."""
    message = pae(payload_type, payload)
    return Envelope(payload_type, payload, tuple((s.keyid, s.sign(message)) for s in signers))


def verify(
    envelope: Envelope,
    *,
    payload_type: str,
    keys: Mapping[str, PublicKey],
    keyids: Sequence[str],
    threshold: int,
    role: str,
) -> bytes:
    """Return the payload if at least ``threshold`` distinct trusted keys signed it, else raise."""
    if envelope.payload_type != payload_type:
        raise UnsignedMetadataError(
            f"the envelope's payload type is {envelope.payload_type!r}",
            expected=repr(payload_type),
        )
    message = pae(envelope.payload_type, envelope.payload)
    allowed = set(keyids)
    good: set[str] = set()
    for keyid, sig in envelope.signatures:
        key = keys.get(keyid)
        if keyid in allowed and key is not None and key.is_valid_signature(sig, message):
            good.add(keyid)
    if threshold < 1 or len(good) < threshold:
        raise UnsignedMetadataError(
            f"{role} metadata has {len(good)} valid signature(s) from trusted keys",
            expected=f"at least {max(threshold, 1)} from the keys root.json lists for {role}",
            fix="sign with the role's key(s); another role's key or an unknown key does not count",
        )
    return envelope.payload
