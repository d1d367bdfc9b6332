"""Key references resolved without any server: inline values, env:, file:, errors and masking."""

from __future__ import annotations

import base64
import textwrap
from typing import TYPE_CHECKING, Any

import pytest

from otaseal import crypto, dsse, secrets
from otaseal.errors import KeyMaterialError

if TYPE_CHECKING:
    from pathlib import Path


class RecordingMasker:
    """What the Action's ``add_mask`` would have received, in order."""

    def __init__(self) -> None:
        self.values: list[str] = []

    def __call__(self, value: str) -> None:
        self.values.append(value)

    def covers(self, text: str) -> bool:
        """True if ``text`` is hidden: masked whole, or every non-empty line masked."""
        if text in self.values:
            return True
        lines = [line for line in text.splitlines() if line.strip()]
        masked_lines = {line for value in self.values for line in value.splitlines()}
        return bool(lines) and all(line in masked_lines for line in lines)


def der_of(pem: bytes) -> bytes:
    body = b"".join(line for line in pem.splitlines() if not line.startswith(b"-----"))
    return base64.b64decode(body)


def secret_chunks(pem: bytes) -> list[str]:
    """Pieces of a key that must never show up in a message: PEM lines and base64 windows."""
    forms = [
        base64.b64encode(pem).decode(),
        base64.b64encode(der_of(pem)).decode(),
    ]
    lines = [line.decode() for line in pem.splitlines() if not line.startswith(b"-----")]
    windows = [form[i : i + 16] for form in forms for i in range(0, len(form) - 16, 8)]
    return lines + windows


def assert_no_material(err: BaseException, pem: bytes) -> None:
    text = str(err) + (err.diagnostics() if isinstance(err, KeyMaterialError) else "")
    assert "-----BEGIN" not in text
    for chunk in secret_chunks(pem):
        assert chunk not in text


@pytest.fixture(scope="module")
def signing_pem() -> bytes:
    return crypto.generate_signing_key().to_pem()


@pytest.fixture(scope="module")
def decryption_pem() -> bytes:
    return crypto.generate_decryption_key().to_pem()


@pytest.fixture
def mask() -> RecordingMasker:
    return RecordingMasker()


# --- inline values ---------------------------------------------------------------------------
def test_inline_pem_gives_a_signer_whose_signatures_verify(signing_pem, mask):
    signer = secrets.resolve_signer(signing_pem.decode(), role="channel:beta", mask=mask, env={})
    assert signer.keyid == crypto.load_signing_key(signing_pem).keyid
    envelope = dsse.sign(dsse.PAYLOAD_TYPE_CHANNEL, b"{}", [signer])
    payload = dsse.verify(
        envelope,
        payload_type=dsse.PAYLOAD_TYPE_CHANNEL,
        keys={signer.keyid: signer.public},
        keyids=[signer.keyid],
        threshold=1,
        role="channel:beta",
    )
    assert payload == b"{}"
    assert mask.values[0] == signing_pem.decode()  # the raw value first, before any parsing
    assert mask.covers(signing_pem.decode())


def test_inline_pem_with_surrounding_whitespace_from_a_secret(signing_pem, mask):
    value = "\n  " + signing_pem.decode() + "\n\n"
    assert secrets.resolve_bytes(value, what="the key", mask=mask, env={}) == signing_pem.strip()
    assert mask.values[0] == value


def test_base64_of_pem_is_decoded_and_every_form_masked(signing_pem, mask):
    value = base64.b64encode(signing_pem).decode()
    signer = secrets.resolve_signer(value, role="channel:beta", mask=mask, env={})
    assert signer.keyid == crypto.load_signing_key(signing_pem).keyid
    assert mask.values[0] == value
    assert mask.covers(signing_pem.decode())
    assert base64.b64encode(der_of(signing_pem)).decode() in mask.values  # DER base64, one line


def test_wrapped_base64_as_gnu_base64_prints_it(signing_pem, mask):
    value = "\n".join(textwrap.wrap(base64.b64encode(signing_pem).decode(), 76)) + "\n"
    data = secrets.resolve_bytes(value, what="the key", mask=mask, env={})
    assert data == signing_pem.strip()
    assert mask.values[0] == value


