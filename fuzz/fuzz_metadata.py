"""Fuzz target: the metadata parser and the trust checks a device runs on what a store serves.

The first input byte picks a check, the rest is its input. Raw modes feed the bytes as stored
(a DSSE envelope, or a payload straight into the parser). Signed modes sign the fuzzed payload
with the golden vectors' TEST keys first, so the parser, the app/channel/spec checks, the version
and expiry rules and ``pick_release`` run on content that passed signature verification, which
is what a publisher's key (or a compromised one) can make a device read. One mode loads a fuzzed
``state.json``, the device's own file.
"""

from __future__ import annotations

import shutil
import sys
from datetime import UTC, datetime, timedelta

import _harness

with _harness.instrumented(fuzzing=__name__ == "__main__"):
    from otaseal import client, dsse, trust
    from otaseal.crypto import signing_key_from_scalar
    from otaseal.model import ChannelManifest, Root

APP = "com.example.app"
CHANNEL = "beta"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
ROOT_V1_BYTES = (_harness.VECTORS / "root.json").read_bytes()
ROOT_V1 = trust.verify_trusted_root(ROOT_V1_BYTES, app=APP)
SIGNERS = {
    label: signing_key_from_scalar(_harness.vector_scalar(label))
    for label in ("root", "root-2", "beta", "beta-2", "production")
}


def _now(src: _harness.Input) -> datetime:
    """The reference time: the vectors' clock moved by up to about ±3 years, to the second."""
    return NOW + timedelta(seconds=src.int(4) - (1 << 31) // 10)


def _signed(payload_type: str, payload: bytes, *labels: str) -> bytes:
    return dsse.sign(payload_type, payload, [SIGNERS[label] for label in labels]).to_json()


def _device(src: _harness.Input) -> tuple[int | None, bool, str]:
    """Native build (0xffffffff: none), whether the first release is installed, install id."""
    native = src.int(4)
    installed = src.int(1) & 1
    install_id = src.chunk().decode("utf-8", "replace")
    return (native if native != 0xFFFFFFFF else None), bool(installed), install_id


def _pick(device: tuple[int | None, bool, str], manifest: ChannelManifest) -> None:
    native, installed, install_id = device
    picked = trust.pick_release(
        manifest,
        install_id=install_id,
        native=native,
        installed_sha256=manifest.releases[0].sha256 if installed and manifest.releases else None,
    )
    if picked is not None and picked not in manifest.releases:
        raise AssertionError("pick_release returned a release the manifest does not list")


def _manifest(src: _harness.Input, *, signed: bool) -> None:
    stored = src.int(2)
    now = _now(src)
    device = _device(src)
    rest = src.rest()
    if signed:
        rest = _signed(dsse.PAYLOAD_TYPE_CHANNEL, rest, "beta")
    manifest = trust.verify_channel_manifest(
        ROOT_V1, rest, channel=CHANNEL, now=now, trusted_version=stored or None
    )
    if stored and manifest.version < stored:
        raise AssertionError("a manifest older than the trusted version was accepted")
    if manifest.expires <= now:
        raise AssertionError("an expired manifest was accepted")
    _pick(device, manifest)


def _root_update(src: _harness.Input, *, signed: bool) -> None:
    data = src.rest()
    if signed:
        data = _signed(dsse.PAYLOAD_TYPE_ROOT, data, "root", "root-2")
    new = trust.verify_root_update(ROOT_V1, data)
    if new.version != ROOT_V1.version + 1 or new.app != APP:
        raise AssertionError(f"root update to v{new.version} of {new.app!r} accepted")
    trust.rotated_roles(ROOT_V1, new)


def _state(src: _harness.Input) -> None:
    folder = _harness.scratch() / "state"
    folder.mkdir()
    try:
        (folder / client.STATE_FILE).write_bytes(src.rest())
        state = client.DeviceState.load(folder, None)
        trust.verify_trusted_root(state.root, app=APP)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def target(data: bytes) -> None:
    """Dispatch on the first byte; see the module docstring."""
    src = _harness.Input(data)
    mode = src.int(1) % 10
    if mode == 0:
        dsse.Envelope.from_json(src.rest())
    elif mode == 1:
        app = APP if src.int(1) & 1 else None
        Root.from_payload(src.rest(), app=app)
    elif mode == 2:
        device = _device(src)
        _pick(device, ChannelManifest.from_payload(src.rest(), app=APP, channel=CHANNEL))
    elif mode == 3:
        trust.verify_trusted_root(src.rest(), app=APP)
    elif mode == 4:
        _root_update(src, signed=False)
    elif mode == 5:
        _manifest(src, signed=False)
    elif mode == 6:
        root = trust.verify_trusted_root(
            _signed(dsse.PAYLOAD_TYPE_ROOT, src.rest(), "root"), app=APP
        )
        trust.verify_not_expired("root", root.expires, NOW)
    elif mode == 7:
        _root_update(src, signed=True)
    elif mode == 8:
        _manifest(src, signed=True)
    else:
        _state(src)


if __name__ == "__main__":
    _harness.fuzz(target)
    sys.exit(0)
