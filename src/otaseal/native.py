"""The native layer a web build was made for: a fingerprint of its native plugins and config.

A live update replaces only the web layer; the plugins and ``capacitor.config`` it talks to ship
in the store app. ``publish`` records this fingerprint in each release and refuses a build whose
native layer changed without a new native compatibility range (see ``gates``). The core is pure
(``native_layer`` over the parsed ``package.json`` and the config's bytes); ``read_native_layer``
is the thin I/O around it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from otaseal.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

#: Which ``package.json`` dependencies are native plugins: shell patterns on the package name;
#: ``!pattern`` excludes (build tools). ``native_packages:`` in otaseal.yml replaces the list.
DEFAULT_NATIVE_PACKAGES: tuple[str, ...] = (
    "@capacitor/*",
    "!@capacitor/cli",
    "!@capacitor/assets",
    "!@capacitor/docgen",
    "@capacitor-*/*",
    "@capawesome/*",
    "@capawesome-team/*",
    "@ionic-enterprise/*",
    "@capgo/*",
    "!@capgo/cli",
    "capacitor-*",
    "@*/capacitor-*",
    "@*/capacitor",
    "*-capacitor",
    "cordova-plugin-*",
    "@*/cordova-plugin-*",
)
#: Where ``npx cap sync`` finds plugins (Capacitor's CLI reads both sections).
DEPENDENCY_SECTIONS = ("dependencies", "devDependencies")
#: Looked for in this order, as Capacitor's CLI does; only the first found counts.
CONFIG_FILES = ("capacitor.config.ts", "capacitor.config.js", "capacitor.config.json")
#: Members of capacitor.config.json that only the CLI reads: not part of the native layer.
CLI_ONLY_CONFIG = frozenset({"webDir", "bundledWebRuntime"})
FINGERPRINT_VERSION = 1


@dataclass(frozen=True, slots=True)
class NativeLayer:
    """The native plugins (name → version spec) and the native config's digest."""

    packages: Mapping[str, str]
    config_file: str | None
    config_sha256: str | None

    @property
    def fingerprint(self) -> str:
        """SHA-256 hex of the canonical document; what a release records."""
        return fingerprint(self.packages, self.config_file, self.config_sha256)


def fingerprint(
    packages: Mapping[str, str], config_file: str | None, config_sha256: str | None
) -> str:
    """SHA-256 of ``{"config", "packages", "v"}`` as sorted compact JSON (SPEC §7.2)."""
    config = None if config_file is None else {"file": config_file, "sha256": config_sha256}
    doc = {"config": config, "packages": dict(packages), "v": FINGERPRINT_VERSION}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def is_native_package(name: str, patterns: Sequence[str] = DEFAULT_NATIVE_PACKAGES) -> bool:
    """Whether ``name`` matches an include pattern and no ``!`` exclude pattern."""
    excluded = any(fnmatchcase(name, p[1:]) for p in patterns if p.startswith("!"))
    return not excluded and any(fnmatchcase(name, p) for p in patterns if not p.startswith("!"))


def native_packages(
    package_json: Mapping[str, object], patterns: Sequence[str] = DEFAULT_NATIVE_PACKAGES
) -> dict[str, str]:
    """The native plugins ``package.json`` depends on, with their declared versions."""
    found: dict[str, str] = {}
    for section in DEPENDENCY_SECTIONS:
        deps = package_json.get(section)
        if not isinstance(deps, dict):
            continue
        for name, spec in deps.items():
            if isinstance(name, str) and is_native_package(name, patterns):
                found[name] = spec if isinstance(spec, str) else json.dumps(spec, sort_keys=True)
    return dict(sorted(found.items()))


