"""Attacks on sealed deltas (SPEC §19): a hostile store serves a patch that must not be applied.

Every patch refusal ends the same way: the device installs the full bundle, its files and state
are exactly the new release's, and the refusal is reported in ``FetchResult.delta``. When the
full bundle is unavailable as well, the check fails (its error names the patch's refusal) and the
old tree is untouched.
"""

from __future__ import annotations

import hashlib
import io
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import zstandard

from otaseal.crypto import decryption_key_from_scalar
from otaseal.errors import NotFoundError
from otaseal.formats import delta as fmt
from otaseal.formats import sealed
from otaseal.model import Delta, Patch
from otaseal.store import bundle_key

if TYPE_CHECKING:
    from collections.abc import Callable

    from otaseal.client import FetchResult
    from otaseal.model import Release

    from .conftest import Bundle, Device, Repository

DEVICE_KEY = decryption_key_from_scalar(0x5001)  # conftest's Keys.decryption
CODE = "".join(f"export function f{i}(x) {{ return x * {i} + {i % 7}; }}\n" for i in range(2000))
OLD = {
    "index.html": b'<!doctype html><script src="assets/app-Ab12Cd34.js"></script>\n',
    "assets/app-Ab12Cd34.js": CODE.encode(),
    "assets/vendor-Qq11Ww22.js": ("/* vendor */\n" + CODE[:20000]).encode(),
    "assets/style.css": b"body { color: black; }\n" * 50,
    "img/logo.png": hashlib.shake_256(b"logo").digest(3000),
    "old.txt": b"removed in 2.0.0\n",
}
NEW = {
    "index.html": b'<!doctype html><script src="assets/app-Zz98Yy76.js"></script>\n',
    "assets/app-Zz98Yy76.js": CODE.replace("x * 1000 +", "x * 1001 +").encode(),
    "assets/vendor-Qq11Ww22.js": OLD["assets/vendor-Qq11Ww22.js"],
    "assets/style.css": b"body { color: navy; }\n" + b"body { color: black; }\n" * 49,
    "images/logo.png": OLD["img/logo.png"],  # renamed, unchanged
    "new.txt": b"added in 2.0.0\n",
}


