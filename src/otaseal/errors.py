"""One error base for every failure a person has to act on.

Each error carries three parts: what was observed, what was expected, and what to do. The CLI and
the Action turn an :class:`Error` into a message and an exit code in exactly one place. No error
text ever contains key material: callers pass names and digests, never values.
"""

from __future__ import annotations


class Error(Exception):
    """Base of all otaseal errors; ``diagnostics()`` is the text shown to a person."""

    exit_code = 1

    def __init__(self, what: str, *, expected: str = "", fix: str = "") -> None:
        super().__init__(what)
        self.what = what
        self.expected = expected
        self.fix = fix

    def __str__(self) -> str:
        return self.diagnostics()

    def diagnostics(self) -> str:
        """Return one paragraph: observed, expected, what to do."""
        parts = [self.what.rstrip(".") + "."]
        if self.expected:
            parts.append("Expected " + self.expected.rstrip(".") + ".")
        if self.fix:
            parts.append(self.fix[0].upper() + self.fix[1:].rstrip(".") + ".")
        return " ".join(parts)


# --- configuration and user input -------------------------------------------------------------
class InputError(Error):
    """A command-line argument, action input or build directory is wrong."""

    exit_code = 2


class ConfigError(InputError):
    """``otaseal.yml`` is missing, malformed or inconsistent."""


class KeyMaterialError(InputError):
    """A key cannot be read, has the wrong type, or is not the one the role expects."""


class HygieneError(InputError):
    """The build directory contains something that must not ship (symlink, private key, ...)."""


# --- metadata (root and channel manifests) ----------------------------------------------------
class MetadataError(Error):
    """Signed metadata was rejected; trusted state is unchanged."""

    exit_code = 3


class UnsignedMetadataError(MetadataError):
    """Not enough valid signatures from the keys the trusted root names for the role."""


class RollbackError(MetadataError):
    """Metadata older than what the device already trusts (the rollback attack)."""


class ExpiredMetadataError(MetadataError):
    """Metadata whose ``expires`` is at or before the reference time."""


class WrongTargetError(MetadataError):
    """Metadata for another app or channel, or an unknown spec major version."""


class OversizeMetadataError(MetadataError):
    """Metadata larger than the size cap."""


class MalformedMetadataError(MetadataError):
    """Signed metadata that does not parse as the expected structure."""


class NoCompatibleReleaseError(MetadataError):
    """No release on the channel fits this device (native range, floor, rollout)."""


# --- bundles -----------------------------------------------------------------------------------
class BundleError(Error):
    """A bundle failed verification; nothing was installed."""

    exit_code = 4


class LengthError(BundleError):
    """More (or fewer) bytes than the signed length."""


class HashMismatchError(BundleError):
    """A digest differs from the signed one."""


class DecryptionError(BundleError):
    """The ciphertext does not authenticate or no recipient entry is ours."""


class ArchiveError(BundleError):
    """The decrypted zip is unsafe or does not match its index."""


class DeltaError(BundleError):
    """A sealed patch is malformed, is for another release or base, or does not apply (§19)."""


# --- storage, GitHub ---------------------------------------------------------------------------
class StoreError(Error):
    """The store cannot be read or written."""

    exit_code = 5


class ConflictError(StoreError):
    """A conditional write lost a race; the caller re-reads and retries."""


class NotFoundError(StoreError):
    """An object the caller asked for does not exist in the store."""


class GitHubError(Error):
    """A GitHub API call failed after retries."""

    exit_code = 6
