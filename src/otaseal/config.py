"""``otaseal.yml``: which app, which store, which channels, and where each key comes from.

Key references are resolved by :mod:`otaseal.secrets`; here they are only validated and made
absolute (``file:`` paths are relative to the config file).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from otaseal.errors import ConfigError, InputError
from otaseal.model import check_app_id, check_name
from otaseal.plans import RolloutPlan, parse_rollout_plans

CONFIG_NAME = "otaseal.yml"
_FIELDS = {
    "app",
    "store",
    "root",
    "channels",
    "keys",
    "recipients",
    "manifest_expiry_days",
    "s3_endpoint",
    "s3_lock_mode",
    "report_recipient",
    "formats",
    "self_assignable",
    "allow",
    "rollout_plans",
    "native_packages",
}
FORMATS = ("sealed", "capgo")


@dataclass(frozen=True, slots=True)
class Config:
    """A validated project configuration."""

    path: Path
    app: str
    store: str
    root: Path
    channels: tuple[str, ...]
    keys: dict[str, str]
    recipients: tuple[str, ...]
    manifest_expiry_days: int = 30
    s3_endpoint: str | None = None
    s3_lock_mode: bool = False
    report_recipient: str | None = None
    formats: tuple[str, ...] = ("sealed",)
    self_assignable: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    """Path patterns (fnmatch) of files publish ships although they look like secrets."""
    native_packages: tuple[str, ...] | None = None
    """Package-name patterns of the native plugins (``!`` excludes); None: the built-in list."""
    rollout_plans: dict[str, RolloutPlan] = field(default_factory=dict)
    """Per channel: the staged rollout ``otaseal guard`` drives."""

    def key_ref(self, role: str) -> str:
        """The key reference for ``root`` or a channel."""
        ref = self.keys.get(role)
        if ref is None:
            raise ConfigError(
                f"{self.path} names no key for {role!r}",
                expected=f"keys.{role} set to file:PATH, env:NAME or another key reference",
                fix=f"add `{role}: file:keys/{role}.pem` under `keys:`",
            )
        return ref

    def check_channel(self, channel: str) -> str:
        """Validate a channel name and that the project has it."""
        check_name(channel, "channel name")
        if channel not in self.channels:
            raise InputError(
                f"channel {channel!r} is not in {self.path.name}",
                expected="one of " + ", ".join(self.channels),
                fix="pick a configured channel, or add it to `channels:` and to root.json",
            )
        return channel


def find_config(explicit: str | None, cwd: Path | None = None) -> Path:
    """``--config PATH``, or otaseal.yml in the current directory."""
    path = Path(explicit) if explicit else (cwd or Path.cwd()) / CONFIG_NAME
    if path.is_dir():
        path /= CONFIG_NAME
    if not path.is_file():
        raise ConfigError(
            f"no otaseal project at {path}",
            expected=f"an {CONFIG_NAME} in the current directory or passed with --config",
            fix="run `otaseal init --app APP_ID` first, or pass --config PATH",
        )
    return path


def _absolute_ref(ref: str, base: Path) -> str:
    if ref.startswith("file:"):
        path = Path(ref.removeprefix("file:")).expanduser()
        return "file:" + str(path if path.is_absolute() else base / path)
    return ref


def _bad(path: Path, what: str, expected: str) -> ConfigError:
    return ConfigError(
        f"{path}: {what}", expected=expected, fix=f"edit {path.name} (see README, 'Configuration')"
    )


def _names(path: Path, app: str, channels: object) -> tuple[str, tuple[str, ...]]:
    try:
        check_app_id(app)
        if not isinstance(channels, list) or not channels:
            raise _bad(path, "`channels` is missing or empty", "channels: [beta, production]")
        return app, tuple(check_name(str(c), "channel name") for c in channels)
    except ConfigError:
        raise
    except InputError as exc:
        raise ConfigError(f"{path}: {exc.what}", expected=exc.expected, fix=exc.fix) from None


def _keys(path: Path, keys: object, recipients: object) -> tuple[dict[str, str], list[str]]:
    if not isinstance(keys, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in keys.items()
    ):
        raise _bad(
            path,
            "`keys` is missing or not a mapping of role to reference",
            "keys: {root: file:keys/root.pem, beta: env:OTASEAL_BETA_KEY}",
        )
    if (
        not isinstance(recipients, list)
        or not recipients
        or not all(isinstance(r, str) for r in recipients)
    ):
        raise _bad(
            path,
            "`recipients` is missing or empty",
            "recipients: [file:keys/app-decryption.pub.pem]",
        )
    return keys, recipients


def _optional(path: Path, doc: dict[str, Any], name: str, example: str) -> str | None:
    value = doc.get(name)
    if value is not None and not isinstance(value, str):
        raise _bad(path, f"`{name}` is not a string", f"{name}: {example}")
    return value


def load_config(path: Path) -> Config:
    """Read and validate a config file; every problem names the field and the fix."""
    try:
        doc: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path} ({exc.strerror})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise _bad(path, f"not valid YAML{where}", "a YAML mapping") from None
    if not isinstance(doc, dict):
        raise _bad(path, "the file is not a mapping", "keys app, store, channels, keys")
    unknown = sorted(set(doc) - _FIELDS)
    if unknown:
        raise _bad(
            path,
            f"unknown field(s) {', '.join(map(str, unknown))}",
            "only " + ", ".join(sorted(_FIELDS)),
        )
    base = path.parent.resolve()

    def text(name: str, default: str | None = None) -> str:
        value = doc.get(name, default)
        if not isinstance(value, str) or not value:
            raise _bad(path, f"`{name}` is missing or not a string", f"{name}: <text>")
        return value

    app, channels = _names(path, text("app"), doc.get("channels"))
    keys, recipients = _keys(path, doc.get("keys"), doc.get("recipients"))
    days = doc.get("manifest_expiry_days", 30)
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 366:  # noqa: PLR2004
        raise _bad(path, "`manifest_expiry_days` is out of range", "an integer from 1 to 366")
    store = text("store", "store")
    if "://" not in store:
        store = str(base / Path(store).expanduser())
    endpoint = _optional(path, doc, "s3_endpoint", "http://127.0.0.1:9000")
    report = _optional(path, doc, "report_recipient", "file:keys/report.pub.pem")
    lock_mode = doc.get("s3_lock_mode", False)
    if not isinstance(lock_mode, bool):
        raise _bad(path, "`s3_lock_mode` is not true or false", "s3_lock_mode: true")
    formats, assignable = _serving(path, doc, channels)
    allow = _string_list(path, doc, "allow", [], "['assets/demo-*.pem']")
    plans = parse_rollout_plans(path, doc.get("rollout_plans"), channels)
    return Config(
        path=path,
        app=app,
        store=store,
        root=base / text("root", "root.json"),
        channels=channels,
        keys={k: _absolute_ref(v, base) for k, v in keys.items()},
        recipients=tuple(_absolute_ref(r, base) for r in recipients),
        manifest_expiry_days=days,
        s3_endpoint=endpoint,
        s3_lock_mode=lock_mode,
        report_recipient=_absolute_ref(report, base) if report else None,
        formats=tuple(formats),
        self_assignable=tuple(assignable),
        allow=tuple(allow),
        native_packages=_native_packages(path, doc),
        rollout_plans=plans,
    )


def _serving(
    path: Path, doc: dict[str, Any], channels: tuple[str, ...]
) -> tuple[list[str], list[str]]:
    """``formats`` (sealed always, capgo optional) and the ``self_assignable`` channels."""
    formats = _string_list(path, doc, "formats", ["sealed"], "[sealed, capgo]")
    if "sealed" not in formats or not set(formats) <= set(FORMATS):
        raise _bad(path, f"`formats` is {formats}", "[sealed] or [sealed, capgo]")
    assignable = _string_list(path, doc, "self_assignable", [], "[beta]")
    if not set(assignable) <= set(channels):
        raise _bad(
            path,
            f"`self_assignable` names {', '.join(sorted(set(assignable) - set(channels)))}, "
            "which is not in `channels`",
            "a subset of `channels`, e.g. self_assignable: [beta]",
        )
    return formats, assignable


def _native_packages(path: Path, doc: dict[str, Any]) -> tuple[str, ...] | None:
    """``native_packages``: replaces publish's built-in list of native plugin name patterns."""
    if doc.get("native_packages") is None:
        return None
    example = "['@capacitor/*', '!@capacitor/cli', 'my-native-plugin']"
    return tuple(_string_list(path, doc, "native_packages", [], example))


def _string_list(
    path: Path, doc: dict[str, Any], name: str, default: list[str], example: str
) -> list[str]:
    value = doc.get(name, default)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(path, f"`{name}` is not a list of names", f"{name}: {example}")
    return value
