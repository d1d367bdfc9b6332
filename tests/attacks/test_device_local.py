"""The device's own side: its state file, its install folder, its shipped root, its native build.

None of these come from the store, but each used to end a check in a traceback (a ``TypeError``
from a hand-edited ``state.json``, an ``OSError`` from a stale ``www.otaseal-old`` symlink) or in
a silent wrong answer (a native build update that installed nothing). A refused check changes
nothing and, when the trouble is local, does not even contact the store.
"""

from __future__ import annotations

import base64
import json
import pathlib

import pytest

from otaseal import cli
from otaseal.client import STATE_FILE
from otaseal.errors import (
    InputError,
    MalformedMetadataError,
    UnsignedMetadataError,
    WrongTargetError,
)
from otaseal.store import root_key

SHA = "ab" * 32


def install_first_release(repo, device):
    release = repo.publish("beta", label="1.0.0")
    assert device.check().status == "installed"
    return release


def refuses_locally(device, error=InputError):
    """Refused with ``error`` before any request to the store; nothing changed."""
    caught = device.refuses(error)
    assert device.fetcher.keys == [], "the store was contacted"
    return caught


# --- state.json -----------------------------------------------------------------------------
def edit_state(device, change):
    doc = device.state()
    change(doc)
    (device.state_dir / STATE_FILE).write_text(json.dumps(doc), encoding="utf-8")


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(versions={"beta": "7"}),
        lambda d: d.update(versions={"beta": 2**53}),
        lambda d: d.update(versions={"beta": -1}),
        lambda d: d.update(versions=[]),
        lambda d: d.update(versions={"Not A Channel": 1}),
        lambda d: d.update(installed={"beta": 5}),
        lambda d: d.update(installed={"beta": {"sha256": "xyz", "label": "1", "counter": 1}}),
        lambda d: d["installed"]["beta"].update(counter="1"),
        lambda d: d["installed"]["beta"].pop("label"),
        lambda d: d.update(native={"beta": "12"}),
        lambda d: d.update(native=None),
        lambda d: d.update(root=12),
        lambda d: d.update(root="not base64"),
        lambda d: d.update(root=d["root"].rstrip("=")),
        lambda d: d.update(root=""),
        lambda d: d.pop("versions"),
        lambda d: d.update(future=json.loads("[" * 40 + "]" * 40)),
    ],
)
def test_state_with_wrong_types_is_refused_before_the_store(repo, device, change):
    install_first_release(repo, device)
    edit_state(device, change)

    error = refuses_locally(device)

    assert "device state" in error.what
    assert error.exit_code == 2


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"\xef\xbb\xbf{}",
        b"[" * 100_000,
        b'{"root": "", "root": ""}',
        b"\xff\xfe{\x00}\x00",
        b"[]",
        b" " * (4 * 1024 * 1024 + 1),
    ],
)
def test_state_that_is_not_the_clients_json_is_refused(repo, device, raw):
    install_first_release(repo, device)
    (device.state_dir / STATE_FILE).write_bytes(raw)

    refuses_locally(device)


def test_state_root_that_fails_its_own_check_is_refused_as_damaged_state(repo, device):
    install_first_release(repo, device)
    foreign = repo.sign_root(repo.make_root(version=1), [repo.keys.attacker])
    edit_state(device, lambda d: d.update(root=base64.b64encode(foreign).decode()))

    error = refuses_locally(device)

    assert "fails its own check" in error.what


def test_state_that_is_a_folder_is_refused(repo, device):
    device.state_dir.mkdir()
    (device.state_dir / STATE_FILE).mkdir()

    error = refuses_locally(device)

    assert "not a regular file" in error.what


def test_state_written_by_an_older_client_is_read(repo, device):
    """No ``native`` record (older clients): read, and the channel is evaluated once more."""
    install_first_release(repo, device)
    edit_state(device, lambda d: d.pop("native"))

    assert device.check().status == "up_to_date"
    assert device.state()["native"] == {"beta": None}


# --- the install folder -----------------------------------------------------------------------
def test_out_that_is_a_symlink_is_refused_before_the_store(repo, device, tmp_path):
    install_first_release(repo, device)
    real = tmp_path / "real-www"
    device.out_dir.rename(real)
    device.out_dir.symlink_to(real, target_is_directory=True)
    repo.publish("beta", label="2.0.0")

    error = refuses_locally(device)

    assert "symbolic link" in error.what
    assert device.out_dir.readlink() == real
    assert sorted(p.name for p in device.home.iterdir()) == ["state", "www"]


def test_out_that_is_a_file_is_refused(repo, device):
    repo.publish("beta", label="1.0.0")
    device.home.joinpath("www").write_text("not a folder")

    error = refuses_locally(device)

    assert "not a folder" in error.what


