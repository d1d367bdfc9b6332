"""Where keys come from: inline values, env, files, AWS Secrets Manager, Vault KV, remote signers.

A key reference is a PEM value (or its base64), ``env:NAME``, ``file:PATH``,
``aws-sm://secret-id[#field]``, ``vault://mount/path[#field]``, or a remote signer whose private
key never enters this process: ``kms://key-id-or-arn`` and ``vault-transit://[mount/]key``.

Every secret value, and every form derived from it, goes to the masker before anything else
happens with it, so no log line can show it. Nothing secret is written to disk, and no error
text contains a value: errors name the reference (see :func:`describe_ref`) and say why.
boto3, hvac and requests are imported only when a reference needs them (CLI start-up time).

``env`` serves ``env:`` references and the Vault settings (VAULT_ADDR, VAULT_TOKEN, VAULT_ROLE,
the runner's ACTIONS_ID_TOKEN_REQUEST_*). AWS settings (credentials, region, AWS_ENDPOINT_URL)
come from boto3's own chain over the process environment, as every AWS tool reads them.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar
from urllib.parse import quote

from otaseal import crypto, extras
from otaseal.errors import KeyMaterialError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from otaseal.dsse import Signer

T = TypeVar("T")

FORMS: Final = (
    "a PEM value or its base64, env:NAME, file:PATH, aws-sm://secret-id[#json-field], "
    "vault://mount/path[#field], and for signing keys only kms://key-id-or-arn or "
    "vault-transit://[mount/]key"
)
KMS_MAX_MESSAGE: Final = 4096
"""AWS KMS signs at most 4096 bytes with ``MessageType=RAW``; DSSE PAEs of manifests fit."""
DEFAULT_AUDIENCE: Final = "otaseal"
"""Audience of the GitHub OIDC token for Vault's jwt login unless ``VAULT_AUDIENCE`` is set."""

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]{0,31}):(.*)", re.DOTALL)
_URL_SCHEMES = frozenset({"aws-sm", "vault", "kms", "vault-transit"})
_B64 = re.compile(rb"[A-Za-z0-9+/]+={0,2}")
_AWS_DENIED = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "InvalidClientTokenId",
    }
)
_REMOTE = "the remote signer"


class Masker(Protocol):
    """Hides a value in logs: the Action passes ``runner.add_mask``, the CLI a no-op."""

    def __call__(self, value: str) -> None:
        """Register ``value`` (possibly multi-line) as secret."""
        ...


# --- references --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Ref:
    """A parsed reference: ``scheme`` is ``inline`` for values; ``target`` is never secret."""

    scheme: str
    target: str = ""
    fragment: str | None = None


def _parse(ref: str) -> _Ref:
    text = ref.strip()
    match = None if text.startswith("-----BEGIN") else _SCHEME.fullmatch(text)
    if match is None:  # base64 and PEM bodies never contain ':' in a scheme position
        return _Ref("inline")
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme == "env":
        return _Ref(scheme, rest)
    if scheme == "file":
        return _Ref(scheme, rest.removeprefix("//"))
    if scheme not in _URL_SCHEMES:
        return _Ref("unknown", scheme)
    if not rest.startswith("//"):
        return _Ref("malformed", scheme)
    target, hashmark, fragment = rest[2:].partition("#")
    return _Ref(scheme, target, fragment if hashmark else None)


def describe_ref(ref: str) -> str:
    """Text that is safe to show for ``ref``: the reference itself, or a placeholder for a value."""
    parsed = _parse(ref)
    if parsed.scheme == "inline":
        if ref.strip().startswith("-----BEGIN"):
            return "an inline PEM value (not shown)"
        return "an inline value (not shown)"
    if parsed.scheme == "unknown":
        return f"a reference with the unknown scheme '{parsed.target}:'"
    if parsed.scheme == "malformed":
        return f"a malformed {parsed.target}: reference"
    text = ref.strip()
    if not text.isprintable() or len(text) > 200:  # noqa: PLR2004 - one short line
        return f"a {parsed.scheme}: reference"
    return text


@dataclass(frozen=True, slots=True)
class _At:
    """Which reference, for what purpose: the start of every error message."""

    desc: str
    what: str

    def error(self, reason: str, *, expected: str = "", fix: str = "") -> KeyMaterialError:
        return KeyMaterialError(f"{self.desc} ({self.what}){reason}", expected=expected, fix=fix)