def test_base64_of_der_is_accepted(signing_pem, mask):
    der = der_of(signing_pem)
    value = base64.b64encode(der).decode()
    signer = secrets.resolve_signer(value, role="root", mask=mask, env={})
    assert signer.keyid == crypto.load_signing_key(signing_pem).keyid
    assert value in mask.values


def test_decryption_key_from_inline_pem(decryption_pem, mask):
    key = secrets.resolve_decryption_key(decryption_pem.decode(), mask=mask, env={})
    assert key.public == crypto.load_decryption_key(decryption_pem).public
    assert mask.covers(decryption_pem.decode())


@pytest.mark.parametrize(
    "value",
    ["hello world", "not base64 !!", "aGVsbG8gd29ybGQ=", "MAMCAQ==extra", "12:34", "MIAA", "MIIB"],
)
def test_value_that_is_not_a_key_is_rejected_without_echoing_it(value, mask):
    with pytest.raises(KeyMaterialError) as info:
        secrets.resolve_bytes(value, what="the signing key for channel:beta", mask=mask, env={})
    text = info.value.diagnostics()
    assert "neither PEM nor base64 of a key" in text
    assert "an inline value (not shown)" in text
    assert value not in text
    assert value in mask.values


def test_truncated_pem_names_the_source_not_the_value(signing_pem, mask):
    broken = signing_pem[: len(signing_pem) // 2]
    with pytest.raises(KeyMaterialError) as info:
        secrets.resolve_signer(broken.decode(), role="channel:beta", mask=mask, env={})
    assert "an inline PEM value (not shown)" in info.value.diagnostics()
    assert_no_material(info.value, signing_pem)
    assert mask.values[0] == broken.decode()


def test_decryption_key_given_as_signing_key_is_refused_without_material(decryption_pem, mask):
    ed = crypto.generate_signing_key("ed25519").to_pem()
    with pytest.raises(KeyMaterialError) as info:
        secrets.resolve_decryption_key(ed.decode(), mask=mask, env={})
    assert_no_material(info.value, ed)
    assert mask.covers(ed.decode())


def test_empty_value_says_the_secret_is_missing(mask):
    with pytest.raises(KeyMaterialError, match="is empty"):
        secrets.resolve_bytes("  \n", what="the key", mask=mask, env={})
    assert mask.values == []  # nothing to mask; the runner warns on empty masks


# --- env: ------------------------------------------------------------------------------------
def test_env_reference_reads_pem_and_masks_it(signing_pem, mask):
    env = {"OTASEAL_BETA_KEY": signing_pem.decode()}
    signer = secrets.resolve_signer("env:OTASEAL_BETA_KEY", role="channel:beta", mask=mask, env=env)
    assert signer.keyid == crypto.load_signing_key(signing_pem).keyid
    assert mask.values[0] == signing_pem.decode()


def test_env_reference_reads_base64(signing_pem, mask):
    encoded = base64.b64encode(signing_pem).decode()
    data = secrets.resolve_bytes("env:K", what="the key", mask=mask, env={"K": encoded})
    assert data == signing_pem.strip()
    assert mask.values[0] == encoded
    assert mask.covers(signing_pem.decode())


def test_env_value_is_not_itself_a_reference(mask):
    with pytest.raises(KeyMaterialError, match="neither PEM nor base64"):
        secrets.resolve_bytes("env:K", what="the key", mask=mask, env={"K": "file:/etc/passwd"})


def test_env_not_set(mask):
    with pytest.raises(KeyMaterialError) as info:
        secrets.resolve_bytes("env:OTASEAL_BETA_KEY", what="the signing key", mask=mask, env={})
    assert "env:OTASEAL_BETA_KEY (the signing key) is not set" in info.value.diagnostics()
    assert "secrets." in info.value.fix


def test_env_set_but_empty(mask):
    with pytest.raises(KeyMaterialError, match="set but empty"):
        secrets.resolve_bytes("env:K", what="the key", mask=mask, env={"K": " "})


def test_env_without_a_name(mask):
    with pytest.raises(KeyMaterialError, match="variable name is missing"):
        secrets.resolve_bytes("env:", what="the key", mask=mask, env={})


def test_env_holding_garbage_is_masked_and_not_echoed(mask):
    value = "correct horse battery staple"
    with pytest.raises(KeyMaterialError) as info:
        secrets.resolve_bytes("env:K", what="the key", mask=mask, env={"K": value})
    assert value not in info.value.diagnostics()
    assert "env:K" in info.value.diagnostics()
    assert mask.values == [value]


def test_env_defaults_to_the_process_environment(signing_pem, mask, monkeypatch):
    monkeypatch.setenv("OTASEAL_TEST_KEY", signing_pem.decode())
    assert secrets.resolve_bytes("env:OTASEAL_TEST_KEY", what="k", mask=mask).startswith(b"---")


# --- file: -----------------------------------------------------------------------------------
def test_file_reference_reads_pem(tmp_path: Path, signing_pem, mask):
    path = tmp_path / "beta.pem"
    path.write_bytes(signing_pem)
    signer = secrets.resolve_signer(f"file:{path}", role="channel:beta", mask=mask, env={})
    assert signer.keyid == crypto.load_signing_key(signing_pem).keyid
    assert mask.covers(signing_pem.decode())


def test_file_url_form_reads_the_absolute_path(tmp_path: Path, signing_pem, mask):
    path = tmp_path / "beta.pem"
    path.write_bytes(signing_pem)
    assert secrets.resolve_bytes(f"file://{path}", what="k", mask=mask, env={}).startswith(b"---")


def test_file_reference_reads_binary_der(tmp_path: Path, signing_pem, mask):
    der = der_of(signing_pem)
    path = tmp_path / "beta.der"
    path.write_bytes(der)
    assert secrets.resolve_bytes(f"file:{path}", what="k", mask=mask, env={}) == der
    assert base64.b64encode(der).decode() in mask.values


def test_file_reference_reads_base64_text(tmp_path: Path, signing_pem, mask):
    path = tmp_path / "beta.b64"
    path.write_text(base64.b64encode(signing_pem).decode() + "\n")
    assert secrets.resolve_bytes(f"file:{path}", what="k", mask=mask, env={}) == signing_pem.strip()


def test_missing_file_is_not_readable(tmp_path: Path, mask):
    ref = f"file:{tmp_path}/nope.pem"
    with pytest.raises(KeyMaterialError) as info:
        secrets.resolve_bytes(ref, what="the key", mask=mask, env={})
    assert f"{ref} (the key) is not readable (No such file or directory)" in str(info.value)


def test_file_without_a_path(mask):
    with pytest.raises(KeyMaterialError, match="path is missing"):
        secrets.resolve_bytes("file:", what="the key", mask=mask, env={})


def test_bare_path_is_a_value_not_a_file(tmp_path: Path, signing_pem, mask):
    path = tmp_path / "beta.pem"
    path.write_bytes(signing_pem)
    with pytest.raises(KeyMaterialError, match="neither PEM nor base64"):
        secrets.resolve_bytes(str(path), what="the key", mask=mask, env={})


# --- schemes and descriptions ------------------------------------------------------------------
@pytest.mark.parametrize("ref", ["s3://bucket/key", "gcp-sm://x", "https://vault/x", "C:\\k.pem"])
def test_unknown_scheme_lists_the_accepted_forms(ref, mask):
    with pytest.raises(KeyMaterialError) as info:
        secrets.resolve_bytes(ref, what="the key", mask=mask, env={})
    text = info.value.diagnostics()
    assert "unknown scheme" in text
    for form in ("env:NAME", "file:PATH", "aws-sm://", "vault://", "kms://", "vault-transit://"):
        assert form in text


@pytest.mark.parametrize("ref", ["aws-sm:prod/otaseal", "kms:abc", "vault:secret/x"])
def test_scheme_without_slashes_says_how_to_write_it(ref, mask):
    scheme = ref.split(":")[0]
    with pytest.raises(KeyMaterialError, match=f"{scheme} references start with {scheme}://"):
        secrets.resolve_bytes(ref, what="the key", mask=mask, env={})


@pytest.mark.parametrize("ref", ["kms://alias/otaseal", "vault-transit://otaseal"])
def test_remote_signer_is_not_key_material(ref, mask):
    with pytest.raises(KeyMaterialError, match="a remote signer only signs"):
        secrets.resolve_decryption_key(ref, mask=mask, env={})
    assert mask.values == []


@pytest.mark.parametrize(
    ("ref", "shown"),
    [
        ("env:OTASEAL_BETA_KEY", "env:OTASEAL_BETA_KEY"),
        ("  file:/keys/beta.pem\n", "file:/keys/beta.pem"),
        ("aws-sm://prod/otaseal#beta", "aws-sm://prod/otaseal#beta"),
        ("vault://secret/otaseal#beta", "vault://secret/otaseal#beta"),
        ("kms://alias/otaseal-beta", "kms://alias/otaseal-beta"),
        ("vault-transit://transit/otaseal", "vault-transit://transit/otaseal"),
        ("-----BEGIN PRIVATE KEY-----\nMIG...\n", "an inline PEM value (not shown)"),
        ("LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0t", "an inline value (not shown)"),
        ("s3://bucket/key", "a reference with the unknown scheme 's3:'"),
        ("aws-sm:prod", "a malformed aws-sm: reference"),
        ("env:A\x00B", "a env: reference"),
        ("file:/" + "x" * 300, "a file: reference"),
    ],
)
def test_describe_ref_never_shows_a_value(ref, shown):
    assert secrets.describe_ref(ref) == shown


# --- recipients (public, not masked) -------------------------------------------------------------
def test_recipient_public_key_is_not_masked(decryption_pem, mask):
    public = crypto.load_decryption_key(decryption_pem).public
    recipient = secrets.resolve_recipient(public.to_pem().decode(), mask=mask, env={})
    assert recipient == public
    assert mask.values == []


def test_recipient_from_env_base64(decryption_pem, mask):
    public = crypto.load_decryption_key(decryption_pem).public
    env = {"APP_RECIPIENT": base64.b64encode(public.to_pem()).decode()}
    assert secrets.resolve_recipient("env:APP_RECIPIENT", mask=mask, env=env) == public
    assert mask.values == []


def test_private_key_given_as_recipient_is_refused_and_masked(decryption_pem, mask):
    with pytest.raises(KeyMaterialError) as info:
        secrets.resolve_recipient(decryption_pem.decode(), mask=mask, env={})
    assert "is a private key" in info.value.diagnostics()
    assert_no_material(info.value, decryption_pem)
    assert mask.values[0] == decryption_pem.decode()
    assert mask.covers(decryption_pem.decode())


def test_private_der_given_as_recipient_is_masked_too(decryption_pem, mask):
    value = base64.b64encode(der_of(decryption_pem)).decode()
    with pytest.raises(KeyMaterialError):
        secrets.resolve_recipient(value, mask=mask, env={})
    assert value in mask.values


# --- the masker wrapper ------------------------------------------------------------------------
def test_each_value_is_masked_once_and_empty_values_never(signing_pem, mask):
    secrets.resolve_bytes(signing_pem.decode(), what="k", mask=mask, env={})
    assert len(mask.values) == len(set(mask.values))
    assert all(value.strip() for value in mask.values)


# --- remote signers with fake services (the integration tests use real ones) --------------------
class FakeKms:
    def __init__(self, signature: bytes) -> None:
        self.signature = signature
        self.calls: list[dict[str, Any]] = []

    def sign(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"Signature": self.signature}


def test_kms_signature_from_another_key_is_caught_before_use():
    ours, theirs = crypto.generate_signing_key(), crypto.generate_signing_key()
    client = FakeKms(theirs.sign(b"message"))
    signer = secrets.KmsSigner("arn:aws:kms:eu-west-1:1:key/k", ours.public, "kms://k", client)
    with pytest.raises(KeyMaterialError, match="does not verify"):
        signer.sign(b"message")
    assert client.calls[0]["MessageType"] == "RAW"
    assert client.calls[0]["SigningAlgorithm"] == "ECDSA_SHA_256"


def test_kms_refuses_messages_over_4096_bytes_without_calling_kms():
    key = crypto.generate_signing_key()
    client = FakeKms(b"")
    signer = secrets.KmsSigner("arn:k", key.public, "kms://k", client)
    with pytest.raises(KeyMaterialError, match="4097 bytes; KMS signs at most 4096"):
        signer.sign(b"x" * 4097)
    assert client.calls == []


class FakeTransit:
    def __init__(self, answer: object) -> None:
        self.answer = answer
        self.secrets = self
        self.transit = self

    def sign_data(self, **kwargs: Any) -> object:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def _transit(answer: object) -> secrets.VaultTransitSigner:
    key = crypto.generate_signing_key()
    return secrets.VaultTransitSigner(
        "transit", "otaseal", 2, key.public, "vault-transit://otaseal", FakeTransit(answer)
    )


@pytest.mark.parametrize(
    "answer",
    [
        {"data": {"signature": "vault:v1:" + base64.b64encode(b"0").decode()}},  # wrong version
        {"data": {"signature": "vault:v2:not base64!"}},
        {"data": {"signature": "nope"}},
        {"data": {}},
        None,
    ],
)
def test_transit_answer_that_is_not_a_signature(answer):
    with pytest.raises(KeyMaterialError, match="not a signature vault:v2:<base64>"):
        _transit(answer).sign(b"message")


def test_transit_failure_other_than_vault_passes_through():
    with pytest.raises(ZeroDivisionError):
        _transit(ZeroDivisionError()).sign(b"message")


# --- AWS and Vault failures mapped to messages ---------------------------------------------------
def _client_error(code: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": "secret-ish text"}}, "GetSecretValue")


def _raise(exc: Exception) -> Any:
    raise exc


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("AccessDeniedException", "AWS refused access (AccessDeniedException)"),
        ("ThrottlingException", "the AWS request failed (ThrottlingException)"),
        ("ResourceNotFoundException", "the secret does not exist (ResourceNotFoundException)"),
    ],
)
def test_aws_client_errors_say_what_went_wrong(code, expected):
    at = secrets._At("aws-sm://prod/otaseal", "the key")
    with pytest.raises(KeyMaterialError) as info:
        secrets._aws(
            lambda: _raise(_client_error(code)),
            at=at,
            missing="the secret does not exist",
            grant="secretsmanager:GetSecretValue",
        )
    assert f"aws-sm://prod/otaseal (the key): {expected}" in str(info.value)
    assert "secret-ish" not in info.value.diagnostics()


