"""Negative vectors for signed metadata and the store: signatures, thresholds, rollback, expiry,
wrong targets, size caps, malformed fields and root rotation (SPEC §§3-7, §10, §16).
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from hostile import DELETE, compressed_spki, edit, encode, envelope
from negative_world import Case, World

from otaseal import dsse
from otaseal.crypto import keyid_of
from otaseal.model import Role, channel_role
from otaseal.project import make_root, sign_root
from otaseal.store import bundle_key, root_key

if TYPE_CHECKING:
    from collections.abc import Iterator


def cases(w: World) -> Iterator[Case]:
    """The metadata and store cases."""
    ctx = w.ctx
    keys, now = w.keys, ctx.now
    root = w.root_bytes

    case = w.case

    def malformed(name: str, attack: str, path: str, value: Any) -> Case:
        payload = encode(edit(w.payload(), path, value))
        return case(name, attack, "§7.1, §7.2, §12", "metadata", w.store(w.signed(payload)))

    # signatures and thresholds (§5, §5.1)
    unsigned = dsse.Envelope(dsse.PAYLOAD_TYPE_CHANNEL, w.manifest().to_payload(), ()).to_json()
    yield case(
        "manifest-unsigned",
        "the manifest envelope has no signature",
        "§5.1",
        "metadata",
        w.store(unsigned),
    )
    yield case(
        "manifest-signed-by-unknown-key",
        "signed by a key the trusted root does not list (beta-2, before the rotation)",
        "§5.1",
        "metadata",
        w.store(w.signed(signers=[keys.beta_2])),
    )
    yield case(
        "manifest-signed-by-another-channel-key",
        "the production key signs a beta manifest (mix and match)",
        "§5.1",
        "metadata",
        w.store(w.signed(signers=[keys.production])),
    )
    yield case(
        "manifest-signed-by-root-key",
        "the root key signs a channel manifest",
        "§5.1",
        "metadata",
        w.store(w.signed(signers=[keys.root])),
    )
    good = json.loads(w.signed())
    good["payload"] = base64.b64encode(w.manifest(version=2).to_payload()).decode()
    yield case(
        "manifest-payload-tampered",
        "the payload was changed after signing (version 1 -> 2)",
        "§5.1",
        "metadata",
        w.store(json.dumps(good).encode()),
    )
    yield case(
        "manifest-payload-type-root",
        "a channel payload signed under the root payload type",
        "§5",
        "metadata",
        w.store(envelope(w.manifest().to_payload(), [keys.beta], kind=dsse.PAYLOAD_TYPE_ROOT)),
    )
    two_of_beta = replace(
        ctx.root,
        keys={**ctx.root.keys, keys.beta_2.keyid: keys.beta_2.public},
        roles={
            **ctx.root.roles,
            channel_role("beta"): Role((keys.beta.keyid, keys.beta_2.keyid), 2),
        },
    )
    strict_root = sign_root(two_of_beta, [keys.root])
    twice = json.loads(w.signed())
    twice["signatures"] *= 2
    yield case(
        "manifest-one-key-counted-twice",
        "the beta role needs 2 of {beta, beta-2}; beta's signature appears twice",
        "§5.1",
        "metadata",
        {**w.store(json.dumps(twice).encode()), root_key(ctx.app, 1): strict_root},
        trusted_root=strict_root,
    )
    yield case(
        "manifest-threshold-not-met",
        "the beta role needs 2 of {beta, beta-2}; only beta signed",
        "§5.1",
        "metadata",
        {**w.store(), root_key(ctx.app, 1): strict_root},
        trusted_root=strict_root,
    )

    # rollback, freeze, expiry (§6, §7, §10)
    newer = {"root": "root.json", "versions": {"beta": 2}, "installed": {}}
    yield case(
        "manifest-rollback",
        "the device accepted beta manifest v2; the store serves v1",
        "§10",
        "metadata",
        w.store(),
        trusted_root=None,
        state=newer,
    )
    expires = now + timedelta(days=30)
    yield case(
        "manifest-expired",
        "freeze: the store keeps serving a manifest past its expiry",
        "§10",
        "metadata",
        w.store(),
        now=expires + timedelta(seconds=1),
    )
    yield case(
        "manifest-expired-at-expires",
        "expiry is inclusive: expires == now is expired",
        "§10",
        "metadata",
        w.store(),
        now=expires,
    )
    yield case(
        "root-expired",
        "the newest trusted root has expired (one year after v1)",
        "§6.2, §10",
        "metadata",
        w.store(),
        now=ctx.root.expires,
    )

    # wrong target and version (§7, §16)
    yield case(
        "manifest-wrong-app",
        "a beta manifest signed for another app",
        "§7.1",
        "metadata",
        w.store(w.signed(w.manifest(app="com.example.other").to_payload())),
    )
    yield case(
        "manifest-wrong-channel",
        "the beta key signs a manifest naming production, served at the beta key",
        "§7.1",
        "metadata",
        w.store(w.signed(w.manifest(channel="production").to_payload())),
    )
    production = envelope(w.manifest(channel="production").to_payload(), [keys.production])
    yield case(
        "manifest-production-replayed-on-beta",
        "a valid production manifest served as beta's",
        "§7.1",
        "metadata",
        w.store(production),
    )
    yield case(
        "manifest-unknown-spec-major",
        "spec_version 2.0",
        "§16",
        "metadata",
        w.store(w.signed(encode(w.payload() | {"spec_version": "2.0"}))),
    )
    yield case(
        "manifest-type-root",
        "_type is root in a channel envelope",
        "§7.1",
        "metadata",
        w.store(w.signed(encode(w.payload() | {"_type": "root"}))),
    )

    yield from json_cases(w)

    # size caps and envelopes (§5, §7)
    padded = w.signed()
    padded += b" " * (512 * 1024 + 1 - len(padded))
    yield case(
        "manifest-oversize",
        "a valid manifest padded to 512 KiB + 1 byte",
        "§7, §12",
        "metadata",
        w.store(padded),
    )
    yield case(
        "manifest-not-json",
        "the manifest is not JSON",
        "§5, §12",
        "metadata",
        w.store(b"<html>404</html>\n"),
    )
    bad64 = json.loads(w.signed())
    bad64["payload"] = "*" + bad64["payload"][1:]
    yield case(
        "manifest-payload-not-base64",
        "the envelope's payload has a non-base64 character",
        "§5, §12",
        "metadata",
        w.store(json.dumps(bad64).encode()),
    )

    # malformed fields of a correctly signed manifest (§7.1, §7.2)
    yield malformed("field-version-string", 'version is the string "1"', "version", "1")
    yield malformed("field-version-boolean", "version is true", "version", True)
    yield malformed("field-version-float", "version is 1.5", "version", 1.5)
    yield malformed("field-version-negative", "version is -1", "version", -1)
    yield malformed("field-expires-not-a-time", 'expires is "tomorrow"', "expires", "tomorrow")
    yield malformed(
        "field-expires-without-zone", "expires has no zone", "expires", "2026-01-31T00:00:00"
    )
    yield malformed("field-releases-missing", "no releases member", "releases", DELETE)
    yield malformed("field-target-unknown", 'target is "latest"', "target", "latest")
    yield malformed("field-security-floor-string", 'security_floor is "0"', "security_floor", "0")
    yield malformed(
        "field-bundle-sha256-uppercase",
        "the bundle digest is upper-case hex",
        "releases.0.bundle.sha256",
        w.release.sha256.upper(),
    )
    yield malformed(
        "field-bundle-sha256-short",
        "the bundle digest has 63 hex digits",
        "releases.0.bundle.sha256",
        w.release.sha256[:63],
    )
    yield malformed(
        "field-bundle-length-negative", "the bundle length is -1", "releases.0.bundle.length", -1
    )
    yield malformed(
        "field-bundle-missing", "a release without its bundle member", "releases.0.bundle", DELETE
    )
    yield malformed(
        "field-rollout-above-10000",
        "rollout basis_points is 10001",
        "releases.0.rollout.basis_points",
        10_001,
    )
    yield malformed("field-native-min-string", 'native.min is "10"', "releases.0.native.min", "10")
    yield malformed(
        "field-releases-too-many",
        "six releases (at most five)",
        "releases",
        [w.release.to_dict()] * 6,
    )

    # root updates (§6.3, §6.4)
    v2 = w.root(2)
    yield case(
        "root-update-without-old-key",
        "root v2 signed only by its own new root key",
        "§6.3",
        "metadata",
        w.store(roots=[sign_root(v2, [keys.root_2])]),
    )
    yield case(
        "root-update-without-new-key",
        "root v2 signed only by the old root key",
        "§6.3",
        "metadata",
        w.store(roots=[sign_root(v2, [keys.root])]),
    )
    yield case(
        "root-update-version-skip",
        "the file at 2.root.json says version 3",
        "§6.3",
        "metadata",
        w.store(roots=[sign_root(w.root(3), [keys.root, keys.root_2])]),
    )
    yield case(
        "root-update-another-app",
        "root v2 names another app",
        "§6.3",
        "metadata",
        w.store(roots=[sign_root(replace(v2, app="com.example.other"), [keys.root, keys.root_2])]),
    )
    yield case(
        "root-update-expired",
        "the newest root (v2) has expired at now",
        "§6.3, §10",
        "metadata",
        w.store(roots=[sign_root(replace(v2, expires=now), [keys.root, keys.root_2])]),
    )
    big_root = sign_root(v2, [keys.root, keys.root_2])
    big_root += b" " * (512 * 1024 + 1 - len(big_root))
    yield case(
        "root-update-oversize",
        "root v2 padded to 512 KiB + 1 byte",
        "§6.3, §12",
        "metadata",
        w.store(roots=[big_root]),
    )
    chain, signer = [], keys.root
    for version in range(2, 35):  # 33 new roots: one more than a device walks in one check
        nxt = make_root(
            ctx.app,
            version,
            now=now,
            root_keys=[keys.root],
            channel_keys={"beta": [keys.beta], "production": [keys.production]},
        )
        chain.append(sign_root(nxt, [signer]))
    yield case(
        "root-too-many-hops",
        "33 new root versions at once (the limit is 32)",
        "§6.3",
        "metadata",
        w.store(roots=chain),
    )
    yield case(
        "root-rotation-old-beta-key",
        "root v2 (root-2.json) rotates the beta key; the manifest is signed by the old one",
        "§6.3, §6.4",
        "metadata",
        w.store(roots=[ctx.vectors["root-2.json"]]),
    )

    # thresholds and key entries of a root update
    def root_payload(**roles: Any) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(replace(ctx.root, version=2).to_payload())
        for name, role in roles.items():
            doc["roles"][name] = role
        return doc

    def root_envelope(doc: Any, signers: list[Any], *, twice: bool = False) -> bytes:
        env = json.loads(envelope(encode(doc), signers, kind=dsse.PAYLOAD_TYPE_ROOT))
        if twice:
            env["signatures"] *= 2
        return json.dumps(env).encode()

    two_roots = root_payload(
        root={"keyids": sorted([keys.root.keyid, keys.root_2.keyid]), "threshold": 2}
    )
    two_roots["keys"][keys.root_2.keyid] = {
        "algorithm": keys.root_2.algorithm,
        "public": base64.b64encode(keys.root_2.public.der).decode(),
    }
    yield case(
        "root-update-new-threshold-not-met",
        "root v2 needs 2 of {root, root-2} and only root signed",
        "§6.3",
        "metadata",
        w.store(roots=[root_envelope(two_roots, [keys.root])]),
    )
    yield case(
        "root-update-one-key-counted-twice",
        "root v2 needs 2 of {root, root-2}; root's signature appears twice",
        "§5.1, §6.3",
        "metadata",
        w.store(roots=[root_envelope(two_roots, [keys.root], twice=True)]),
    )
    twin_der = compressed_spki(keys.beta.public.der)
    twin = keyid_of(twin_der)
    split_key = root_payload(
        **{"channel:beta": {"keyids": sorted([keys.beta.keyid, twin]), "threshold": 2}}
    )
    split_key["keys"][twin] = {
        "algorithm": "ecdsa-p256-sha256",
        "public": base64.b64encode(twin_der).decode(),
    }
    signature = json.loads(w.signed())["signatures"][0]["sig"]
    both = json.loads(w.signed())
    both["signatures"] = [
        {"keyid": keys.beta.keyid, "sig": signature},
        {"keyid": twin, "sig": signature},
    ]
    yield case(
        "root-one-key-under-two-key-ids",
        "root v2 lists the beta key twice (uncompressed and compressed point) to meet a "
        "threshold of 2 with one signature",
        "§4, §6.1",
        "metadata",
        w.store(json.dumps(both).encode(), roots=[root_envelope(split_key, [keys.root])]),
    )
    # A root update that only reorders a role's key ids changes no role (§6.4): the device keeps
    # its stored version, so an older manifest is still a rollback.
    pair = [keys.beta.keyid, keys.beta_2.keyid]
    listed = {
        keys.beta_2.keyid: {
            "algorithm": keys.beta_2.algorithm,
            "public": base64.b64encode(keys.beta_2.public.der).decode(),
        }
    }
    first = root_payload(**{"channel:beta": {"keyids": sorted(pair), "threshold": 1}})
    first["version"] = 1
    first["keys"].update(listed)
    again = root_payload(**{"channel:beta": {"keyids": sorted(pair, reverse=True), "threshold": 1}})
    again["keys"].update(listed)
    first_root = root_envelope(first, [keys.root])
    yield case(
        "root-update-reordered-key-ids-keeps-rollback-protection",
        "the device accepted beta v2 under a root listing {beta, beta-2}; root v2 lists the same "
        "key ids in the other order; the store serves beta v1",
        "§6.4",
        "metadata",
        {**w.store(roots=[root_envelope(again, [keys.root])]), root_key(ctx.app, 1): first_root},
        trusted_root=first_root,
        state={"root": first_root, "versions": {"beta": 2}, "installed": {}},
    )

    # Which root a check starts from (§6.2): the higher version of the state's and the shipped
    # one. The store has no 2.root.json, so only a device that picks v2 refuses the old beta key.
    yield case(
        "root-state-newer-than-shipped",
        "the state holds root v2 (new beta key), the app still ships v1; the manifest is signed "
        "by the v1 beta key",
        "§6.2",
        "metadata",
        w.store(),
        state={"root": "root-2.json", "versions": {}, "installed": {}},
    )
    yield case(
        "root-shipped-newer-than-state",
        "an app update ships root v2 (new beta key), the state holds v1; the manifest is signed "
        "by the v1 beta key",
        "§6.2",
        "metadata",
        w.store(),
        trusted_root=ctx.vectors["root-2.json"],
        state={"root": "root.json", "versions": {}, "installed": {}},
    )
    forged = sign_root(ctx.root, [keys.beta])
    yield case(
        "trusted-root-not-self-signed",
        "the root the app ships is signed by the beta key, not its root key",
        "§6.2",
        "metadata",
        {**w.store(), root_key(ctx.app, 1): forged},
        trusted_root=forged,
    )
    other = sign_root(replace(ctx.root, app="com.example.other"), [keys.root])
    yield case(
        "trusted-root-another-app",
        "the root the app ships names another app",
        "§6.2",
        "metadata",
        w.store(),
        trusted_root=other,
    )

    # the store (§3)
    no_manifest = {root_key(ctx.app, 1): root}
    yield case(
        "manifest-missing", "the store has no beta manifest", "§3, §12", "store", no_manifest
    )
    no_bundle = w.store()
    del no_bundle[bundle_key(ctx.app, w.release.sha256)]
    yield case(
        "bundle-missing",
        "the manifest names a bundle the store does not have",
        "§3, §12",
        "store",
        no_bundle,
    )


def json_cases(w: World) -> Iterator[Case]:
    """The JSON reader's rules (SPEC §1, §5): each payload is correctly signed by the beta key."""
    keys = w.keys
    honest = encode(w.payload())  # compact, keys sorted: every edit below is a byte replace

    def swap(old: bytes, new: bytes) -> bytes:
        assert honest.count(old) == 1, old
        return honest.replace(old, new)

    def signed_payload(name: str, attack: str, payload: bytes) -> Case:
        return w.case(name, attack, "§1, §5, §7.1", "metadata", w.store(w.signed(payload)))

    yield signed_payload(
        "json-duplicate-key",
        'the payload has "version" twice (1, then 2)',
        honest[:-1] + b',"version":2}',
    )
    deep = '{"x":' * 40 + "0" + "}" * 40
    yield signed_payload(
        "json-too-deep",
        "an unknown member nested 41 levels deep (at most 32)",
        honest[:-1] + b',"nested":' + deep.encode() + b"}",
    )
    yield signed_payload(
        "json-integer-above-2-53",
        "version is 2^53 = 9007199254740992 (at most 2^53 - 1)",
        encode(w.payload() | {"version": 2**53}),
    )
    yield signed_payload(
        "json-integer-overflowing-double",
        "version is 1e400 (no binary64 value)",
        swap(b'"version":1', b'"version":1e400'),
    )
    yield signed_payload(
        "json-bom", "a UTF-8 byte-order mark before the payload", b"\xef\xbb\xbf" + honest
    )
    yield signed_payload(
        "json-invalid-utf8",
        "a byte 0xff inside the event string",
        swap(b'"publish 2.0.0"', b'"publish \xff"'),
    )
    yield signed_payload(
        "json-unpaired-surrogate",
        "the event string holds an unpaired \\ud800",
        swap(b'"publish 2.0.0"', b'"publish \\ud800"'),
    )
    yield signed_payload(
        "json-nan",
        "security_floor is NaN",
        swap(b'"security_floor":0', b'"security_floor":NaN'),
    )
    yield signed_payload(
        "json-spec-version-without-minor",
        'spec_version is "1" (MAJOR.MINOR required)',
        encode(w.payload() | {"spec_version": "1"}),
    )
    yield signed_payload(
        "json-expires-year-10000",
        "expires is 10000-01-01T00:00:00Z (years 1..9999)",
        encode(w.payload() | {"expires": "10000-01-01T00:00:00Z"}),
    )
    yield signed_payload(
        "json-expires-fraction",
        "expires has fractional seconds",
        encode(w.payload() | {"expires": "2026-01-31T00:00:00.5Z"}),
    )
    yield signed_payload(
        "json-expires-before-year-1",
        "expires is 0001-01-01T00:00:00+14:00, an instant before year 1 in UTC",
        encode(w.payload() | {"expires": "0001-01-01T00:00:00+14:00"}),
    )
    unpadded = honest + b" " * ((1 - len(honest)) % 3)  # a length whose base64 ends in ==
    env_unpadded = json.loads(envelope(unpadded, [keys.beta]))
    assert env_unpadded["payload"].endswith("==")
    env_unpadded["payload"] = env_unpadded["payload"].rstrip("=")
    yield w.case(
        "json-base64-unpadded",
        "the envelope's payload base64 lacks its = padding",
        "§1, §5",
        "metadata",
        w.store(json.dumps(env_unpadded).encode()),
    )
    honest_env = json.loads(w.signed())
    evil = base64.b64encode(w.manifest(version=99).to_payload()).decode()
    doubled = (
        f'{{"payloadType":"{dsse.PAYLOAD_TYPE_CHANNEL}","payload":"{evil}",'
        f'"payload":"{honest_env["payload"]}","signatures":{json.dumps(honest_env["signatures"])}}}'
    )
    yield w.case(
        "json-envelope-duplicate-payload",
        "the envelope has two payload members: an unsigned v99, then the signed v1",
        "§1, §5",
        "metadata",
        w.store(doubled.encode()),
    )
    yield w.case(
        "json-envelope-too-deep",
        "20 000 nested arrays instead of an envelope (deeper than any recursion limit)",
        "§1, §5",
        "metadata",
        w.store(b"[" * 20_000 + b"]" * 20_000),
    )
    yield w.case(
        "json-envelope-unclosed",
        "50 000 opening brackets and nothing else",
        "§1, §5",
        "metadata",
        w.store(b"[" * 50_000),
    )
    yield w.case(
        "json-envelope-bom",
        "a UTF-8 byte-order mark before the envelope",
        "§1, §5",
        "metadata",
        w.store(b"\xef\xbb\xbf" + w.signed()),
    )
    v2 = w.root(2)
    payload = json.loads(v2.to_payload())
    first = min(payload["keys"])
    payload["keys"][first]["public"] = "é" + payload["keys"][first]["public"][1:]
    yield w.case(
        "json-root-key-not-ascii-base64",
        "a key of root v2 has a non-ASCII character in its base64",
        "§1, §6.1",
        "metadata",
        w.store(
            roots=[envelope(encode(payload), [keys.root, keys.root_2], kind=dsse.PAYLOAD_TYPE_ROOT)]
        ),
    )