@pytest.mark.parametrize("stale", ["symlink", "file", "folder", "dangling"])
def test_stale_previous_build_is_removed_without_following_links(repo, device, tmp_path, stale):
    install_first_release(repo, device)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("must survive")
    old = device.home / "www.otaseal-old"
    if stale == "symlink":
        old.symlink_to(outside, target_is_directory=True)
    elif stale == "dangling":
        old.symlink_to(tmp_path / "nowhere")
    elif stale == "file":
        old.write_text("left by a crash")
    else:
        old.mkdir()
        (old / "index.html").write_text("old build")
        (old / "link").symlink_to(outside, target_is_directory=True)
    release = repo.publish("beta", label="2.0.0")

    result = device.check()

    assert (result.status, result.release) == ("installed", release)
    assert device.files() == repo.build(label="2.0.0").files
    assert sorted(p.name for p in device.home.iterdir()) == ["state", "www"]
    assert (outside / "keep.txt").read_text() == "must survive"


def test_stale_previous_build_that_cannot_be_removed_is_refused(repo, device, monkeypatch):
    install_first_release(repo, device)
    old = device.home / "www.otaseal-old"
    old.write_text("left by a crash")
    repo.publish("beta", label="2.0.0")
    real_unlink = pathlib.Path.unlink

    def unlink(path, *args, **kwargs):
        if path.name == old.name:
            raise PermissionError(13, "Permission denied")
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "unlink", unlink)

    error = device.refuses(InputError, bundle_allowed=True)

    assert "www.otaseal-old" in error.what
    assert sorted(p.name for p in device.home.iterdir()) == ["state", "www", "www.otaseal-old"]


# --- the root shipped with the app ------------------------------------------------------------
def test_newer_root_shipped_with_an_app_update_wins_over_the_state(repo, new_device):
    device = new_device()
    install_first_release(repo, device)
    repo.rotate_root(channel_keys={**repo.channel_signers, "beta": [repo.keys.new_beta]})
    (repo.store.root / root_key(repo.app, 2)).unlink()  # the store never got root v2
    fixed = repo.publish("beta", label="2.0.0", keep=False)
    assert repo.served["beta"].version == 2
    device.refuses(UnsignedMetadataError)  # root v1 cannot verify the new beta key

    device.initial_root = repo.root_bytes  # the app update ships root v2

    assert (device.check().release, device.trusted_root_version()) == (fixed, 2)


def test_shipped_root_rotation_resets_the_rotated_channel(repo, new_device):
    """Fast-forward recovery (§6.4) compares the state's root with the newest one."""
    device = new_device()
    install_first_release(repo, device)
    stolen = repo.manifest("beta", repo.served["beta"].releases, version=10**9)
    repo.serve_manifest(stolen, signers=[repo.keys.beta])
    assert device.check().status == "up_to_date"
    repo.rotate_root(channel_keys={**repo.channel_signers, "beta": [repo.keys.new_beta]})
    (repo.store.root / root_key(repo.app, 2)).unlink()
    fixed = repo.publish("beta", label="2.0.1", keep=False)
    repo.serve_manifest(repo.manifest("beta", [fixed], version=1))
    device.initial_root = repo.root_bytes

    assert device.check().release == fixed
    assert device.trusted_version() == 1


def test_older_root_shipped_with_the_app_does_not_replace_the_state(repo, new_device):
    device = new_device()
    install_first_release(repo, device)
    repo.rotate_root(channel_keys={**repo.channel_signers, "beta": [repo.keys.new_beta]})
    repo.publish("beta", label="2.0.0")
    assert device.check().status == "installed"
    assert device.trusted_root_version() == 2
    (repo.store.root / root_key(repo.app, 2)).unlink()
    repo.publish("beta", label="3.0.0")

    assert device.check().release.label == "3.0.0"  # initial_root is still v1
    assert device.trusted_root_version() == 2


def test_broken_shipped_root_is_blamed_on_the_root_not_the_store(repo, new_device):
    device = new_device()
    install_first_release(repo, device)
    device.initial_root = b"<html>not a root</html>"

    error = device.refuses(MalformedMetadataError)

    assert "--root" in error.what
    assert "store" not in error.fix


# --- native build -----------------------------------------------------------------------------
def test_native_build_update_makes_a_listed_release_installable(repo, new_device):
    device = new_device(native=12)
    release = repo.publish("beta", label="2.0.0", native_min=20)
    result = device.check()
    assert (result.status, result.release) == ("up_to_date", None)
    assert device.trusted_version() == 1

    device.native = 20  # the app store update; the channel's manifest did not change
    result = device.check()

    assert (result.status, result.release) == ("installed", release)
    assert device.state()["native"] == {"beta": 20}
    assert device.check().detail == "no new manifest since the last check"


def test_native_build_recorded_per_channel(repo, new_device):
    device = new_device(native=12)
    beta = repo.publish("beta", label="2.0.0", native_min=20)
    production = repo.publish("production", label="2.0.0", native_min=20)
    assert device.check().release is None
    assert device.check(channel="production").release is None
    device.native = 20

    assert device.check().release == beta
    assert device.check(channel="production").release.sha256 == production.sha256