def test_vault_errors_say_what_went_wrong():
    import hvac.exceptions
    import requests

    at = secrets._At("vault://secret/x", "the key")
    cases = {
        hvac.exceptions.InvalidPath("body"): "nothing there (HTTP 404)",
        hvac.exceptions.Forbidden("body"): "Vault denied access",
        hvac.exceptions.InvalidRequest("body"): "Vault rejected the request (HTTP 400)",
        hvac.exceptions.InternalServerError("body"): "Vault answered InternalServerError",
        requests.exceptions.ConnectionError("body"): "could not reach Vault (ConnectionError)",
    }
    for exc, expected in cases.items():
        mapped = secrets._vault_error(exc, at, "reading secret/x")
        assert isinstance(mapped, KeyMaterialError)
        assert expected in str(mapped)
        assert "body" not in mapped.diagnostics()
    other = ValueError("x")
    assert secrets._vault_error(other, at, "reading") is other


# --- the runner's OIDC token endpoint (fake transport) -------------------------------------------
class FakeResponse:
    def __init__(self, status: int, body: object) -> None:
        self.status_code = status
        self.body = body

    def json(self) -> object:
        if isinstance(self.body, Exception):
            raise self.body
        return self.body


def test_oidc_token_request_sends_audience_and_bearer(monkeypatch):
    import requests

    seen: dict[str, Any] = {}

    def fake_get(url: str, **kwargs: Any) -> FakeResponse:
        seen["url"], seen["headers"] = url, kwargs["headers"]
        return FakeResponse(200, {"value": "eyJ.jwt"})

    monkeypatch.setattr(requests, "get", fake_get)
    token = secrets._fetch_github_oidc_token("http://runner/token?api-version=2", "rt", "a b")
    assert token == "eyJ.jwt"
    assert seen["url"] == "http://runner/token?api-version=2&audience=a%20b"
    assert seen["headers"]["Authorization"] == "bearer rt"


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (FakeResponse(403, {}), r"refused the ID token request \(HTTP 403\)"),
        (FakeResponse(200, ValueError("not json")), "has no 'value'"),
        (FakeResponse(200, {"value": ""}), "has no 'value'"),
        (FakeResponse(200, ["value"]), "has no 'value'"),
    ],
)
def test_oidc_token_endpoint_failures(monkeypatch, response, expected):
    import requests

    monkeypatch.setattr(requests, "get", lambda *_, **__: response)
    with pytest.raises(secrets._OidcError, match=expected):
        secrets._fetch_github_oidc_token("http://runner/token", "rt", "otaseal")


