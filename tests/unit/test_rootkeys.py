"""The pure root-change core, proposals and their tally, expiry notes, and ops on a folder store."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from otaseal import trust
from otaseal.crypto import generate_signing_key, signing_key_from_scalar
from otaseal.errors import InputError
from otaseal.model import ChannelManifest, Role, Root
from otaseal.rootkeys import changes, ops
from otaseal.rootkeys import proposal as proposals
from otaseal.rootkeys.expiry import expiry_notes
from otaseal.store import root_key

if TYPE_CHECKING:
    from otaseal.operations import Project

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
YEAR = NOW + timedelta(days=365)
ROOT_KEYS = [signing_key_from_scalar(0x7001 + i) for i in range(3)]
BETA, BETA_2 = signing_key_from_scalar(0x7101), signing_key_from_scalar(0x7102)


def _root(root_keys: int = 1, threshold: int = 1) -> Root:
    keys = {k.keyid: k.public for k in (*ROOT_KEYS[:root_keys], BETA)}
    return Root(
        app="com.example.app",
        version=1,
        issued=NOW,
        expires=YEAR,
        keys=keys,
        roles={
            "root": Role(tuple(k.keyid for k in ROOT_KEYS[:root_keys]), threshold),
            "channel:beta": Role((BETA.keyid,), 1),
        },
    )


def _envelope(root: Root, signers: list) -> bytes:  # type: ignore[type-arg]
    from otaseal.project import sign_root

    return sign_root(root, signers)


# --- changes -------------------------------------------------------------------------------------
def test_renew_keeps_keys_and_moves_expiry() -> None:
    nxt = changes.next_root(_root(), changes.Renew(), now=NOW, expires=NOW + timedelta(days=400))
    assert (nxt.version, nxt.issued, nxt.expires) == (2, NOW, NOW + timedelta(days=400))
    assert (nxt.keys, nxt.roles) == (_root().keys, _root().roles)


def test_add_key_then_threshold_then_remove_key() -> None:
    two = changes.next_root(
        _root(), changes.AddKey("root", ROOT_KEYS[1].public), now=NOW, expires=YEAR
    )
    assert two.roles["root"] == Role(tuple(sorted((ROOT_KEYS[0].keyid, ROOT_KEYS[1].keyid))), 1)
    three = changes.next_root(two, changes.SetThreshold("root", 2), now=NOW, expires=YEAR)
    assert three.roles["root"].threshold == 2
    with pytest.raises(InputError, match="Lower it first"):
        changes.next_root(
            three, changes.RemoveKey("root", ROOT_KEYS[0].keyid), now=NOW, expires=YEAR
        )
    one = changes.next_root(
        two, changes.RemoveKey("root", ROOT_KEYS[0].keyid[:8]), now=NOW, expires=YEAR
    )
    assert one.roles["root"] == Role((ROOT_KEYS[1].keyid,), 1)
    assert ROOT_KEYS[0].keyid not in one.keys  # no role lists it any more


def test_add_key_creates_a_new_channel_role() -> None:
    nxt = changes.next_root(
        _root(), changes.AddKey("channel:staging", BETA_2.public), now=NOW, expires=YEAR
    )
    assert nxt.roles["channel:staging"] == Role((BETA_2.keyid,), 1)


def test_rotate_channel_revokes_the_old_key() -> None:
    nxt = changes.next_root(
        _root(), changes.RotateChannel("beta", BETA_2.public), now=NOW, expires=YEAR
    )
    assert nxt.roles["channel:beta"] == Role((BETA_2.keyid,), 1)
    assert BETA.keyid not in nxt.keys
    assert trust.rotated_roles(_root(), nxt) == {"channel:beta"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (changes.RemoveKey("root", ROOT_KEYS[0].keyid), "last key of root"),
        (changes.RemoveKey("channel:beta", BETA.keyid), "last key of channel:beta"),
        (changes.SetThreshold("root", 2), "a threshold of 2 for root, which has 1 key"),
        (changes.SetThreshold("root", 0), "a threshold of 0"),
        (changes.SetThreshold("root", 1), "already needs 1"),
        (changes.AddKey("root", ROOT_KEYS[0].public), "already lists"),
        (changes.AddKey("root", BETA.public), "already signs for channel:beta"),
        (changes.AddKey("channel:beta", ROOT_KEYS[0].public), "already signs for root"),
        (changes.RemoveKey("root", "00000000"), "has no key"),
        (changes.SetThreshold("channel:nope", 1), "no role 'channel:nope'"),
        (changes.RotateChannel("beta", BETA.public), "already has only the key"),
        (changes.RotateChannel("nope", BETA_2.public), "no role"),
    ],
)
def test_changes_devices_could_not_use_are_refused(change: changes.Change, message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        changes.next_root(_root(), change, now=NOW, expires=YEAR)
    assert caught.value.exit_code == 2


def test_role_names() -> None:
    assert changes.role_name("root") == "root"
    assert changes.role_name("beta") == changes.role_name("channel:beta") == "channel:beta"
    with pytest.raises(InputError):
        changes.role_name("Beta!")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("365d", NOW + timedelta(days=365)),
        ("52w", NOW + timedelta(weeks=52)),
        ("720h", NOW + timedelta(hours=720)),
        ("2027-06-01T00:00:00Z", datetime(2027, 6, 1, tzinfo=UTC)),
    ],
)
def test_parse_expiry(text: str, expected: datetime) -> None:
    assert changes.parse_expiry(text, NOW) == expected


@pytest.mark.parametrize("text", ["0d", "-5d", "2026-11-23T12:00:00Z", "2020-01-01T00:00:00Z"])
def test_an_expiry_in_the_past_is_refused(text: str) -> None:
    with pytest.raises(InputError, match="not after now"):
        changes.parse_expiry(text, NOW)
    with pytest.raises(InputError, match="not after now"):
        changes.next_root(_root(), changes.Renew(), now=NOW, expires=NOW)


def test_an_expiry_that_is_no_time_is_refused() -> None:
    with pytest.raises(InputError, match="neither a duration nor a time"):
        changes.parse_expiry("next year", NOW)


# --- proposals -----------------------------------------------------------------------------------
def _proposal(
    change: changes.Change, *, root_keys: int = 1, threshold: int = 1
) -> proposals.Proposal:
    current = _root(root_keys, threshold)
    previous = _envelope(current, ROOT_KEYS[:root_keys])
    nxt = changes.next_root(current, change, now=NOW, expires=YEAR)
    return proposals.propose(current, previous, nxt)


def test_proposal_round_trips_and_collects_signatures() -> None:
    p = _proposal(changes.AddKey("root", ROOT_KEYS[1].public))
    p = proposals.add_signature(p, ROOT_KEYS[0])
    loaded = proposals.load(p.to_json(), app="com.example.app", source="next.root.json")
    assert loaded.next == p.next
    assert loaded.envelope.signatures == p.envelope.signatures
    counted = proposals.tally(loaded)
    assert counted.ready
    assert counted.describe() == ("old root keys 1 of 1 needed, new root keys 1 of 1 needed")
    data = proposals.verify_ready(loaded)
    assert trust.verify_root_update(loaded.previous, data).version == 2


def test_two_of_three_needs_two_signatures_of_the_new_root() -> None:
    p = _proposal(changes.SetThreshold("root", 2), root_keys=3)
    p = proposals.add_signature(p, ROOT_KEYS[0])
    assert not proposals.tally(p).ready
    with pytest.raises(InputError, match="new root keys 1 of 2"):
        proposals.verify_ready(p)
    p = proposals.add_signature(p, ROOT_KEYS[2])
    assert proposals.tally(p).ready


def test_sign_refuses_a_channel_key_and_a_second_signature() -> None:
    p = proposals.add_signature(_proposal(changes.Renew()), ROOT_KEYS[0])
    with pytest.raises(InputError, match=f"key {BETA.keyid} is not a root key"):
        proposals.add_signature(p, BETA)
    with pytest.raises(InputError, match=f"{ROOT_KEYS[0].keyid} has already signed"):
        proposals.add_signature(p, ROOT_KEYS[0])


def test_a_proposal_for_another_app_is_refused() -> None:
    data = _proposal(changes.Renew()).to_json()
    with pytest.raises(InputError, match="for the app 'com.example.app'") as caught:
        proposals.load(data, app="com.other.app", source="next.root.json")
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: b"not json", "not JSON"),
        (lambda d: json.dumps({**json.loads(d), "_type": "x"}).encode(), '"_type"'),
        (lambda d: json.dumps({**json.loads(d), "previous": {}}).encode(), "not a root proposal"),
        (
            lambda d: json.dumps(
                {**json.loads(d), "next": {**json.loads(d)["next"], "payloadType": "x"}}
            ).encode(),
            "'x' envelope",
        ),
    ],
)
def test_a_damaged_proposal_file_is_refused(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    data = mutate(_proposal(changes.Renew()).to_json())
    with pytest.raises(InputError, match=message):
        proposals.load(data, app="com.example.app", source="next.root.json")


def test_a_proposal_that_skips_a_version_is_refused() -> None:
    p = _proposal(changes.Renew())
    skipped = proposals.propose(p.previous, p.previous_envelope, replace(p.next, version=3))
    with pytest.raises(InputError, match="version 3 to follow version 1"):
        proposals.load(skipped.to_json(), app="com.example.app", source="next.root.json")


# --- expiry ------------------------------------------------------------------------------------
def _manifest(expires: datetime, issued: datetime = NOW - timedelta(days=300)) -> ChannelManifest:
    return ChannelManifest("com.example.app", "beta", 7, issued, expires)


def test_a_30_day_manifest_warns_in_its_second_half_and_fails_from_14_days() -> None:
    root = replace(_root(), expires=NOW + timedelta(days=365))
    signed = NOW - timedelta(days=30)

    def levels(days_left: float) -> list[str]:
        manifest = _manifest(
            NOW + timedelta(days=days_left), issued=signed + timedelta(days=days_left)
        )
        return [n.level for n in expiry_notes(root, {"beta": manifest}, now=NOW)]

    assert levels(30) == []
    assert levels(15.5) == []
    assert levels(15) == ["warning"]
    assert levels(14) == ["error"]


def test_expiry_notes_warn_from_60_days_and_fail_from_14() -> None:
    root = replace(_root(), issued=NOW - timedelta(days=300), expires=NOW + timedelta(days=61))
    assert expiry_notes(
        root, {"beta": _manifest(NOW + timedelta(days=30)), "x": None}, now=NOW
    ) == (expiry_notes(root, {"beta": _manifest(NOW + timedelta(days=30))}, now=NOW))
    [note] = expiry_notes(root, {"beta": _manifest(NOW + timedelta(days=30))}, now=NOW)
    assert (note.what, note.level) == ("beta manifest v7", "warning")
    assert "in 30 day(s)" in note.message(NOW)
    notes = expiry_notes(
        replace(root, expires=NOW + timedelta(days=60)),
        {"beta": _manifest(NOW + timedelta(days=14))},
        now=NOW,
    )
    assert [(n.what, n.level) for n in notes] == [
        ("root v1", "warning"),
        ("beta manifest v7", "error"),
    ]
    [gone] = expiry_notes(replace(root, expires=NOW - timedelta(days=1)), {}, now=NOW)
    assert gone.level == "error"
    assert "expired at 2026-11-22T12:00:00Z" in gone.message(NOW)
    assert "otaseal root renew" in gone.message(NOW)
    assert expiry_notes(replace(root, expires=NOW + timedelta(days=61)), {}, now=NOW) == ()
    assert [
        n.level for n in expiry_notes(replace(root, expires=NOW + timedelta(days=15)), {}, now=NOW)
    ] == ["warning"]


# --- ops on a folder store ---------------------------------------------------------------------
def test_renew_stores_the_next_root_and_updates_root_json(project: Project) -> None:
    notices: list[str] = []
    result = ops.apply(project, changes.Renew(), expires_in="400d", notice=notices.append)
    assert result.root.version == 2
    assert result.path == root_key(project.app, 2)
    assert project.store.exists(root_key(project.app, 2))
    data = project.config.root.read_bytes()
    assert trust.verify_trusted_root(data, app=project.app).version == 2
    assert ops.newest_root(project)[0].expires == NOW + timedelta(days=400)
    assert notices[0] == f"stored root v2 at {root_key(project.app, 2)}"


def test_a_threshold_the_project_key_cannot_meet_asks_for_offline_signing(
    project: Project, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    extra = generate_signing_key()
    ops.apply(project, changes.AddKey("root", extra.public))
    before = sorted(p.name for p in (tmp_path / "project" / "store").rglob("*"))
    with pytest.raises(InputError, match="root propose") as caught:
        ops.apply(project, changes.SetThreshold("root", 2))
    assert caught.value.exit_code == 2
    assert sorted(p.name for p in (tmp_path / "project" / "store").rglob("*")) == before