class _Masks:
    """The caller's masker, skipping empty values and repeats (the runner warns on empty ones)."""

    __slots__ = ("_mask", "_seen")

    def __init__(self, mask: Masker) -> None:
        self._mask = mask
        self._seen: set[str] = set()

    def __call__(self, value: str) -> None:
        if value.strip() and value not in self._seen:
            self._seen.add(value)
            self._mask(value)

    def material(self, data: bytes) -> None:
        """Mask key bytes in every form a log could show: PEM text, base64, DER base64."""
        if data.lstrip().startswith(b"-----BEGIN"):
            text = data.decode("ascii", errors="replace")
            self(text)
            self(text.strip())
            lines = (line.strip() for line in text.splitlines())
            self("".join(x for x in lines if x and not x.startswith("-----") and ":" not in x))
        self(base64.b64encode(data).decode())


class _Recorder:
    """Holds values back; :meth:`replay` hands them to a real masker if they turn out secret."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: list[str] = []

    def __call__(self, value: str) -> None:
        self.values.append(value)

    def replay(self, mask: _Masks) -> None:
        for value in self.values:
            mask(value)


@dataclass(frozen=True, slots=True)
class _Lookup:
    """One resolution: where, the maskers and the environment.

    ``masks`` takes the key's own forms; ``secret`` takes containers and credentials (a JSON secret
    string, Vault tokens, the OIDC JWT), which stay secret even when the key is a public one.
    """

    at: _At
    masks: _Masks
    secret: _Masks
    env: Mapping[str, str]


# --- decoding values ---------------------------------------------------------------------------
def _is_der(data: bytes) -> bool:
    """A single DER SEQUENCE spanning all of ``data``: the shape of every key encoding we read."""
    if len(data) < 2 or data[0] != 0x30:  # noqa: PLR2004 - tag and length bytes
        return False
    first = data[1]
    if first < 0x80:  # noqa: PLR2004 - short-form length
        return 2 + first == len(data)
    count = first & 0x7F
    if not 0 < count <= 4 or len(data) < 2 + count:  # noqa: PLR2004 - long-form length
        return False
    return 2 + count + int.from_bytes(data[2 : 2 + count], "big") == len(data)


def _decode(data: bytes, look: _Lookup) -> bytes:
    """PEM as is; base64 (one line or wrapped) of PEM or DER decoded; raw DER as is; else raise."""
    stripped = data.strip()
    if stripped.startswith(b"-----BEGIN"):
        look.masks.material(stripped)
        return stripped
    compact = b"".join(stripped.split())
    if compact and _B64.fullmatch(compact):
        try:
            decoded = base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        if decoded.lstrip().startswith(b"-----BEGIN"):
            return _decode(decoded, look)
        if _is_der(decoded):
            look.masks.material(decoded)
            return decoded
    if _is_der(data):
        look.masks.material(data)
        return data
    raise look.at.error(
        ": the value is neither PEM nor base64 of a key",
        expected="a PEM key, its base64 (e.g. `base64 -w0 key.pem`), or DER",
        fix="check that the secret holds the whole key file, including the BEGIN/END lines",
    )


def _json_object(text: str) -> dict[str, object] | None:
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _field_names(doc: Mapping[str, object]) -> str:
    return ", ".join(sorted(doc)) or "none"


def _pick_field(doc: Mapping[str, object], name: str, look: _Lookup) -> bytes:
    """The key held in one field of a JSON / KV secret; field names may be shown, values never."""
    if name not in doc:
        raise look.at.error(
            f": field '{name}' not found; fields present: {_field_names(doc)}",
            fix="fix the #field part of the reference, or add the field to the secret",
        )
    value = doc[name]
    if not isinstance(value, str):
        raise look.at.error(
            f": field '{name}' is a {type(value).__name__}, not a string",
            expected="the key as a PEM or base64 string",
        )
    look.masks(value)
    return _decode(value.encode(), look)


# --- local sources -----------------------------------------------------------------------------
def _from_env(ref: _Ref, look: _Lookup) -> bytes:
    if not ref.target:
        raise look.at.error(": the variable name is missing", expected="env:NAME")
    value = look.env.get(ref.target)
    if value is None:
        raise look.at.error(
            " is not set",
            fix=f"pass the secret to the step, e.g. `env: {ref.target}: ${{{{ secrets.X }}}}`",
        )
    look.masks(value)
    if not value.strip():
        raise look.at.error(
            " is set but empty",
            fix="the secret is missing in this repository or environment; add it",
        )
    return _decode(value.encode(), look)


def _from_file(ref: _Ref, look: _Lookup) -> bytes:
    if not ref.target:
        raise look.at.error(": the path is missing", expected="file:PATH")
    try:
        with open(ref.target, "rb") as handle:  # noqa: PTH123 - one plain read of a user's path
            data = handle.read()
    except OSError as exc:
        raise look.at.error(
            f" is not readable ({exc.strerror or type(exc).__name__})",
            fix="check the path and its permissions",
        ) from None
    with contextlib.suppress(UnicodeDecodeError):  # binary DER: _decode masks its base64
        look.masks(data.decode())
    return _decode(data, look)


# --- AWS ---------------------------------------------------------------------------------------
def _arn_region(target: str) -> str | None:
    """The region inside an ARN, so an ARN works whatever the default region is."""
    parts = target.split(":")
    if len(parts) > 4 and parts[0] == "arn" and parts[3]:  # noqa: PLR2004 - arn:partition:svc:region
        return parts[3]
    return None


def _aws(call: Callable[[], T], *, at: _At, missing: str = "", grant: str = "") -> T:
    """Run one boto3 step and turn its failures into errors that say which and why."""
    from botocore.exceptions import (  # noqa: PLC0415 - lazy: CLI start-up time
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        NoRegionError,
    )

    try:
        return call()
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "unknown error"))
        if code in {"ResourceNotFoundException", "NotFoundException"}:
            raise at.error(
                f": {missing} ({code})", fix="check the id, the account and AWS_REGION"
            ) from None
        if code in _AWS_DENIED:
            raise at.error(
                f": AWS refused access ({code})", fix=f"grant {grant} to this role"
            ) from None
        raise at.error(f": the AWS request failed ({code})") from None
    except NoCredentialsError:
        raise at.error(
            ": no AWS credentials were found",
            fix="configure credentials, e.g. aws-actions/configure-aws-credentials with OIDC",
        ) from None
    except NoRegionError:
        raise at.error(
            ": no AWS region is configured", fix="set AWS_REGION, or use an ARN"
        ) from None
    except BotoCoreError as exc:
        raise at.error(
            f": could not reach AWS ({type(exc).__name__})",
            fix="check the network and AWS_ENDPOINT_URL",
        ) from None


def _aws_client(service: str, target: str, at: _At) -> Any:  # noqa: ANN401 - boto3 is untyped
    """A boto3 client from the process's usual AWS settings; the region of an ARN wins.

    boto3 reads AWS_DEFAULT_REGION but not AWS_REGION, which many workflows set alone.
    """
    boto3 = extras.load("boto3", needed_for=f"{at.desc} ({at.what})")
    session = boto3.session.Session()
    region = _arn_region(target) or session.region_name or os.environ.get("AWS_REGION") or None
    return _aws(lambda: session.client(service, region_name=region), at=at)


def _from_aws_sm(ref: _Ref, look: _Lookup) -> bytes:
    if not ref.target:
        raise look.at.error(
            ": the secret id is missing", expected="aws-sm://secret-id[#json-field]"
        )
    client = _aws_client("secretsmanager", ref.target, look.at)
    response: Mapping[str, Any] = _aws(
        lambda: client.get_secret_value(SecretId=ref.target),
        at=look.at,
        missing="the secret does not exist",
        grant="secretsmanager:GetSecretValue on the secret",
    )
    text = response.get("SecretString")
    if isinstance(text, str):
        look.secret(text)
        doc = _json_object(text)
        if ref.fragment:
            if doc is None:
                raise look.at.error(
                    f": the secret is not a JSON object, so #{ref.fragment} selects nothing",
                    fix="drop the #field part, or store the secret as JSON",
                )
            return _pick_field(doc, ref.fragment, look)
        if doc is not None:
            raise look.at.error(
                f": the secret is JSON with fields {_field_names(doc)}",
                fix="add #field to the reference to pick the one that holds the key",
            )
        return _decode(text.encode(), look)
    binary = bytes(response.get("SecretBinary") or b"")
    look.masks(base64.b64encode(binary).decode())
    if ref.fragment:
        raise look.at.error(
            f": the secret is binary, so #{ref.fragment} selects nothing",
            fix="drop the #field part; it picks from a JSON SecretString",
        )
    return _decode(binary, look)


def _check_remote(public: crypto.PublicKey, signature: bytes, data: bytes, at: _At) -> None:
    """A remote signature must verify with the public key root.json will list, or we stop here."""
    if not public.is_valid_signature(signature, data):
        raise at.error(
            ": returned a signature that does not verify with the key's public key",
            fix="the key changed while signing, or the service misbehaves; retry",
        )


@dataclass(frozen=True, slots=True)
class KmsSigner:
    """An AWS KMS ECC_NIST_P256 key: ``ECDSA_SHA_256`` over the raw message, DER signature."""

    key_arn: str
    public: crypto.PublicKey
    description: str = field(repr=False)
    client: Any = field(repr=False, compare=False)

    @property
    def keyid(self) -> str:
        """SHA-256 of the KMS key's DER SPKI."""
        return self.public.keyid

    def sign(self, data: bytes) -> bytes:
        """Sign in KMS, then check the signature locally so a wrong key cannot slip through."""
        at = _At(self.description, _REMOTE)
        if len(data) > KMS_MAX_MESSAGE:
            raise at.error(
                f": the message to sign is {len(data)} bytes; KMS signs at most "
                f"{KMS_MAX_MESSAGE} bytes with MessageType RAW",
                fix="keep signed metadata small (fewer releases per manifest)",
            )
        response: Mapping[str, Any] = _aws(
            lambda: self.client.sign(
                KeyId=self.key_arn,
                Message=data,
                MessageType="RAW",
                SigningAlgorithm="ECDSA_SHA_256",
            ),
            at=at,
            missing="the key does not exist",
            grant="kms:Sign on the key",
        )
        signature = bytes(response["Signature"])
        _check_remote(self.public, signature, data, at)
        return signature


