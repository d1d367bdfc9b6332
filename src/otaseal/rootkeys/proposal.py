"""Pure: a root proposal (the next root, unsigned or partly signed) and its signature tally.

A proposal file is CI-side, never read by devices: a JSON object with the previous root's
envelope (so a signer on another machine, holding one key and nothing else, can check who must
sign) and the next root's DSSE envelope, whose ``signatures`` collect as people sign. Publishing
stores the ``next`` envelope exactly as a device will read it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from otaseal import dsse, jsonread, trust
from otaseal.errors import InputError, MetadataError
from otaseal.model import Root

if TYPE_CHECKING:
    from otaseal.crypto import PublicKey

PROPOSAL_TYPE = "otaseal-root-proposal"


@dataclass(frozen=True, slots=True)
class Proposal:
    """The root being replaced (verified against itself) and the signed-so-far next root."""

    previous: Root
    previous_envelope: bytes
    next: Root
    envelope: dsse.Envelope

    def to_json(self) -> bytes:
        """The proposal file's bytes."""
        doc = {
            "_type": PROPOSAL_TYPE,
            "app": self.next.app,
            "version": self.next.version,
            "previous": json.loads(self.previous_envelope),
            "next": json.loads(self.envelope.to_json()),
        }
        return json.dumps(doc, indent=2).encode() + b"\n"

    def with_signature(self, keyid: str, sig: bytes) -> Proposal:
        """The same proposal with one more signature."""
        env = self.envelope
        return replace(self, envelope=replace(env, signatures=(*env.signatures, (keyid, sig))))


def propose(previous: Root, previous_envelope: bytes, nxt: Root) -> Proposal:
    """An unsigned proposal for ``nxt``."""
    envelope = dsse.Envelope(dsse.PAYLOAD_TYPE_ROOT, nxt.to_payload(), ())
    return Proposal(previous, previous_envelope, nxt, envelope)


def load(data: bytes, *, app: str, source: str) -> Proposal:
    """Parse a proposal file for ``app``; the previous root must verify against itself."""
    try:
        doc = jsonread.loads(data)
    except jsonread.JsonError as exc:
        raise _bad(source, f"it is not JSON ({exc.detail})") from None
    if not isinstance(doc, dict) or doc.get("_type") != PROPOSAL_TYPE:
        raise _bad(source, f'it is not an object with "_type": "{PROPOSAL_TYPE}"')
    if doc.get("app") != app:
        raise InputError(
            f"{source} proposes a root for the app {str(doc.get('app'))[:64]!r}",
            expected=f"a proposal for {app}",
            fix="sign only proposals for your own app; check --app or --config",
        )
    try:
        previous_bytes = json.dumps(doc.get("previous")).encode()
        previous = trust.verify_trusted_root(previous_bytes, app=app)
        envelope = dsse.Envelope.from_json(json.dumps(doc.get("next")).encode())
        if envelope.payload_type != dsse.PAYLOAD_TYPE_ROOT:
            raise _bad(source, f'its "next" is a {envelope.payload_type[:60]!r} envelope')
        nxt = Root.from_payload(envelope.payload, app=app)
    except MetadataError as exc:
        raise _bad(source, exc.what) from None
    if nxt.version != previous.version + 1:
        raise InputError(
            f"{source} proposes root version {nxt.version} to follow version {previous.version}",
            expected=f"version {previous.version + 1}: each root is exactly one more",
            fix="make a new proposal with `otaseal root propose`",
        )
    return Proposal(previous, previous_bytes, nxt, envelope)


def _bad(source: str, detail: str) -> InputError:
    return InputError(
        f"{source} is not a root proposal otaseal can use: {detail}",
        expected="the file `otaseal root propose … --out FILE` wrote, signed with "
        "`otaseal root sign`",
        fix="make a new proposal; edit proposals only through otaseal",
    )


