"""The device step timed inside the process: only ``check_for_update``, not the interpreter.

    python bench/device_inproc.py --project PROJECT --state FRESH/state --out FRESH/www

A device verifies updates in an app that is already running, so it never pays for a fresh
Python interpreter, its imports or argument parsing. This script does all of that first, loads
the project's root.json and decryption key (as an app would have them at hand), imports the
modules the client loads lazily when it installs (archive, sealed), and only then starts the
clock around one ``otaseal.client.check_for_update`` call: fetch and verify the metadata,
download and hash the ciphertext, decrypt, check the plaintext hash, extract, check every file
against the index, stage. It prints ``{"seconds": ..., "status": "installed"}`` and fails unless
the release was installed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

from otaseal.client import check_for_update
from otaseal.crypto import load_decryption_key
from otaseal.operations import now_utc
from otaseal.store.folder import FolderStore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--project", type=Path, required=True, help="an `otaseal init` project")
    parser.add_argument("--app", default="com.example.bench")
    parser.add_argument("--channel", default="beta")
    parser.add_argument("--state", type=Path, required=True, help="a fresh device state dir")
    parser.add_argument("--out", type=Path, required=True, help="a fresh output dir")
    parser.add_argument("--install-id", default="bench-device")
    args = parser.parse_args(argv)

    project: Path = args.project
    store = FolderStore(project / "store")
    initial_root = (project / "root.json").read_bytes()
    key_path = project / "keys" / "app-decryption.pem"
    key = load_decryption_key(key_path.read_bytes(), source=str(key_path))
    # The client imports these only when it installs; an app that checks for updates has them
    # loaded already, so their import is not part of one update check.
    for module in ("otaseal.archive", "otaseal.formats.sealed"):
        importlib.import_module(module)
    now = now_utc()

    start = time.perf_counter()
    result = check_for_update(
        store,
        app=args.app,
        channel=args.channel,
        state_dir=args.state,
        decryption_key=key,
        install_id=args.install_id,
        out_dir=args.out,
        now=now,
        initial_root=initial_root,
    )
    seconds = time.perf_counter() - start

    if result.status != "installed":
        print(f"check_for_update returned {result.status!r}: {result.detail}", file=sys.stderr)
        return 1
    print(json.dumps({"seconds": seconds, "status": result.status}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