def _kms_signer(ref: _Ref, at: _At) -> KmsSigner:
    if not ref.target:
        raise at.error(": the key id is missing", expected="kms://key-id-or-arn")
    grant = "kms:DescribeKey and kms:GetPublicKey on the key"
    client = _aws_client("kms", ref.target, at)
    meta: Mapping[str, Any] = _aws(
        lambda: client.describe_key(KeyId=ref.target)["KeyMetadata"],
        at=at,
        missing="the key does not exist",
        grant=grant,
    )
    spec, usage = meta.get("KeySpec"), meta.get("KeyUsage")
    if spec != "ECC_NIST_P256" or usage != "SIGN_VERIFY":
        raise at.error(
            f": KMS key {ref.target} is {spec} {usage}, expected ECC_NIST_P256 SIGN_VERIFY",
            fix="create the key with --key-spec ECC_NIST_P256 --key-usage SIGN_VERIFY",
        )
    if meta.get("KeyState", "Enabled") != "Enabled":
        raise at.error(
            f": KMS key {ref.target} is {meta.get('KeyState')}",
            fix="enable the key, or point at an enabled one",
        )
    arn = str(meta.get("Arn") or ref.target)  # pin the key even if an alias moves mid-run
    response: Mapping[str, Any] = _aws(
        lambda: client.get_public_key(KeyId=arn),
        at=at,
        missing="the key does not exist",
        grant=grant,
    )
    public = crypto.public_key_from_der("ecdsa-p256-sha256", bytes(response["PublicKey"]))
    return KmsSigner(arn, public, at.desc, client)


