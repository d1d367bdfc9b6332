"""Publishing the Capgo format beside the sealed one, and carrying it through promote and revert."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from otaseal import crypto
from otaseal import operations as ops
from otaseal.config import load_config
from otaseal.errors import ConfigError, KeyMaterialError
from otaseal.formats.capgo import verify_artifact
from otaseal.formats.sealed import open_sealed
from otaseal.project import init_project
from otaseal.store import bundle_key, capgo_key
from tests.conftest import APP, NOW


@pytest.fixture
def capgo_project(tmp_path: Path) -> ops.Project:
    directory = tmp_path / "capgo-project"
    init_project(APP, directory, now=NOW, formats=("sealed", "capgo"))
    config = load_config(directory / "otaseal.yml")
    return ops.Project(config, ops.open_store(config.store), clock=lambda: NOW)


def _public(project: ops.Project) -> crypto.CapgoPublicKey:
    path = project.config.path.parent / "keys" / "capgo.pub.pem"
    return crypto.load_capgo_public_key(path.read_bytes())


def _store_files(project: ops.Project) -> dict[str, bytes]:
    root = Path(project.store.describe())
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _variant(web: Path, tmp_path: Path, text: str) -> Path:
    import shutil

    target = tmp_path / f"web-{text}"
    shutil.copytree(web, target)
    (target / "index.html").write_text(f"<!doctype html><p>{text}</p>")
    return target


class RecordingStore:
    """The real store, recording the order of writes."""

    def __init__(self, inner: ops.Storage) -> None:
        self.inner = inner
        self.writes: list[str] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def create(self, key: str, data: bytes) -> bool:
        self.writes.append(key)
        return self.inner.create(key, data)

    def create_from_file(self, key: str, path: Path) -> bool:
        self.writes.append(key)
        return self.inner.create_from_file(key, path)


def test_publish_writes_both_formats_from_one_zip(
    capgo_project: ops.Project, web: Path, tmp_path: Path
) -> None:
    recording = RecordingStore(capgo_project.store)
    project = replace(capgo_project, store=recording)  # type: ignore[arg-type]
    result = ops.publish(project, web, channel="beta", label="1.0.0")
    release = result.release
    capgo = release.capgo
    assert capgo is not None
    assert capgo.key_id == _public(project).key_id
    key = capgo_key(APP, capgo.sha256)
    manifest = f"{APP}/channels/beta/1.json"
    assert recording.writes.index(key) < recording.writes.index(manifest)
    assert recording.writes.index(bundle_key(APP, release.sha256)) < recording.writes.index(
        manifest
    )
    assert result.capgo_path == f"{project.store.describe()}/{key}"
    assert Path(result.capgo_path).is_file()
    data = capgo_project.store.read(key)[0]
    assert len(data) == capgo.length
    zip_from_capgo = io.BytesIO()
    digest = verify_artifact(
        io.BytesIO(data),
        public_key=_public(project),
        session_key=capgo.session_key,
        checksum=capgo.checksum,
        out=zip_from_capgo,
        max_length=capgo.length,
        sha256=capgo.sha256,
    )
    # The Capgo checksum is over the very zip the sealed bundle holds.
    assert digest == release.plaintext_sha256
    decryption = crypto.load_decryption_key(
        (project.config.path.parent / "keys" / "app-decryption.pem").read_bytes()
    )
    zip_from_cub = io.BytesIO()
    open_sealed(
        io.BytesIO(capgo_project.store.read(bundle_key(APP, release.sha256))[0]),
        decryption,
        zip_from_cub,
        max_plaintext=release.plaintext_length,
    )
    assert zip_from_cub.getvalue() == zip_from_capgo.getvalue()
    # The manifest signs the entry; reading it back gives the same artifact.
    head = ops.read_head(capgo_project, "beta")
    assert head.manifest is not None
    assert head.manifest.current == release
    assert ops.release_dict(release)["capgo"] == capgo.to_dict()  # type: ignore[index]


def test_republishing_the_same_build_stays_a_noop(capgo_project: ops.Project, web: Path) -> None:
    first = ops.publish(capgo_project, web, channel="beta")
    before = _store_files(capgo_project)
    again = ops.publish(capgo_project, web, channel="beta")
    assert again.noop
    assert again.release.capgo == first.release.capgo
    assert _store_files(capgo_project) == before


def test_a_release_from_before_manifest_mode_is_republished_with_its_file_list(
    capgo_project: ops.Project, web: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from otaseal import publishing

    real = publishing.attach_files

    def no_list(result: Any, *args: Any, **kwargs: Any) -> Any:
        return result, None

    monkeypatch.setattr(publishing, "attach_files", no_list)
    old = ops.publish(capgo_project, web, channel="beta")
    assert old.release.capgo is not None
    assert old.release.capgo.files is None
    monkeypatch.setattr(publishing, "attach_files", real)
    again = ops.publish(capgo_project, web, channel="beta")
    assert not again.noop
    assert again.release.capgo is not None
    assert again.release.capgo.files is not None
    assert again.release.plaintext_sha256 == old.release.plaintext_sha256
    assert ops.publish(capgo_project, web, channel="beta").noop


def test_turning_capgo_on_republishes_the_same_build_with_it(
    project: ops.Project, web: Path
) -> None:
    sealed_only = ops.publish(project, web, channel="beta")
    assert sealed_only.release.capgo is None
    key = crypto.generate_capgo_key()
    key_file = project.config.path.parent / "keys" / "capgo.pem"
    key_file.write_bytes(key.to_pem())
    config = replace(
        project.config,
        formats=("sealed", "capgo"),
        keys={**project.config.keys, "capgo": f"file:{key_file}"},
    )
    with_capgo = ops.publish(replace(project, config=config), web, channel="beta")
    assert not with_capgo.noop
    assert with_capgo.release.plaintext_sha256 == sealed_only.release.plaintext_sha256
    assert with_capgo.release.capgo is not None
    assert with_capgo.release.capgo.key_id == key.public.key_id


def test_promote_and_revert_keep_capgo_without_reupload(
    capgo_project: ops.Project, web: Path, tmp_path: Path
) -> None:
    one = ops.publish(capgo_project, web, channel="beta", label="1.0.0")
    two = ops.publish(capgo_project, _variant(web, tmp_path, "two"), channel="beta", label="2.0.0")
    artifacts = {k for k in _store_files(capgo_project) if k.endswith(".capgo.zip")}
    assert len(artifacts) == 2
    promoted = ops.promote(capgo_project, source="beta", target="production", rollout=10)
    assert promoted.manifest.current is not None
    assert promoted.manifest.current.capgo == two.release.capgo
    rolled = ops.set_rollout(capgo_project, channel="production", percent=50)
    assert rolled.manifest.current and rolled.manifest.current.capgo == two.release.capgo
    reverted = ops.revert(capgo_project, channel="beta")
    assert reverted.manifest.current is not None
    assert reverted.manifest.current.capgo == one.release.capgo
    assert {k for k in _store_files(capgo_project) if k.endswith(".capgo.zip")} == artifacts


def test_promote_refuses_a_release_whose_capgo_artifact_is_gone(
    capgo_project: ops.Project, web: Path
) -> None:
    result = ops.publish(capgo_project, web, channel="beta")
    assert result.capgo_path is not None
    Path(result.capgo_path).unlink()
    with pytest.raises(ops.StoreError, match="Capgo artifact"):
        ops.promote(capgo_project, source="beta", target="production")


def _with_key(project: ops.Project, ref: str | None) -> ops.Project:
    keys = {k: v for k, v in project.config.keys.items() if k != "capgo"}
    if ref is not None:
        keys["capgo"] = ref
    return replace(project, config=replace(project.config, keys=keys))


def _pem(bits: int, fmt: serialization.PrivateFormat) -> bytes:
    return rsa.generate_private_key(65537, bits).private_bytes(
        serialization.Encoding.PEM, fmt, serialization.NoEncryption()
    )


@pytest.mark.parametrize(
    ("ref", "error", "message"),
    [
        (None, ConfigError, "names no key for it"),
        ("kms://alias/otaseal-capgo", KeyMaterialError, "remote signer cannot make Capgo"),
        ("vault-transit://transit/capgo", KeyMaterialError, "remote signer cannot make Capgo"),
        ("env:CAPGO_PKCS8", KeyMaterialError, "not a PKCS#1 RSA private key"),
        ("env:CAPGO_3072", KeyMaterialError, "RSA-3072"),
        ("env:CAPGO_P256", KeyMaterialError, "not a PKCS#1 RSA private key"),
        ("env:CAPGO_PUBLIC", KeyMaterialError, "is the Capgo public key"),
        ("env:CAPGO_MISSING", KeyMaterialError, "is not set"),
    ],
)
def test_bad_capgo_key_publishes_nothing(
    capgo_project: ops.Project, web: Path, ref: str | None, error: type[Exception], message: str
) -> None:
    public = (capgo_project.config.path.parent / "keys" / "capgo.pub.pem").read_text()
    env = {
        "CAPGO_PKCS8": _pem(2048, serialization.PrivateFormat.PKCS8).decode(),
        "CAPGO_3072": _pem(3072, serialization.PrivateFormat.TraditionalOpenSSL).decode(),
        "CAPGO_P256": crypto.generate_signing_key().to_pem().decode(),
        "CAPGO_PUBLIC": public,
    }
    project = replace(_with_key(capgo_project, ref), env=env)
    before = _store_files(project)
    with pytest.raises(error, match=message) as caught:
        ops.publish(project, web, channel="beta")
    assert caught.value.exit_code == 2  # type: ignore[attr-defined]
    text = caught.value.diagnostics()  # type: ignore[attr-defined]
    assert "\n" not in text
    assert "MII" not in text  # no key body (every PEM body here starts with MII)
    assert _store_files(project) == before


def test_capgo_key_from_env_is_masked(capgo_project: ops.Project, web: Path) -> None:
    pem = (capgo_project.config.path.parent / "keys" / "capgo.pem").read_text()
    masked: list[str] = []
    project = replace(
        _with_key(capgo_project, "env:OTASEAL_CAPGO_KEY"),
        env={"OTASEAL_CAPGO_KEY": pem},
        mask=masked.append,
    )
    result = ops.publish(project, web, channel="beta")
    assert result.release.capgo is not None
    assert pem in masked