def test_oidc_token_endpoint_unreachable(monkeypatch):
    import requests

    def fake_get(url: str, **kwargs: Any) -> FakeResponse:
        raise requests.exceptions.ConnectionError("http://runner/token?x with details")

    monkeypatch.setattr(requests, "get", fake_get)
    with pytest.raises(secrets._OidcError, match=r"could not reach .* \(ConnectionError\)"):
        secrets._fetch_github_oidc_token("http://runner/token", "rt", "otaseal")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "VAULT_ADDR is not set"),
        ({"VAULT_ADDR": "http://127.0.0.1:1"}, "neither VAULT_TOKEN nor VAULT_ROLE"),
        ({"VAULT_ADDR": "http://127.0.0.1:1", "VAULT_ROLE": "ci"}, "id-token: write"),
    ],
)
def test_vault_needs_an_address_and_credentials(env, expected, mask):
    with pytest.raises(KeyMaterialError) as info:
        secrets.resolve_bytes("vault://secret/otaseal#beta", what="k", mask=mask, env=env)
    assert expected in info.value.diagnostics()


@pytest.mark.parametrize("ref", ["vault://secret", "vault://", "vault:///x"])
def test_vault_reference_needs_mount_and_path(ref, mask):
    with pytest.raises(KeyMaterialError, match="the path is incomplete"):
        secrets.resolve_bytes(ref, what="k", mask=mask, env={})