@dataclass(frozen=True, slots=True)
class Tally:
    """Which root keys of the old and of the new root signed, against each threshold."""

    old_signed: frozenset[str]
    new_signed: frozenset[str]
    old_threshold: int
    new_threshold: int

    @property
    def ready(self) -> bool:
        """Both thresholds are met: devices will accept the next root."""
        return (
            len(self.old_signed) >= self.old_threshold
            and len(self.new_signed) >= self.new_threshold
        )

    def describe(self) -> str:
        """``old root keys 1 of 1, new root keys 1 of 2``."""
        return (
            f"old root keys {len(self.old_signed)} of {self.old_threshold} needed, "
            f"new root keys {len(self.new_signed)} of {self.new_threshold} needed"
        )


def signing_keys(proposal: Proposal) -> dict[str, PublicKey]:
    """Every key whose signature counts: the old root role's and the new root role's."""
    out: dict[str, PublicKey] = {}
    for root in (proposal.previous, proposal.next):
        for keyid in root.role("root").keyids:
            if keyid in root.keys:
                out[keyid] = root.keys[keyid]
    return out


def tally(proposal: Proposal) -> Tally:
    """Count the signatures; refuse (naming the key id) a stranger, a repeat or a stale one."""
    allowed = signing_keys(proposal)
    message = dsse.pae(proposal.envelope.payload_type, proposal.envelope.payload)
    seen: set[str] = set()
    for keyid, sig in proposal.envelope.signatures:
        key = allowed.get(keyid)
        if key is None:
            raise InputError(
                f"the proposal has a signature by key {keyid[:64]}, which is not a root key of "
                f"root v{proposal.previous.version} or v{proposal.next.version}",
                expected="signatures only by keys of the old or the new root role",
                fix="make a new proposal and sign it with root keys only",
            )
        if keyid in seen:
            raise InputError(
                f"the proposal has two signatures by key {keyid}",
                expected="one signature per key: a threshold counts distinct keys",
                fix="make a new proposal and have each key sign it once",
            )
        if not key.is_valid_signature(sig, message):
            raise InputError(
                f"the signature by key {keyid} does not verify over the proposal's payload: the "
                "payload was changed after that key signed it",
                expected="a payload exactly as it was signed",
                fix="discard this file; make a new proposal and collect the signatures again",
            )
        seen.add(keyid)
    old_role, new_role = proposal.previous.role("root"), proposal.next.role("root")
    return Tally(
        old_signed=frozenset(seen & set(old_role.keyids)),
        new_signed=frozenset(seen & set(new_role.keyids)),
        old_threshold=old_role.threshold,
        new_threshold=new_role.threshold,
    )


def add_signature(proposal: Proposal, signer: dsse.Signer) -> Proposal:
    """``proposal`` with ``signer``'s signature, after checking the ones already there."""
    tally(proposal)
    keyid = signer.keyid
    if keyid not in signing_keys(proposal):
        raise InputError(
            f"the key {keyid} is not a root key of root v{proposal.previous.version} or "
            f"v{proposal.next.version}",
            expected="a key listed in the old or the new root role: "
            + ", ".join(k[:12] for k in sorted(signing_keys(proposal))),
            fix="sign with a root key; channel keys cannot sign root",
        )
    if any(k == keyid for k, _ in proposal.envelope.signatures):
        raise InputError(
            f"the key {keyid} has already signed this proposal",
            expected="one signature per key",
            fix="sign with another root key",
        )
    sig = signer.sign(dsse.pae(proposal.envelope.payload_type, proposal.envelope.payload))
    return proposal.with_signature(keyid, sig)


def verify_ready(proposal: Proposal) -> bytes:
    """The next root's envelope bytes, once devices would accept it (the device's own check)."""
    counted = tally(proposal)
    if not counted.ready:
        raise InputError(
            f"root v{proposal.next.version} is not signed enough yet: {counted.describe()}",
            expected="a threshold of the old root keys and of the new root keys",
            fix="collect more signatures with `otaseal root sign FILE --key KEYREF`",
        )
    data = proposal.envelope.to_json()
    trust.verify_root_update(proposal.previous, data)
    return data
