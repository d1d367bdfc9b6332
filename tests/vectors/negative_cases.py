"""Negative vectors: hostile stores and the error the reference client reports for each.

Each case is a whole device check: the root the app ships (or the device's state), the files a
store serves at each key, the reference time, the install id and the native build. Its expected
verdict (error class and exit code) is not written by hand: ``generate`` runs ``otaseal fetch`` on
the case and records what it reports, so regenerating after a reader rule changes updates every
case. ``tests/vectors/test_vectors.py`` runs each case again and compares.

The cases cover the attack classes of ``tests/attacks/`` end to end: signatures and thresholds,
rollback and freeze, wrong target, size caps, malformed fields, root rotation, the bundle's hash
and length, the ``.cub`` reader (manifests that sign a hostile ``.cub``) and the zip extractor
(a hostile zip inside a valid ``.cub``).
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import negative_bundle
import negative_metadata
from negative_world import EXIT, FOLDER, Case, Context, World

from otaseal import cli
from otaseal.client import DeviceState
from otaseal.model import format_time

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

__all__ = ["FOLDER", "Context", "generate", "run_case"]


def cases(world: World) -> Iterator[Case]:
    """Every negative case, metadata first."""
    yield from negative_metadata.cases(world)
    yield from negative_bundle.cases(world)


def _dump(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"


# --- files and the reference run ------------------------------------------------------------------
def _case_doc(case: Case, name_of: Callable[[bytes, str], str], ctx: Context) -> dict[str, Any]:
    state = None
    if case.state is not None:
        state = {**case.state}
        if isinstance(state["root"], bytes):  # a root made for this case, not a vector file
            state["root"] = name_of(state["root"], "state-root.json")
    return {
        "name": case.name,
        "attack": case.attack,
        "spec": case.spec,
        "family": case.family,
        "inputs": {
            "app": ctx.app,
            "channel": case.channel,
            "trusted_root": None
            if case.trusted_root is None
            else name_of(case.trusted_root, "trusted-root.json"),
            "state": state,
            "store": {key: name_of(data, f"store/{key}") for key, data in case.store.items()},
            "now": format_time(case.now),
            "install_id": case.install_id,
            "native": case.native,
            "decryption_key": "decryption-key.pem",
        },
    }


def snapshot(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def run_case(doc: Mapping[str, Any], read: Callable[[str], bytes]) -> dict[str, Any]:
    """Run ``otaseal fetch`` on one case; return its verdict and whether it wrote anything."""
    inputs = doc["inputs"]
    with tempfile.TemporaryDirectory(prefix="otaseal-negative-") as tmp:
        work = Path(tmp)
        store = work / "store"
        for key, name in inputs["store"].items():
            target = store.joinpath(*key.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(read(name))
        (work / "key.pem").write_bytes(read(inputs["decryption_key"]))
        argv = [
            "fetch",
            "--json",
            "--store",
            str(store),
            "--app",
            inputs["app"],
            "--channel",
            inputs["channel"],
            "--decryption-key",
            str(work / "key.pem"),
            "--state",
            str(work / "state"),
            "--install-id",
            inputs["install_id"],
            "--out",
            str(work / "www"),
            "--now",
            inputs["now"],
        ]
        if inputs["trusted_root"] is not None:
            (work / "root.json").write_bytes(read(inputs["trusted_root"]))
            argv += ["--root", str(work / "root.json")]
        if inputs["native"] is not None:
            argv += ["--native", str(inputs["native"])]
        if inputs["state"] is not None:
            s = inputs["state"]
            DeviceState(read(s["root"]), dict(s["versions"]), dict(s["installed"])).save(
                work / "state"
            )
        before = snapshot(work / "state")
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(argv)
        lines = out.getvalue().strip().splitlines()
        reply = json.loads(lines[-1]) if lines else {}
        return {
            "exit_code": code,
            "error": reply.get("error", {}).get("type"),
            "state_unchanged": snapshot(work / "state") == before,
            "out_written": (work / "www").exists(),
        }


def generate(ctx: Context) -> dict[str, bytes]:
    """Every negative case as files under ``negative/``, each with the verdict of a real run."""
    world = World(ctx)
    common = {
        f"{FOLDER}/common/bundle.cub": world.cub,
        f"{FOLDER}/common/bundle.zip.bin": world.zip,
        f"{FOLDER}/common/beta.manifest.json": world.signed(),
    }
    shared = {data: name for name, data in ctx.vectors.items() if name.endswith((".json", ".cub"))}
    shared |= {data: name for name, data in common.items()}
    files: dict[str, bytes] = dict(common)

    # The honest store every case departs from: an SDK should install it before the attacks.
    baseline = Case(
        "baseline",
        "none: the honest store",
        "§10",
        "none",
        world.store(),
        world.root_bytes,
        ctx.now,
    )
    doc = _case_doc(baseline, lambda data, _: shared.get(data, ""), ctx)
    verdict = run_case(doc, {**ctx.vectors, **files}.__getitem__)
    if verdict["exit_code"] != 0 or not verdict["out_written"]:
        msg = f"the negative cases' honest store does not install: {verdict}"
        raise SystemExit(msg)
    doc["expected"] = {"exit_code": 0, "status": "installed"}
    files[f"{FOLDER}/common/baseline.json"] = _dump(doc)

    for case in cases(world):
        folder = f"{FOLDER}/{case.name}"

        def name_of(data: bytes, local: str, folder: str = folder) -> str:
            if data in shared:
                return shared[data]
            files[f"{folder}/{local}"] = data
            return f"{folder}/{local}"

        doc = _case_doc(case, name_of, ctx)
        known = {**ctx.vectors, **files}
        verdict = run_case(doc, known.__getitem__)
        if verdict["exit_code"] != EXIT[case.family] or verdict["error"] is None:
            # A case that passes, or fails for a reason of another family, was built wrong (or
            # a reader rule broke): never record it as the expected behaviour.
            msg = (
                f"negative case {case.name}: the reference client exited {verdict['exit_code']} "
                f"({verdict['error']}), expected a {case.family} error (exit {EXIT[case.family]}). "
                "If a reader rule changed on purpose, fix the case in tests/vectors/negative_*.py"
            )
            raise SystemExit(msg)
        doc["expected"] = {"error": verdict["error"], "exit_code": verdict["exit_code"]}
        files[f"{folder}/case.json"] = _dump(doc)
    return files