# --- Vault / OpenBao ---------------------------------------------------------------------------
class _OidcError(Exception):
    """Internal: the runner's OIDC token could not be obtained (the text carries no token)."""


def _fetch_github_oidc_token(request_url: str, request_token: str, audience: str) -> str:
    """Ask the Actions runner for an OIDC JWT (needs ``permissions: id-token: write``)."""
    import requests  # noqa: PLC0415 - lazy: CLI start-up time

    separator = "&" if "?" in request_url else "?"
    try:
        response = requests.get(
            f"{request_url}{separator}audience={quote(audience, safe='')}",
            headers={"Authorization": f"bearer {request_token}", "Accept": "application/json"},
            timeout=30,
        )
    except requests.exceptions.RequestException as exc:
        message = f"could not reach the runner's ID token endpoint ({type(exc).__name__})"
        raise _OidcError(message) from None
    if response.status_code != 200:  # noqa: PLR2004 - HTTP OK
        raise _OidcError(f"the runner refused the ID token request (HTTP {response.status_code})")
    try:
        value = response.json()["value"]
    except (ValueError, KeyError, TypeError):
        value = None
    if not isinstance(value, str) or not value:
        raise _OidcError("the runner's ID token answer has no 'value'")
    return value


def _vault_error(exc: Exception, at: _At, doing: str, hint: str = "") -> Exception:
    """The error to raise for an hvac / requests failure: its HTTP meaning, never Vault's text."""
    import hvac.exceptions  # noqa: PLC0415 - lazy: CLI start-up time
    import requests  # noqa: PLC0415

    if isinstance(exc, hvac.exceptions.InvalidPath):
        return at.error(
            f": {doing}: nothing there (HTTP 404)",
            fix="check the mount and the path" + hint,
        )
    if isinstance(exc, (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized)):
        return at.error(
            f": {doing}: Vault denied access (permission denied)",
            fix="the token or role's policy must allow this path",
        )
    if isinstance(exc, hvac.exceptions.InvalidRequest):
        return at.error(
            f": {doing}: Vault rejected the request (HTTP 400)",
            fix="for a jwt login: check the role's bound_audiences (VAULT_AUDIENCE) and claims",
        )
    if isinstance(exc, hvac.exceptions.VaultError):
        return at.error(f": {doing}: Vault answered {type(exc).__name__}")
    if isinstance(exc, requests.exceptions.RequestException):
        return at.error(
            f": {doing}: could not reach Vault ({type(exc).__name__})",
            fix="check VAULT_ADDR and the network",
        )
    return exc