@pytest.mark.parametrize("native", [-1, 2**53, True])
def test_native_build_out_of_range_is_refused(repo, new_device, native):
    device = new_device(native=native)
    repo.publish("beta")

    refuses_locally(device)


def test_install_id_that_is_not_unicode_is_refused(repo, new_device):
    device = new_device(install_id="\udcff")
    repo.publish("beta")

    refuses_locally(device)


# --- through the CLI: exit codes --------------------------------------------------------------
@pytest.fixture
def fetch_argv(repo, tmp_path):
    key = tmp_path / "app.key.pem"
    key.write_bytes(repo.keys.decryption.to_pem())
    root = tmp_path / "root.json"
    root.write_bytes(repo.root_bytes)
    return [
        "fetch",
        "--store",
        str(repo.store.root),
        "--app",
        repo.app,
        "--channel",
        "beta",
        "--root",
        str(root),
        "--decryption-key",
        str(key),
        "--state",
        str(tmp_path / "cli-state"),
        "--install-id",
        "install-0",
        "--out",
        str(tmp_path / "cli-www"),
        "--json",
    ]


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        (["--now", "2026-01-15T12:00:00Z"], 0),
        (["--now", "2026-01-15T12:00:00.000001Z"], 2),
        (["--now", "0001-01-01T00:00:00+14:00"], 2),
        (["--now", "9999-12-31T23:59:59-14:00"], 2),
        (["--now", "9999-12-31T23:59:59Z"], 3),  # everything expired
        (["--now", "0001-01-01T00:00:00Z"], 0),
        (["--now", "2026-01-15T12:00:00Z", "--native", "-1"], 2),
        (["--now", "2026-01-15T12:00:00Z", "--native", "9007199254740992"], 2),
    ],
)
def test_fetch_exit_codes_at_the_edges(repo, fetch_argv, capsys, extra, code):
    repo.publish("beta")

    assert cli.main([*fetch_argv, *extra]) == code

    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    if code:
        assert json.loads(out.splitlines()[-1])["error"]["type"]


def test_fetch_with_damaged_state_exits_2(repo, fetch_argv, tmp_path, capsys):
    repo.publish("beta")
    state = tmp_path / "cli-state"
    state.mkdir()
    (state / STATE_FILE).write_text('{"root": "", "versions": {}, "installed": {}}')

    assert cli.main([*fetch_argv, "--now", "2026-01-15T12:00:00Z"]) == 2

    assert json.loads(capsys.readouterr().out)["error"]["type"] == "InputError"
    assert (state / STATE_FILE).read_text() == '{"root": "", "versions": {}, "installed": {}}'


@pytest.mark.parametrize("with_state", [False, True])
def test_shipped_root_of_another_app_is_refused(repo, new_device, with_state):
    device = new_device()
    if with_state:
        install_first_release(repo, device)
    other = repo.make_root(version=2 if with_state else 1, app="com.example.other")
    device.initial_root = repo.sign_root(other, repo.root_signers)
    repo.publish("beta", label="2.0.0")

    error = device.refuses(WrongTargetError)

    assert "--root" in error.what
    assert "com.example.other" in error.what


def test_failed_swap_puts_the_old_build_back(repo, device, monkeypatch):
    install_first_release(repo, device)
    before = device.files()
    repo.publish("beta", label="2.0.0")
    real_rename = pathlib.Path.rename

    def rename(path, target):
        if path.name.startswith(".otaseal-staging-"):
            raise OSError(28, "No space left on device")
        return real_rename(path, target)

    monkeypatch.setattr(pathlib.Path, "rename", rename)

    error = device.refuses(InputError, bundle_allowed=True)

    assert "No space left" in error.what
    assert device.files() == before
    assert sorted(p.name for p in device.home.iterdir()) == ["state", "www"]


def test_state_that_cannot_be_written_is_left_as_it_was(repo, device, monkeypatch):
    install_first_release(repo, device)
    repo.publish("beta", label="2.0.0")

    def fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("otaseal.devicestate.os.fsync", fsync)
    state = device.state_bytes()

    with pytest.raises(InputError, match="cannot write the device state"):
        device.check()

    # As after a crash between §10 steps 20 and 21: the old state, no temporary file left, and
    # the next check converges on the release already in place.
    assert device.state_bytes() == state
    assert sorted(p.name for p in device.state_dir.iterdir()) == ["installed", STATE_FILE]
    assert list((device.state_dir / "installed").iterdir()) == []  # the kept index went too
    monkeypatch.undo()
    assert device.check().release.label == "2.0.0"
    assert device.installed()["label"] == "2.0.0"


def test_builtin_revert_removes_the_build_and_a_stale_link_only(repo, device, tmp_path):
    install_first_release(repo, device)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("must survive")
    (device.home / "www.otaseal-old").symlink_to(outside, target_is_directory=True)
    repo.serve_manifest(repo.manifest("beta", repo.served["beta"].releases, builtin=True))

    assert device.check().status == "builtin"

    assert sorted(p.name for p in device.home.iterdir()) == ["state"]
    assert (outside / "keep.txt").read_text() == "must survive"