def _write(folder: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        target = folder.joinpath(*name.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return folder


def seal(plaintext: bytes) -> tuple[bytes, sealed.SealResult]:
    out = io.BytesIO()
    writer = sealed.SealWriter(out, [DEVICE_KEY.public])
    writer.write(plaintext)
    result = writer.close()
    return out.getvalue(), result


class DeltaWorld:
    """The device runs 1.0.0 (installed in full); ``publish`` serves 2.0.0 with a patch."""

    def __init__(self, repo: Repository, device: Device) -> None:
        self.repo, self.device = repo, device
        self.v1 = repo.publish(label="1.0.0", files=dict(OLD))
        first = device.check()
        assert first.status == "installed"
        self.bundle: Bundle = repo.build(dict(NEW), label="2.0.0")
        self.index_json = self.bundle.packed.index.to_json()
        self.kept = device.state_dir / "installed" / "beta.index.json"
        self.base_index = self.kept.read_bytes()  # what the device kept of 1.0.0 (SPEC §19.2)

    def make(self, *, base_files: dict[str, bytes] = OLD, base: str | None = None) -> bytes:
        """An honest patch plaintext from ``base_files`` to 2.0.0."""
        root = self.repo.path / f"delta-{len(list(self.repo.path.iterdir()))}"
        return fmt.make_patch(
            _write(root / "base", base_files),
            _write(root / "target", NEW),
            self.index_json,
            base_bundle=base or self.v1.sha256,
            target_bundle=self.bundle.sha256,
            base_index=self.base_index,
        ).plaintext

    def header(self, plaintext: bytes) -> fmt.PatchHeader:
        """The patch's header, read as the device reads it."""
        return fmt.read_header(io.BytesIO(plaintext), len(plaintext), base_index=self.base_index)

    def rebuild(
        self, plaintext: bytes, ops: list[fmt.Op], payloads: list[bytes], **header: str
    ) -> bytes:
        """A patch with the same index and other ops/payloads (what an attacker can write)."""
        old = self.header(plaintext)
        return fmt.encode_header(
            old.index_json,
            ops,
            base=header.get("base", old.base),
            target=header.get("target", old.target),
            base_index=self.base_index,
        ) + b"".join(payloads)

    def payloads(self, plaintext: bytes) -> list[bytes]:
        """Each listed op's payload."""
        return [plaintext[at : at + n] for at, n in self.header(plaintext).payloads()]

    def publish(
        self,
        plaintext: bytes | None = None,
        *,
        cub: Callable[[bytes], bytes] = lambda c: c,
        index: str | None = None,
        upload_bundle: bool = True,
    ) -> Release:
        """Serve 2.0.0 with ``plaintext`` sealed as its patch from 1.0.0 (stored as ``cub(..)``)."""
        plaintext = self.make() if plaintext is None else plaintext
        sealed_patch, result = seal(plaintext)
        self.repo.put(bundle_key(self.repo.app, result.sha256), cub(sealed_patch))
        if upload_bundle:
            self.repo.upload(self.bundle)
        patch = Patch(
            base=self.v1.sha256,
            sha256=result.sha256,
            length=result.length,
            plaintext_sha256=result.plaintext_sha256,
            plaintext_length=result.plaintext_length,
            base_label="1.0.0",
            changed=3,
        )
        digest = index or hashlib.sha256(self.index_json).hexdigest()
        release = self.repo.release(
            self.bundle, label="2.0.0", delta=Delta(index=digest, patches=(patch,))
        )
        self.repo.serve_manifest(self.repo.manifest("beta", (release, self.v1)))
        return release

    def falls_back(self, error: str) -> FetchResult:
        """The check installs 2.0.0 from the full bundle after refusing the patch with ``error``."""
        result = self.device.check()
        assert result.status == "installed"
        assert result.delta is not None
        assert not result.delta.used
        assert result.delta.refused is not None
        assert result.delta.refused.startswith(f"{error}: "), result.delta.refused
        self.installed_new()
        assert bundle_key(self.repo.app, self.bundle.sha256) in self.device.fetcher.keys
        return result

    def installed_new(self) -> None:
        assert self.device.files() == NEW
        assert self.device.installed() is not None
        assert self.device.installed()["sha256"] == self.bundle.sha256
        leftovers = [p.name for p in self.device.home.iterdir() if p.name.startswith(".otaseal")]
        assert leftovers == []
        assert not self.device.out_dir.with_name("www.otaseal-old").exists()


def _world(repo: Repository, device: Device) -> DeltaWorld:
    return DeltaWorld(repo, device)


# --- the honest case ------------------------------------------------------------------------------
def test_honest_patch_is_used(repo: Repository, device: Device) -> None:
    world = _world(repo, device)
    world.publish()
    device.fetcher.reset()
    result = device.check()
    assert result.delta is not None
    assert result.delta.used, result.delta.refused
    assert result.delta.refused is None
    world.installed_new()
    assert bundle_key(repo.app, world.bundle.sha256) not in device.fetcher.keys
    assert result.downloaded == result.delta.bytes < world.bundle.seal.length
    assert world.kept.read_bytes() == world.index_json  # the next patch's dictionary


# --- named attacks --------------------------------------------------------------------------------
def test_patch_from_the_wrong_base(repo: Repository, device: Device) -> None:
    """A patch made from another release's files, listed as the patch from the installed one."""
    world = _world(repo, device)
    other = {**OLD, "assets/app-Ab12Cd34.js": b"// another base\n" + OLD["assets/app-Ab12Cd34.js"]}
    world.publish(world.make(base_files=other, base="e" * 64))
    world.falls_back("DeltaError")


def test_patch_from_other_base_files_claiming_this_base(repo: Repository, device: Device) -> None:
    """The ops say the installed base, but the payloads were made against other files.

    A dictionary that ends differently shifts every match into it (zstd offsets count back from
    the end of the dictionary), so the result differs from the index.
    """
    world = _world(repo, device)
    other = {**OLD, "assets/app-Ab12Cd34.js": OLD["assets/app-Ab12Cd34.js"] + b"// other end\n"}
    world.publish(world.make(base_files=other))
    world.falls_back("DeltaError")


def test_patch_whose_result_differs_from_the_index(repo: Repository, device: Device) -> None:
    world = _world(repo, device)
    honest = world.make()
    head = world.header(honest)
    payloads = world.payloads(honest)
    at = next(i for i, op in enumerate(head.ops) if op.op == "zstd" and op.source is None)
    forged = zstandard.ZstdCompressor().compress(b"added in 2.0.1\n")
    ops = list(head.ops)
    ops[at] = replace(ops[at], length=len(forged))
    payloads[at] = forged
    world.publish(world.rebuild(honest, ops, payloads))
    world.falls_back("DeltaError")


def test_reordered_ops_and_payloads(repo: Repository, device: Device) -> None:
    world = _world(repo, device)
    honest = world.make()
    head = world.header(honest)
    zstd = [i for i, op in enumerate(head.ops) if op.op == "zstd"]
    first, second = zstd[0], zstd[1]
    ops, payloads = list(head.ops), world.payloads(honest)
    ops[first], ops[second] = ops[second], ops[first]
    payloads[first], payloads[second] = payloads[second], payloads[first]
    world.publish(world.rebuild(honest, ops, payloads))
    world.falls_back("DeltaError")


def test_reordered_payloads_only(repo: Repository, device: Device) -> None:
    world = _world(repo, device)
    honest = world.make()
    head = world.header(honest)
    payloads = world.payloads(honest)
    zstd = [i for i, op in enumerate(head.ops) if op.op == "zstd"]
    payloads[zstd[0]], payloads[zstd[-1]] = payloads[zstd[-1]], payloads[zstd[0]]
    ops = list(head.ops)
    ops[zstd[0]] = replace(ops[zstd[0]], length=len(payloads[zstd[0]]))
    ops[zstd[-1]] = replace(ops[zstd[-1]], length=len(payloads[zstd[-1]]))
    world.publish(world.rebuild(honest, ops, payloads))
    world.falls_back("DeltaError")


def test_truncated_patch(repo: Repository, device: Device) -> None:
    """A shorter patch, sealed and signed as it is: its payloads no longer add up."""
    world = _world(repo, device)
    world.publish(world.make()[:-7])
    world.falls_back("DeltaError")


def test_truncated_patch_cub(repo: Repository, device: Device) -> None:
    world = _world(repo, device)
    world.publish(cub=lambda c: c[:-100])
    world.falls_back("LengthError")


def test_altered_patch_cub(repo: Repository, device: Device) -> None:
    world = _world(repo, device)
    world.publish(cub=lambda c: c[:-1] + bytes([c[-1] ^ 1]))
    result = world.falls_back("HashMismatchError")
    assert result.downloaded > world.bundle.seal.length


def test_patch_for_another_release_index_digest(repo: Repository, device: Device) -> None:
    """The patch is genuine, but the release signs another index digest."""
    world = _world(repo, device)
    world.publish(index="0" * 64)
    world.falls_back("DeltaError")


def test_patch_for_another_release_target(repo: Repository, device: Device) -> None:
    """Same files, but the patch names another target bundle."""
    world = _world(repo, device)
    honest = world.make()
    world.publish(
        world.rebuild(
            honest, list(world.header(honest).ops), world.payloads(honest), target="a" * 64
        )
    )
    world.falls_back("DeltaError")


def test_patch_for_another_release_index(repo: Repository, device: Device) -> None:
    """A patch to another build (its own index), attached to 2.0.0 whose digest it lacks."""
    world = _world(repo, device)
    other = DeltaWorld.__new__(DeltaWorld)
    other.repo, other.v1 = repo, world.v1
    other.bundle = repo.build({**NEW, "new.txt": b"a third build\n"}, label="2.0.1")
    other.index_json = other.bundle.packed.index.to_json()
    plaintext = fmt.make_patch(
        _write(repo.path / "x" / "base", OLD),
        _write(repo.path / "x" / "target", {**NEW, "new.txt": b"a third build\n"}),
        other.index_json,
        base_bundle=world.v1.sha256,
        target_bundle=world.bundle.sha256,
        base_index=world.base_index,
    ).plaintext
    world.publish(plaintext)
    world.falls_back("DeltaError")


def test_base_file_modified_on_the_device(repo: Repository, device: Device) -> None:
    world = _world(repo, device)
    world.publish()
    (device.out_dir / "assets/vendor-Qq11Ww22.js").write_bytes(b"/* patched by malware */\n")
    world.falls_back("DeltaError")


def test_base_dictionary_modified_on_the_device(repo: Repository, device: Device) -> None:
    world = _world(repo, device)
    world.publish()
    (device.out_dir / "assets/app-Ab12Cd34.js").write_bytes(b"// something else\n" * 100)
    world.falls_back("DeltaError")


def test_base_file_replaced_by_a_symlink(repo: Repository, device: Device, tmp_path: Path) -> None:
    world = _world(repo, device)
    world.publish()
    outside = tmp_path / "outside.js"
    outside.write_bytes(OLD["assets/vendor-Qq11Ww22.js"])  # same bytes: still refused
    target = device.out_dir / "assets/vendor-Qq11Ww22.js"
    target.unlink()
    target.symlink_to(outside)
    world.falls_back("DeltaError")
    assert outside.read_bytes() == OLD["assets/vendor-Qq11Ww22.js"]


def test_base_folder_replaced_by_a_symlink(
    repo: Repository, device: Device, tmp_path: Path
) -> None:
    world = _world(repo, device)
    world.publish()
    outside = tmp_path / "outside"
    shutil.copytree(device.out_dir / "assets", outside)
    shutil.rmtree(device.out_dir / "assets")
    (device.out_dir / "assets").symlink_to(outside)
    world.falls_back("DeltaError")


def test_base_file_missing_on_the_device(repo: Repository, device: Device) -> None:
    world = _world(repo, device)
    world.publish()
    (device.out_dir / "img/logo.png").unlink()
    world.falls_back("DeltaError")


def test_from_path_escaping_the_install_folder(repo: Repository, device: Device) -> None:
    world = _world(repo, device)
    (device.home / "secret.txt").write_bytes(NEW["new.txt"])  # what the attacker wants copied
    honest = world.make()
    head = world.header(honest)
    at = next(i for i, op in enumerate(head.ops) if op.op == "zstd" and op.source is None)
    ops, payloads = list(head.ops), world.payloads(honest)
    ops[at], payloads[at] = fmt.Op(ops[at].path, "copy", "../secret.txt"), b""
    world.publish(world.rebuild(honest, ops, payloads))
    result = world.falls_back("DeltaError")
    assert result.delta is not None
    assert "from" in (result.delta.refused or "")


def test_from_path_absolute(repo: Repository, device: Device) -> None:
    world = _world(repo, device)
    honest = world.make()
    head = world.header(honest)
    ops, payloads = list(head.ops), world.payloads(honest)
    ops[0] = replace(ops[0], source="/etc/passwd")
    world.publish(world.rebuild(honest, ops, payloads))
    world.falls_back("DeltaError")


def test_decompression_bomb(repo: Repository, device: Device) -> None:
    """A small frame that inflates far past the indexed size: stopped one buffer past it."""
    world = _world(repo, device)
    honest = world.make()
    head = world.header(honest)
    at = next(i for i, op in enumerate(head.ops) if op.op == "zstd" and op.source is None)
    bomb = zstandard.ZstdCompressor(level=3).compress(b"\0" * (64 << 20))
    assert len(bomb) < 10_000
    ops, payloads = list(head.ops), world.payloads(honest)
    ops[at], payloads[at] = replace(ops[at], length=len(bomb)), bomb
    world.publish(world.rebuild(honest, ops, payloads))
    world.falls_back("DeltaError")


def test_oversized_window(repo: Repository, device: Device) -> None:
    """A frame that asks for a window above 2^27 bytes is refused, not allocated."""
    world = _world(repo, device)
    honest = world.make()
    head = world.header(honest)
    at = next(i for i, op in enumerate(head.ops) if op.op == "zstd" and op.source is None)
    params = zstandard.ZstdCompressionParameters(window_log=30, enable_ldm=1)
    out = io.BytesIO()
    with zstandard.ZstdCompressor(compression_params=params).stream_writer(
        out, closefd=False
    ) as writer:  # no content size, so the frame keeps its 2^30 window
        writer.write(NEW["new.txt"])
    big = out.getvalue()
    ops, payloads = list(head.ops), world.payloads(honest)
    ops[at], payloads[at] = replace(ops[at], length=len(big)), big
    world.publish(world.rebuild(honest, ops, payloads))
    result = world.falls_back("DeltaError")
    assert "does not decompress" in (result.delta.refused if result.delta else "")


def test_patch_broken_and_full_bundle_missing(repo: Repository, device: Device) -> None:
    """No patch and no bundle: the check fails, the running build and state stay as they were."""
    world = _world(repo, device)
    world.publish(world.make()[:-7], upload_bundle=False)
    error = device.refuses(NotFoundError, bundle_allowed=True)
    assert "the patch from 1.0.0 was refused first: DeltaError" in error.diagnostics()
    assert device.files() == OLD
    assert device.installed()["sha256"] == world.v1.sha256


def test_a_patch_larger_than_the_bundle_is_not_downloaded(repo: Repository, device: Device) -> None:
    """A signed patch no smaller than the bundle: the device downloads only the bundle."""
    world = _world(repo, device)
    world.publish(world.make() + b"\0" * (world.bundle.seal.length + 1))
    device.fetcher.reset()
    result = device.check()
    assert result.status == "installed"
    assert result.delta is None
    assert result.downloaded == world.bundle.seal.length
    world.installed_new()


def test_stored_base_index_tampered(repo: Repository, device: Device) -> None:
    """The index the device kept of 1.0.0 was altered where the patch's head uses it.

    The head then decompresses to another index, whose digest is not the signed one.
    """
    world = _world(repo, device)
    world.publish()
    vendor = next(
        e.sha256 for e in world.bundle.packed.index.files if e.path == "assets/vendor-Qq11Ww22.js"
    )
    forged = ("0" if vendor[0] != "0" else "1") + vendor[1:]
    world.kept.write_bytes(world.base_index.replace(vendor.encode(), forged.encode()))
    result = world.falls_back("DeltaError")
    assert "carries an index whose SHA-256" in (result.delta.refused if result.delta else "")
    assert world.kept.read_bytes() == world.index_json  # the full install keeps the right one


def test_stored_base_index_missing(repo: Repository, device: Device) -> None:
    """No kept index (installed before the device kept them): the patch is not even downloaded."""
    world = _world(repo, device)
    release = world.publish()
    world.kept.unlink()
    device.fetcher.reset()
    result = world.falls_back("DeltaError")
    assert result.delta is not None
    assert "no index of the installed release" in (result.delta.refused or "")
    assert result.delta.bytes == 0
    assert release.delta is not None
    assert bundle_key(repo.app, release.delta.patches[0].sha256) not in device.fetcher.keys


def test_stored_base_index_replaced_by_a_symlink(
    repo: Repository, device: Device, tmp_path: Path
) -> None:
    """A kept index that is a symbolic link is not followed: as if there were none."""
    world = _world(repo, device)
    world.publish()
    outside = tmp_path / "index.json"
    outside.write_bytes(world.base_index)
    world.kept.unlink()
    world.kept.symlink_to(outside)
    result = world.falls_back("DeltaError")
    assert "no index of the installed release" in (result.delta.refused if result.delta else "")


def test_op_listing_a_file_twice(repo: Repository, device: Device) -> None:
    """Two ops for one path (the second would overwrite the first): refused before any write."""
    world = _world(repo, device)
    honest = world.make()
    head = world.header(honest)
    ops, payloads = list(head.ops), world.payloads(honest)
    ops.append(replace(ops[-1]))
    payloads.append(payloads[-1])
    world.publish(world.rebuild(honest, ops, payloads))
    result = world.falls_back("DeltaError")
    assert "twice" in (result.delta.refused if result.delta else "")


def test_builtin_revert_forgets_the_kept_index(repo: Repository, device: Device) -> None:
    """Back on the builtin build, no patch may start from the removed release's index."""
    world = _world(repo, device)
    repo.serve_manifest(repo.manifest("beta", (world.v1,), builtin=True))
    assert device.check().status == "builtin"
    assert not world.kept.exists()