def _vault_client(look: _Lookup) -> Any:  # noqa: ANN401 - hvac is untyped
    """An hvac client from VAULT_ADDR, authenticated by VAULT_TOKEN or GitHub OIDC (jwt login)."""
    env, at = look.env, look.at
    hvac = extras.load("hvac", needed_for=f"{at.desc} ({at.what})")
    address = env.get("VAULT_ADDR", "").strip()
    if not address:
        raise at.error(": VAULT_ADDR is not set", fix="set VAULT_ADDR to the Vault / OpenBao URL")
    client = hvac.Client(
        url=address,
        token="",  # hvac would otherwise read os.environ and ~/.vault-token behind our back
        verify=env.get("VAULT_CACERT") or True,
        namespace=env.get("VAULT_NAMESPACE") or None,
        timeout=30,
    )
    token = env.get("VAULT_TOKEN", "")
    if token.strip():
        look.secret(token)
        client.token = token.strip()
        return client
    role = env.get("VAULT_ROLE", "").strip()
    request_url = env.get("ACTIONS_ID_TOKEN_REQUEST_URL", "")
    request_token = env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "")
    if not role:
        raise at.error(
            ": no Vault credentials (neither VAULT_TOKEN nor VAULT_ROLE is set)",
            fix="set VAULT_TOKEN, or VAULT_ROLE to log in with the job's GitHub OIDC token",
        )
    if not request_url or not request_token:
        raise at.error(
            ": VAULT_ROLE is set but the job has no OIDC token",
            fix="add `permissions: id-token: write` to the job",
        )
    look.secret(request_token)
    mount = env.get("VAULT_JWT_MOUNT", "").strip().strip("/") or "jwt"
    audience = env.get("VAULT_AUDIENCE", "").strip() or DEFAULT_AUDIENCE
    try:
        jwt = _fetch_github_oidc_token(request_url, request_token, audience)
    except _OidcError as exc:
        raise at.error(
            f": {exc}", fix="check that the job has `permissions: id-token: write`"
        ) from None
    look.secret(jwt)
    doing = f"jwt login at auth/{mount} as role '{role}'"
    try:
        login = client.auth.jwt.jwt_login(role=role, jwt=jwt, use_token=False, path=mount)
    except Exception as exc:  # noqa: BLE001 - hvac / requests errors, mapped without their text
        raise _vault_error(exc, at, doing) from None
    try:
        vault_token = str(login["auth"]["client_token"])
    except (KeyError, TypeError):
        raise at.error(f": {doing}: Vault returned no token") from None
    look.secret(vault_token)
    client.token = vault_token
    return client


