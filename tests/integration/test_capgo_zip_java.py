"""Our deterministic zip, unzipped the way the plugin does on Android (java.util.zip).

``@capgo/capacitor-updater`` 8.51.23 (``CapgoUpdater.java``: ``unzip``, ``flattenAssets``) reads
the decrypted zip with ``ZipInputStream`` (local headers only, so a STORED entry with a data
descriptor would break it), checks each name, creates parent folders itself, and then keeps the
extracted folder as the bundle unless it holds a single non-``index.html`` entry (names starting
with ``.`` or ``__MACOSX`` not counted). The Java program below does those steps; the test checks
that every file of the build comes back byte for byte and that ``index.html`` is at the root.
iOS (ZIPFoundation) reads the central directory; our entries carry the same sizes in both
places (docs/SPEC.md), no directory entries, and regular-file modes, which it accepts.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from otaseal.archive import INDEX_PATH, pack

pytestmark = pytest.mark.skipif(
    shutil.which("java") is None, reason="java is not installed (Debian: default-jdk-headless)"
)

UNZIP_JAVA = r"""
import java.io.*;
import java.util.zip.*;

public class Unzip {
    public static void main(String[] args) throws Exception {
        File work = new File(args[1]);
        File target = new File(work, "unzipped");
        File base = target.getCanonicalFile();
        try (ZipInputStream zis = new ZipInputStream(
                new BufferedInputStream(new FileInputStream(args[0])))) {
            ZipEntry entry;
            byte[] buffer = new byte[8192];
            int count;
            while ((entry = zis.getNextEntry()) != null) {
                String name = entry.getName();
                if (name.isEmpty() || name.contains("\\") || name.indexOf('\0') >= 0) {
                    throw new IOException("windows or empty path: " + name);
                }
                for (String segment : name.split("/")) {
                    if ("..".equals(segment)) throw new IOException("traversal: " + name);
                }
                if (new File(name).isAbsolute()) throw new IOException("absolute: " + name);
                File file = new File(base, name).getCanonicalFile();
                if (!file.getPath().startsWith(base.getPath() + File.separator)) {
                    throw new IOException("escapes: " + name);
                }
                File dir = entry.isDirectory() ? file : file.getParentFile();
                if (!dir.isDirectory() && !dir.mkdirs()) throw new IOException("mkdirs: " + dir);
                if (entry.isDirectory()) {
                    System.out.println("DIRECTORY " + name);
                    continue;
                }
                try (FileOutputStream out = new FileOutputStream(file)) {
                    while ((count = zis.read(buffer)) != -1) out.write(buffer, 0, count);
                }
                String method = entry.getMethod() == ZipEntry.STORED ? "STORED" : "DEFLATED";
                System.out.println(method + " " + name);
            }
        }
        File bundle = new File(work, "bundle");
        String[] entries = target.list((folder, name) ->
            !name.startsWith("__MACOSX") && !name.startsWith(".") && !name.startsWith(".DS_Store"));
        if (entries == null || entries.length == 0) throw new IOException("empty bundle");
        File source = entries.length == 1 && !"index.html".equals(entries[0])
            ? new File(target, entries[0]) : target;
        if (!source.renameTo(bundle)) throw new IOException("cannot move " + source);
        System.out.println("FLATTENED " + (source != target));
    }
}
"""

BUILD: dict[str, bytes] = {
    "index.html": b"<!doctype html><script src='assets/app.js'></script>\n",
    "assets/app.js": b"window.notifyAppReady && notifyAppReady();\n" * 50,
    "assets/empty.css": b"",
    # incompressible: stored, not deflated (and one above the 1 MiB piece size)
    "assets/photo.webp": hashlib.shake_256(b"photo").digest(40_000),
    "media/clip.mp4": hashlib.shake_256(b"clip").digest(1_500_000),
    # compressible and large: deflated in several pieces on several threads
    "assets/vendor.js": b"".join(b"var v%d = %d;\n" % (i, i * i) for i in range(200_000)),
    "Über/naïve.txt": b"non-ASCII names are UTF-8\n",
    "a/b/c/d/deep.json": b"{}",
}


def test_android_zipinputstream_unzips_our_zip_as_the_plugin_does(tmp_path: Path) -> None:
    build = tmp_path / "build"
    for name, data in BUILD.items():
        target = build.joinpath(*name.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    out = io.BytesIO()
    pack(build, out, workers=2)
    zip_path = tmp_path / "bundle.zip"
    zip_path.write_bytes(out.getvalue())

    infos = zipfile.ZipFile(zip_path).infolist()
    assert not [i.filename for i in infos if i.flag_bits & 0x08]  # no data descriptors
    assert not [i.filename for i in infos if i.is_dir()]  # no directory entries
    stored = {i.filename for i in infos if i.compress_type == zipfile.ZIP_STORED}
    assert {"assets/photo.webp", "media/clip.mp4"} <= stored

    source = tmp_path / "Unzip.java"
    source.write_text(UNZIP_JAVA)
    work = tmp_path / "device"
    work.mkdir()
    done = subprocess.run(
        ["java", str(source), str(zip_path), str(work)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "FLATTENED false" in lines
    assert "STORED media/clip.mp4" in lines
    assert not [line for line in lines if line.startswith("DIRECTORY")]

    bundle = work / "bundle"
    assert (bundle / "index.html").is_file()
    got = {str(p.relative_to(bundle)): p.read_bytes() for p in bundle.rglob("*") if p.is_file()}
    assert got.pop(INDEX_PATH) == zipfile.ZipFile(zip_path).read(INDEX_PATH)
    assert got == BUILD