@pytest.mark.parametrize(
    "ref", ["vault-transit://", "vault-transit://transit/", "vault-transit://k#x"]
)
def test_transit_reference_needs_a_key_name(ref, mask):
    with pytest.raises(KeyMaterialError, match="malformed"):
        secrets.resolve_signer(ref, role="root", mask=mask, env={})


@pytest.mark.parametrize(("ref", "expected"), [("kms://", "key id"), ("aws-sm://", "secret id")])
def test_aws_reference_needs_an_id(ref, expected, mask):
    with pytest.raises(KeyMaterialError, match=f"the {expected} is missing"):
        secrets.resolve_signer(ref, role="root", mask=mask, env={})


def test_arn_region_is_used_for_arns_only():
    assert secrets._arn_region("arn:aws:kms:eu-west-3:123:key/abc") == "eu-west-3"
    assert secrets._arn_region("alias/otaseal") is None
    assert secrets._arn_region("arn:aws:iam::123:role/x") is None


def test_boto3_and_hvac_are_not_imported_for_local_keys(signing_pem):
    import subprocess
    import sys

    code = (
        "import sys; from otaseal import secrets;"
        f"secrets.resolve_bytes({signing_pem.decode()!r}, what='k', mask=lambda v: None, env={{}});"
        "print(sorted(m for m in ('boto3', 'hvac', 'requests') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