def _from_vault(ref: _Ref, look: _Lookup) -> bytes:
    mount, _, path = ref.target.strip("/").partition("/")
    if not mount or not path:
        raise look.at.error(": the path is incomplete", expected="vault://mount/path#field")
    client = _vault_client(look)
    try:
        response = client.secrets.kv.v2.read_secret_version(
            path=path, mount_point=mount, raise_on_deleted_version=True
        )
    except Exception as exc:  # noqa: BLE001 - hvac / requests errors, mapped without their text
        hint = f" (a KV version 2 mount: `vault kv get -mount={mount} {path}`)"
        raise _vault_error(exc, look.at, f"reading {mount}/{path}", hint) from None
    try:
        doc = response["data"]["data"]
    except (KeyError, TypeError):
        doc = None
    if not isinstance(doc, dict):
        raise look.at.error(": the answer is not a KV secret", expected="a KV version 2 mount")
    name = ref.fragment
    if not name:
        if len(doc) != 1:
            raise look.at.error(
                f": the secret has fields {_field_names(doc)}",
                fix="add #field to the reference to pick the one that holds the key",
            )
        name = next(iter(doc))
    return _pick_field(doc, name, look)


@dataclass(frozen=True, slots=True)
class VaultTransitSigner:
    """A Vault / OpenBao transit ``ecdsa-p256`` key, pinned to the version we hold the key of."""

    mount: str
    name: str
    version: int
    public: crypto.PublicKey
    description: str = field(repr=False)
    client: Any = field(repr=False, compare=False)

    @property
    def keyid(self) -> str:
        """SHA-256 of the transit key's DER SPKI."""
        return self.public.keyid

    def sign(self, data: bytes) -> bytes:
        """Sign in Vault (sha2-256, asn1), then check the signature locally."""
        at = _At(self.description, _REMOTE)
        try:
            response = self.client.secrets.transit.sign_data(
                name=self.name,
                hash_input=base64.b64encode(data).decode(),
                key_version=self.version,
                hash_algorithm="sha2-256",
                marshaling_algorithm="asn1",
                mount_point=self.mount,
            )
        except Exception as exc:  # noqa: BLE001 - hvac / requests errors, mapped below
            raise _vault_error(exc, at, f"signing with {self.mount}/{self.name}") from None
        signature = _transit_signature(response, self.version)
        if signature is None:
            raise at.error(f": Vault's answer is not a signature vault:v{self.version}:<base64>")
        _check_remote(self.public, signature, data, at)
        return signature


def _transit_signature(response: Any, version: int) -> bytes | None:  # noqa: ANN401 - JSON
    """The DER bytes of ``vault:vN:<base64>``, or None when the answer has another shape."""
    try:
        prefix, label, encoded = str(response["data"]["signature"]).split(":")
        if prefix != "vault" or label != f"v{version}":
            return None
        return base64.b64decode(encoded, validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error):
        return None


def _transit_signer(ref: _Ref, look: _Lookup) -> VaultTransitSigner:
    mount, _, name = ref.target.lstrip("/").rpartition("/")
    mount = mount or "transit"
    if not name or ref.fragment is not None:
        raise look.at.error(": the reference is malformed", expected="vault-transit://[mount/]key")
    client = _vault_client(look)
    try:
        response = client.secrets.transit.read_key(name=name, mount_point=mount)
    except Exception as exc:  # noqa: BLE001 - hvac / requests errors, mapped below
        raise _vault_error(exc, look.at, f"reading the transit key {mount}/{name}") from None
    try:
        data = response["data"]
        kind, version = str(data["type"]), int(data["latest_version"])
    except (KeyError, TypeError, ValueError):
        raise look.at.error(
            ": the answer is not a transit key", expected="a transit secrets engine"
        ) from None
    if kind != "ecdsa-p256":
        raise look.at.error(
            f": Vault transit key {mount}/{name} is {kind}, expected ecdsa-p256",
            fix=f"create one with `bao write {mount}/keys/NAME type=ecdsa-p256`",
        )
    try:
        pem = str(data["keys"][str(version)]["public_key"])
    except (KeyError, TypeError):
        raise look.at.error(f": Vault shows no public key for version {version}") from None
    public = crypto.public_key_from_der("ecdsa-p256-sha256", pem.encode())
    return VaultTransitSigner(mount, name, version, public, look.at.desc, client)