def config_digest(name: str, data: bytes) -> str:
    """SHA-256 of the native part of a Capacitor config.

    JSON: every member but the CLI-only ones, as sorted compact JSON, so formatting does not
    count. ``.ts`` / ``.js`` (or JSON that does not parse): the file's bytes, since only running
    it would tell what it sets.
    """
    if name.endswith(".json"):
        doc = _json(data)
        if isinstance(doc, dict):
            native = {k: v for k, v in doc.items() if k not in CLI_ONLY_CONFIG}
            text = json.dumps(native, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            return hashlib.sha256(text.encode()).hexdigest()
    return hashlib.sha256(data).hexdigest()


def native_layer(
    package_json: Mapping[str, object],
    config: tuple[str, bytes] | None,
    patterns: Sequence[str] = DEFAULT_NATIVE_PACKAGES,
) -> NativeLayer:
    """The layer from a parsed ``package.json`` and the config file's (name, bytes), if any."""
    if config is None:
        return NativeLayer(native_packages(package_json, patterns), None, None)
    name, data = config
    return NativeLayer(native_packages(package_json, patterns), name, config_digest(name, data))


@dataclass(frozen=True, slots=True)
class NativeChange:
    """What differs between a release's recorded layer and this build's."""

    added: Mapping[str, str]
    removed: Mapping[str, str]
    changed: Mapping[str, tuple[str, str]]
    config_changed: bool

    def describe(self, config_file: str | None) -> str:
        """One clause per difference, for the refusal's paragraph."""
        parts = [f"added {n} {v}" for n, v in self.added.items()]
        parts += [f"removed {n} {v}" for n, v in self.removed.items()]
        parts += [f"{n} {old} → {new}" for n, (old, new) in self.changed.items()]
        if self.config_changed:
            parts.append(f"{config_file or 'the Capacitor config'} changed")
        return "; ".join(parts) or "the native layer changed"


def compare(
    recorded_fingerprint: str, recorded_packages: Mapping[str, str], now: NativeLayer
) -> NativeChange | None:
    """None when ``now`` is the recorded layer, else what changed.

    A release records its packages but not its config digest: the config changed when this
    build's config with the recorded packages does not give the recorded fingerprint.
    """
    if now.fingerprint == recorded_fingerprint:
        return None
    old, new = recorded_packages, now.packages
    same_config = fingerprint(old, now.config_file, now.config_sha256) == recorded_fingerprint
    return NativeChange(
        added={n: v for n, v in new.items() if n not in old},
        removed={n: v for n, v in old.items() if n not in new},
        changed={n: (old[n], v) for n, v in new.items() if n in old and old[n] != v},
        config_changed=not same_config,
    )


def _json(data: bytes) -> object:
    """Parsed JSON (a UTF-8 byte-order mark allowed, as npm allows it), or None."""
    try:
        return json.loads(data.decode("utf-8-sig"))
    except ValueError:
        return None


# --- reading a project ------------------------------------------------------------------------
def project_dir_for(build_dir: Path, explicit: Path | None, cwd: Path) -> Path:
    """``--project-dir``, else the build's parent when it has package.json, else ``cwd``."""
    if explicit is not None:
        return explicit
    parent = build_dir.resolve().parent
    return parent if (parent / "package.json").is_file() else cwd


def read_native_layer(
    project_dir: Path, patterns: Sequence[str] = DEFAULT_NATIVE_PACKAGES
) -> NativeLayer | None:
    """The layer of the Capacitor project in ``project_dir``; None without a package.json."""
    path = project_dir / "package.json"
    if not path.is_file():
        return None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"cannot read {path} ({exc.strerror})",
            fix="check the file's permissions, or pass `--project-dir` to the app's folder",
        ) from None
    doc = _json(data)
    if doc is None:
        raise InputError(
            f"{path} is not valid JSON",
            expected="the app's package.json, valid JSON, to fingerprint its native plugins",
            fix="fix package.json (npm would refuse it too), or pass `--project-dir` to the "
            "folder that holds the app's package.json",
        )
    if not isinstance(doc, dict):
        raise InputError(
            f"{path} is not a JSON object",
            expected="the app's package.json",
            fix="pass `--project-dir` to the folder that holds the app's package.json",
        )
    config = None
    for name in CONFIG_FILES:
        candidate = project_dir / name
        if candidate.is_file():
            config = (name, candidate.read_bytes())
            break
    return native_layer(doc, config, patterns)