# --- public API --------------------------------------------------------------------------------
def _resolve(ref: str, look: _Lookup) -> bytes:
    """Key bytes for ``ref`` (a PEM or DER), every secret form masked on the way."""
    parsed = _parse(ref)
    if parsed.scheme in {"inline", "unknown", "malformed"}:
        look.masks(ref)  # not a reference we know, so it may be a value
    if parsed.scheme == "inline":
        if not ref.strip():
            raise _At("the value", look.at.what).error(
                " is empty", fix="the secret is missing in this repository or environment; add it"
            )
        return _decode(ref.encode(), look)
    if parsed.scheme == "env":
        return _from_env(parsed, look)
    if parsed.scheme == "file":
        return _from_file(parsed, look)
    if parsed.scheme == "aws-sm":
        return _from_aws_sm(parsed, look)
    if parsed.scheme == "vault":
        return _from_vault(parsed, look)
    if parsed.scheme in {"kms", "vault-transit"}:
        raise look.at.error(
            ": a remote signer only signs; its key never leaves it",
            expected="key material: a PEM value or its base64, env:, file:, aws-sm:// or vault://",
        )
    if parsed.scheme == "malformed":
        raise look.at.error(
            f": {parsed.target} references start with {parsed.target}://",
            expected="one of: " + FORMS,
        )
    raise look.at.error(
        " is not supported",
        expected="one of: " + FORMS,
        fix="write the reference in one of the accepted forms",
    )


def _lookup(ref: str, what: str, mask: Masker, env: Mapping[str, str]) -> _Lookup:
    masks = _Masks(mask)
    return _Lookup(_At(describe_ref(ref), what), masks, masks, env)


def resolve_bytes(
    ref: str, *, what: str, mask: Masker, env: Mapping[str, str] = os.environ
) -> bytes:
    """Raw key material (PEM or DER) for ``ref``; every secret form goes to ``mask`` first."""
    return _resolve(ref, _lookup(ref, what, mask, env))


def resolve_signer(
    ref: str, *, role: str, mask: Masker, env: Mapping[str, str] = os.environ
) -> Signer:
    """A signer for ``role``: a local key, or a KMS / Vault transit key that stays remote."""
    look = _lookup(ref, f"the signing key for {role}", mask, env)
    parsed = _parse(ref)
    if parsed.scheme == "kms":
        return _kms_signer(parsed, look.at)
    if parsed.scheme == "vault-transit":
        return _transit_signer(parsed, look)
    return crypto.load_signing_key(_resolve(ref, look), source=look.at.desc)


def resolve_decryption_key(
    ref: str, *, mask: Masker, env: Mapping[str, str] = os.environ
) -> crypto.DecryptionKey:
    """The app's HPKE decryption key (to check sealed bundles in CI)."""
    look = _lookup(ref, "the decryption key", mask, env)
    return crypto.load_decryption_key(_resolve(ref, look), source=look.at.desc)


def resolve_recipient(
    ref: str, *, mask: Masker, env: Mapping[str, str] = os.environ
) -> crypto.RecipientKey:
    """An app's public recipient key: not masked, unless it turns out not to be a public key."""
    real = _Masks(mask)
    held = _Recorder()
    at = _At(describe_ref(ref), "the recipient key")
    try:
        data = _resolve(ref, _Lookup(at, _Masks(held), real, env))
        if b"PRIVATE KEY" in data:
            raise at.error(
                " is a private key",
                expected="the public key (.pub.pem) made by `otaseal keygen --kind encryption`",
                fix="give CI only the app's public recipient key, never its decryption key",
            )
        return crypto.load_recipient_key(data, source=at.desc)
    except KeyMaterialError:
        held.replay(real)  # not a public key after all: treat everything seen as secret
        raise


def resolve_capgo_key(
    ref: str, *, mask: Masker, env: Mapping[str, str] = os.environ
) -> crypto.CapgoPrivateKey:
    """The RSA-2048 PKCS#1 key for Capgo's format; a remote signer is refused with the reason."""
    look = _lookup(ref, "the Capgo key, keys.capgo", mask, env)
    if _parse(ref).scheme in {"kms", "vault-transit"}:
        raise look.at.error(
            ": a remote signer cannot make Capgo's session key and checksum. They need the "
            "raw RSA private-key operation (PKCS#1 type-1 padding over the bytes themselves, "
            "with no digest prefix), which AWS KMS does not offer and otaseal does not ask of "
            "Vault transit",
            expected="the RSA-2048 PKCS#1 private key itself: a PEM value or its base64, env:, "
            "file:, aws-sm:// or vault://",
            fix="keep the key made by `otaseal keygen --kind capgo` in AWS Secrets Manager or "
            "Vault KV and point keys.capgo at it (aws-sm:// or vault://); the channel keys can "
            "stay in the remote signer",
        )
    return crypto.load_capgo_private_key(_resolve(ref, look), source=look.at.desc)
