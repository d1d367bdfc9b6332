"""Key references against real services on loopback: moto (Secrets Manager, KMS) and OpenBao.

OpenBao also stands in for Vault's GitHub OIDC login: a loopback stand-in for the runner's ID
token endpoint mints RS256 JWTs with a test key, and OpenBao's jwt auth trusts that key.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

import pytest

from otaseal import crypto, dsse, secrets
from otaseal.errors import KeyMaterialError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from servers import Server, free_port, start_moto, start_openbao

if TYPE_CHECKING:
    from collections.abc import Iterator

REGION = "us-east-1"


class RecordingMasker:
    def __init__(self) -> None:
        self.values: list[str] = []

    def __call__(self, value: str) -> None:
        self.values.append(value)

    def covers(self, text: str) -> bool:
        masked_lines = {line for value in self.values for line in value.splitlines()}
        return text in self.values or all(
            line in masked_lines for line in text.splitlines() if line.strip()
        )


def der_of(pem: bytes) -> bytes:
    return base64.b64decode(b"".join(x for x in pem.splitlines() if not x.startswith(b"-----")))


def assert_no_material(err: KeyMaterialError, pem: bytes) -> None:
    text = str(err) + err.diagnostics()
    assert "-----BEGIN" not in text
    for line in pem.splitlines():
        if not line.startswith(b"-----"):
            assert line.decode() not in text


def verifies(signer: dsse.Signer, public: crypto.PublicKey) -> bool:
    """Sign a channel manifest through DSSE and verify it against ``public``."""
    envelope = dsse.sign(dsse.PAYLOAD_TYPE_CHANNEL, b'{"version": 1}', [signer])
    dsse.verify(
        dsse.Envelope.from_json(envelope.to_json()),
        payload_type=dsse.PAYLOAD_TYPE_CHANNEL,
        keys={public.keyid: public},
        keyids=[public.keyid],
        threshold=1,
        role="channel:beta",
    )
    return True


@pytest.fixture(scope="module")
def signing_pem() -> bytes:
    return crypto.generate_signing_key().to_pem()


@pytest.fixture
def mask() -> RecordingMasker:
    return RecordingMasker()


# --- AWS (moto server) ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def moto() -> Iterator[Server]:
    server = start_moto()
    yield server
    server.stop()


@pytest.fixture
def aws(moto: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """boto3 pointed at moto through the usual environment, nothing else reachable."""
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_DEFAULT_REGION",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    import boto3

    return boto3.session.Session(region_name=REGION)


def _name(prefix: str) -> str:
    return f"{prefix}-{time.monotonic_ns()}"


def test_secrets_manager_string_pem(aws, signing_pem, mask):
    name = _name("otaseal/pem")
    aws.client("secretsmanager").create_secret(Name=name, SecretString=signing_pem.decode())
    signer = secrets.resolve_signer(f"aws-sm://{name}", role="channel:beta", mask=mask)
    assert signer.keyid == crypto.load_signing_key(signing_pem).keyid
    assert mask.values[0] == signing_pem.decode()


def test_secrets_manager_json_field_holding_base64(aws, signing_pem, mask):
    name = _name("otaseal/json")
    b64 = base64.b64encode(signing_pem).decode()
    doc = json.dumps({"beta": b64, "production": "other"})
    aws.client("secretsmanager").create_secret(Name=name, SecretString=doc)
    data = secrets.resolve_bytes(f"aws-sm://{name}#beta", what="the signing key", mask=mask)
    assert data == signing_pem.strip()
    assert mask.values[:2] == [doc, b64]  # the whole secret string first, then the field
    assert mask.covers(signing_pem.decode())


def test_secrets_manager_by_arn(aws, signing_pem, mask):
    created = aws.client("secretsmanager").create_secret(
        Name=_name("otaseal/arn"), SecretString=signing_pem.decode()
    )
    assert secrets.resolve_bytes(f"aws-sm://{created['ARN']}", what="k", mask=mask).startswith(
        b"-----BEGIN"
    )


def test_secrets_manager_binary_der(aws, signing_pem, mask):
    name = _name("otaseal/bin")
    der = der_of(signing_pem)
    aws.client("secretsmanager").create_secret(Name=name, SecretBinary=der)
    signer = secrets.resolve_signer(f"aws-sm://{name}", role="channel:beta", mask=mask)
    assert signer.keyid == crypto.load_signing_key(signing_pem).keyid
    assert base64.b64encode(der).decode() in mask.values


def test_secrets_manager_missing_secret(aws, mask):
    with pytest.raises(KeyMaterialError) as info:
        secrets.resolve_bytes("aws-sm://prod/otaseal", what="the signing key", mask=mask)
    assert (
        "aws-sm://prod/otaseal (the signing key): the secret does not exist "
        "(ResourceNotFoundException)"
    ) in str(info.value)


def test_secrets_manager_missing_field_lists_names_not_values(aws, signing_pem, mask):
    name = _name("otaseal/fields")
    doc = {"production": signing_pem.decode(), "root": "zzz-secret-zzz"}
    aws.client("secretsmanager").create_secret(Name=name, SecretString=json.dumps(doc))
    with pytest.raises(KeyMaterialError) as info:
        secrets.resolve_bytes(f"aws-sm://{name}#beta", what="k", mask=mask)
    text = info.value.diagnostics()
    assert "field 'beta' not found; fields present: production, root" in text
    assert "zzz-secret-zzz" not in text
    assert_no_material(info.value, signing_pem)
    assert json.dumps(doc) in mask.values


def test_secrets_manager_json_without_field_asks_for_one(aws, mask):
    name = _name("otaseal/nofield")
    aws.client("secretsmanager").create_secret(Name=name, SecretString='{"beta": "x"}')
    with pytest.raises(KeyMaterialError, match="JSON with fields beta"):
        secrets.resolve_bytes(f"aws-sm://{name}", what="k", mask=mask)


def test_secrets_manager_field_on_plain_and_binary_secrets(aws, signing_pem, mask):
    client = aws.client("secretsmanager")
    plain, binary = _name("otaseal/plain"), _name("otaseal/binary")
    client.create_secret(Name=plain, SecretString=signing_pem.decode())
    client.create_secret(Name=binary, SecretBinary=der_of(signing_pem))
    with pytest.raises(KeyMaterialError, match="not a JSON object, so #beta selects nothing"):
        secrets.resolve_bytes(f"aws-sm://{plain}#beta", what="k", mask=mask)
    with pytest.raises(KeyMaterialError, match="binary, so #beta selects nothing"):
        secrets.resolve_bytes(f"aws-sm://{binary}#beta", what="k", mask=mask)


def test_secrets_manager_field_that_is_not_a_string(aws, mask):
    name = _name("otaseal/number")
    aws.client("secretsmanager").create_secret(Name=name, SecretString='{"beta": 42}')
    with pytest.raises(KeyMaterialError, match="field 'beta' is a int, not a string"):
        secrets.resolve_bytes(f"aws-sm://{name}#beta", what="k", mask=mask)


def test_aws_without_credentials(aws, monkeypatch, mask):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(KeyMaterialError, match="no AWS credentials were found"):
        secrets.resolve_bytes("aws-sm://prod/otaseal", what="k", mask=mask)


def test_aws_without_region(aws, monkeypatch, mask):
    monkeypatch.delenv("AWS_REGION")
    with pytest.raises(KeyMaterialError, match="no AWS region is configured"):
        secrets.resolve_signer("kms://alias/otaseal", role="root", mask=mask)


def test_aws_unreachable(aws, monkeypatch, mask):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(KeyMaterialError, match=r"could not reach AWS \(EndpointConnectionError\)"):
        secrets.resolve_bytes("aws-sm://prod/otaseal", what="k", mask=mask)


def _kms_key(aws: Any, spec: str, usage: str = "SIGN_VERIFY") -> dict[str, Any]:
    meta: dict[str, Any] = aws.client("kms").create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
    return meta


def test_kms_signer_signatures_verify_with_its_public_key(aws, mask):
    meta = _kms_key(aws, "ECC_NIST_P256")
    signer = secrets.resolve_signer(f"kms://{meta['KeyId']}", role="channel:beta", mask=mask)
    der = aws.client("kms").get_public_key(KeyId=meta["KeyId"])["PublicKey"]
    public = crypto.public_key_from_der("ecdsa-p256-sha256", der)
    assert signer.public == public
    assert signer.keyid == crypto.keyid_of(der)
    assert verifies(signer, public)
    assert mask.values == []  # nothing secret entered the process


def test_kms_alias_is_pinned_to_the_key_arn(aws, mask):
    meta = _kms_key(aws, "ECC_NIST_P256")
    alias = _name("alias/otaseal")
    aws.client("kms").create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
    signer = secrets.resolve_signer(f"kms://{alias}", role="channel:beta", mask=mask)
    assert isinstance(signer, secrets.KmsSigner)
    assert signer.key_arn == meta["Arn"]
    assert verifies(signer, signer.public)


def test_kms_rsa_key_is_the_wrong_type(aws, mask):
    meta = _kms_key(aws, "RSA_2048")
    with pytest.raises(KeyMaterialError) as info:
        secrets.resolve_signer(f"kms://{meta['KeyId']}", role="channel:beta", mask=mask)
    assert (
        f"KMS key {meta['KeyId']} is RSA_2048 SIGN_VERIFY, expected ECC_NIST_P256 SIGN_VERIFY"
        in str(info.value)
    )


def test_kms_encryption_key_is_the_wrong_type(aws, mask):
    meta = _kms_key(aws, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    with pytest.raises(KeyMaterialError, match="is SYMMETRIC_DEFAULT ENCRYPT_DECRYPT, expected"):
        secrets.resolve_signer(f"kms://{meta['KeyId']}", role="root", mask=mask)


def test_kms_disabled_key(aws, mask):
    meta = _kms_key(aws, "ECC_NIST_P256")
    aws.client("kms").disable_key(KeyId=meta["KeyId"])
    with pytest.raises(KeyMaterialError, match="is Disabled"):
        secrets.resolve_signer(f"kms://{meta['KeyId']}", role="root", mask=mask)


def test_kms_missing_key(aws, mask):
    ref = "kms://11111111-2222-3333-4444-555555555555"
    with pytest.raises(KeyMaterialError) as info:
        secrets.resolve_signer(ref, role="channel:beta", mask=mask)
    assert f"{ref} (the signing key for channel:beta): the key does not exist" in str(info.value)


def test_kms_key_gone_after_resolving_fails_clearly_at_signing(aws, mask):
    meta = _kms_key(aws, "ECC_NIST_P256")
    signer = secrets.resolve_signer(f"kms://{meta['KeyId']}", role="root", mask=mask)
    assert isinstance(signer, secrets.KmsSigner)
    gone = dataclasses.replace(signer, key_arn=meta["Arn"].rsplit("/", 1)[0] + "/" + "0" * 36)
    with pytest.raises(KeyMaterialError, match=r"signer\): the key does not exist \(NotFound"):
        gone.sign(b"DSSEv1 ...")


# --- Vault KV v2 and transit (OpenBao) -----------------------------------------------------------
@pytest.fixture(scope="module")
def openbao() -> Iterator[Server]:
    server = start_openbao()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bao(openbao: Server) -> Any:
    import hvac

    client = hvac.Client(url=openbao.url, token=openbao.extra["token"])
    client.sys.enable_secrets_engine("transit", path="transit")
    client.sys.create_or_update_policy(
        "read-otaseal", 'path "secret/data/otaseal" { capabilities = ["read"] }'
    )
    return client


@pytest.fixture
def vault_env(openbao: Server) -> dict[str, str]:
    return {"VAULT_ADDR": openbao.url, "VAULT_TOKEN": openbao.extra["token"]}


def test_vault_kv_field_with_token_auth(bao, vault_env, signing_pem, mask):
    bao.secrets.kv.v2.create_or_update_secret(
        path="otaseal", secret={"beta": signing_pem.decode(), "production": "x"}
    )
    signer = secrets.resolve_signer(
        "vault://secret/otaseal#beta", role="channel:beta", mask=mask, env=vault_env
    )
    assert signer.keyid == crypto.load_signing_key(signing_pem).keyid
    assert vault_env["VAULT_TOKEN"] in mask.values
    assert mask.covers(signing_pem.decode())


def test_vault_kv_single_field_needs_no_fragment(bao, vault_env, signing_pem, mask):
    b64 = base64.b64encode(signing_pem).decode()
    bao.secrets.kv.v2.create_or_update_secret(path="apps/single", secret={"key": b64})
    data = secrets.resolve_bytes("vault://secret/apps/single", what="k", mask=mask, env=vault_env)
    assert data == signing_pem.strip()
    assert b64 in mask.values


def test_vault_kv_several_fields_need_a_fragment(bao, vault_env, mask):
    bao.secrets.kv.v2.create_or_update_secret(path="apps/two", secret={"a": "1", "b": "2"})
    with pytest.raises(KeyMaterialError, match="the secret has fields a, b"):
        secrets.resolve_bytes("vault://secret/apps/two", what="k", mask=mask, env=vault_env)


def test_vault_kv_missing_path(bao, vault_env, mask):
    with pytest.raises(KeyMaterialError) as info:
        secrets.resolve_bytes(
            "vault://secret/nothing-here#beta", what="k", mask=mask, env=vault_env
        )
    assert "vault://secret/nothing-here#beta (k): reading secret/nothing-here: nothing there" in (
        str(info.value)
    )


def test_vault_kv_missing_field_lists_names_not_values(bao, vault_env, signing_pem, mask):
    bao.secrets.kv.v2.create_or_update_secret(
        path="apps/prod", secret={"production": signing_pem.decode(), "root": "zzz-secret-zzz"}
    )
    with pytest.raises(KeyMaterialError) as info:
        secrets.resolve_bytes("vault://secret/apps/prod#beta", what="k", mask=mask, env=vault_env)
    text = info.value.diagnostics()
    assert "vault://secret/apps/prod#beta (k): field 'beta' not found; fields present: " in text
    assert "production, root" in text
    assert "zzz-secret-zzz" not in text
    assert_no_material(info.value, signing_pem)


def test_vault_token_without_permission(bao, openbao, signing_pem, mask):
    bao.secrets.kv.v2.create_or_update_secret(path="other", secret={"k": signing_pem.decode()})
    limited = bao.auth.token.create(policies=["read-otaseal"], ttl="5m")["auth"]["client_token"]
    env = {"VAULT_ADDR": openbao.url, "VAULT_TOKEN": limited}
    with pytest.raises(KeyMaterialError, match="Vault denied access"):
        secrets.resolve_bytes("vault://secret/other#k", what="k", mask=mask, env=env)
    assert limited in mask.values


def test_vault_unreachable(mask):
    env = {"VAULT_ADDR": f"http://127.0.0.1:{free_port()}", "VAULT_TOKEN": "t"}
    with pytest.raises(KeyMaterialError, match="could not reach Vault"):
        secrets.resolve_bytes("vault://secret/otaseal#beta", what="k", mask=mask, env=env)


def test_vault_kv_v1_style_answer_is_refused(bao, vault_env, mask):
    bao.sys.enable_secrets_engine("kv", path="kv1", options={"version": "1"})
    bao.write("kv1/otaseal", beta="x")
    with pytest.raises(KeyMaterialError) as info:
        secrets.resolve_bytes("vault://kv1/otaseal#beta", what="k", mask=mask, env=vault_env)
    assert "reading kv1/otaseal: nothing there" in str(info.value)
    assert "KV version 2" in info.value.fix


def test_transit_signer_verifies_locally(bao, vault_env, mask):
    bao.secrets.transit.create_key(name="otaseal-beta", key_type="ecdsa-p256")
    signer = secrets.resolve_signer(
        "vault-transit://otaseal-beta", role="channel:beta", mask=mask, env=vault_env
    )
    pem = bao.secrets.transit.read_key(name="otaseal-beta")["data"]["keys"]["1"]["public_key"]
    public = crypto.load_public_key(pem.encode())
    assert signer.public == public
    assert verifies(signer, public)
    assert mask.values == [vault_env["VAULT_TOKEN"]]  # only the token; the key stays in Vault


def test_transit_signer_stays_on_its_key_version_after_rotation(bao, vault_env, mask):
    bao.secrets.transit.create_key(name="otaseal-rot", key_type="ecdsa-p256")
    signer = secrets.resolve_signer(
        "vault-transit://transit/otaseal-rot", role="root", mask=mask, env=vault_env
    )
    bao.secrets.transit.rotate_key(name="otaseal-rot")
    assert verifies(signer, signer.public)


def test_transit_rsa_key_is_the_wrong_type(bao, vault_env, mask):
    bao.secrets.transit.create_key(name="otaseal-rsa", key_type="rsa-2048")
    with pytest.raises(KeyMaterialError) as info:
        secrets.resolve_signer("vault-transit://otaseal-rsa", role="root", mask=mask, env=vault_env)
    assert "Vault transit key transit/otaseal-rsa is rsa-2048, expected ecdsa-p256" in str(
        info.value
    )


def test_transit_missing_key(bao, vault_env, mask):
    with pytest.raises(KeyMaterialError, match="reading the transit key transit/none"):
        secrets.resolve_signer("vault-transit://none", role="root", mask=mask, env=vault_env)


def test_transit_key_deleted_after_resolving(bao, vault_env, mask):
    bao.secrets.transit.create_key(name="otaseal-gone", key_type="ecdsa-p256")
    signer = secrets.resolve_signer(
        "vault-transit://otaseal-gone", role="r", mask=mask, env=vault_env
    )
    bao.secrets.transit.update_key_configuration(name="otaseal-gone", deletion_allowed=True)
    bao.secrets.transit.delete_key(name="otaseal-gone")
    with pytest.raises(KeyMaterialError, match="signing with transit/otaseal-gone"):
        signer.sign(b"DSSEv1 ...")


# --- GitHub OIDC → Vault jwt login ---------------------------------------------------------------
ISSUER = "https://token.actions.githubusercontent.com"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class FakeRunnerTokenEndpoint:
    """The runner's ``ACTIONS_ID_TOKEN_REQUEST_URL``: checks the bearer, mints an RS256 JWT."""

    def __init__(self, request_token: str) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_pem = (
            self.key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        self.request_token = request_token
        self.issued: list[str] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.headers.get("Authorization") != f"bearer {endpoint.request_token}":
                    self.send_response(401)
                    self.end_headers()
                    return
                query = parse_qs(urlparse(self.path).query)
                jwt = endpoint.mint(query.get("audience", ["https://github.com/org"])[0])
                body = json.dumps({"count": 1, "value": jwt}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/_apis/token?api-version=2.0"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def mint(self, audience: str) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        now = int(time.time())
        header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "test"}).encode())
        claims = {
            "iss": ISSUER,
            "aud": audience,
            "sub": "repo:org/app:ref:refs/heads/main",
            "repository": "org/app",
            "ref": "refs/heads/main",
            "iat": now,
            "nbf": now - 5,
            "exp": now + 300,
        }
        payload = _b64url(json.dumps(claims).encode())
        signature = self.key.sign(
            f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        jwt = f"{header}.{payload}.{_b64url(signature)}"
        self.issued.append(jwt)
        return jwt

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def runner_token() -> Iterator[FakeRunnerTokenEndpoint]:
    endpoint = FakeRunnerTokenEndpoint("runner-request-token-1234")
    yield endpoint
    endpoint.close()


@pytest.fixture(scope="module")
def jwt_auth(bao, runner_token) -> str:
    """OpenBao's jwt auth trusting the stand-in's key, with a role bound to our audience."""
    bao.sys.enable_auth_method("jwt", path="github")
    bao.write(
        "auth/github/config", jwt_validation_pubkeys=[runner_token.public_pem], bound_issuer=ISSUER
    )
    bao.write(
        "auth/github/role/otaseal-ci",
        role_type="jwt",
        user_claim="sub",
        bound_audiences=["otaseal"],
        bound_claims={"repository": "org/app"},
        token_policies=["read-otaseal"],
        token_ttl="5m",
    )
    return "otaseal-ci"


@pytest.fixture
def oidc_env(openbao, runner_token, jwt_auth) -> dict[str, str]:
    return {
        "VAULT_ADDR": openbao.url,
        "VAULT_ROLE": jwt_auth,
        "VAULT_JWT_MOUNT": "github",
        "ACTIONS_ID_TOKEN_REQUEST_URL": runner_token.url,
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": runner_token.request_token,
    }


def test_github_oidc_login_reads_the_key(bao, oidc_env, runner_token, signing_pem, mask):
    bao.secrets.kv.v2.create_or_update_secret(
        path="otaseal", secret={"beta": signing_pem.decode(), "production": "x"}
    )
    signer = secrets.resolve_signer(
        "vault://secret/otaseal#beta", role="channel:beta", mask=mask, env=oidc_env
    )
    assert signer.keyid == crypto.load_signing_key(signing_pem).keyid
    jwt = runner_token.issued[-1]
    assert json.loads(base64.urlsafe_b64decode(jwt.split(".")[1] + "=="))["aud"] == "otaseal"
    # request token, then the JWT, then the Vault token: each masked before it is used
    assert mask.values[0] == runner_token.request_token
    assert mask.values[1] == jwt
    vault_token = mask.values[2]
    assert bao.auth.token.lookup(vault_token)["data"]["policies"] == ["default", "read-otaseal"]
    assert mask.covers(signing_pem.decode())


def test_github_oidc_wrong_audience_is_rejected_by_vault(oidc_env, runner_token, mask):
    env = dict(oidc_env, VAULT_AUDIENCE="someone-else")
    with pytest.raises(KeyMaterialError) as info:
        secrets.resolve_bytes("vault://secret/otaseal#beta", what="k", mask=mask, env=env)
    text = info.value.diagnostics()
    assert "jwt login at auth/github as role 'otaseal-ci': Vault rejected the request" in text
    assert runner_token.issued[-1] not in text
    assert runner_token.issued[-1] in mask.values


def test_github_oidc_runner_refuses_a_bad_request_token(oidc_env, mask):
    env = dict(oidc_env, ACTIONS_ID_TOKEN_REQUEST_TOKEN="wrong")
    with pytest.raises(KeyMaterialError, match=r"refused the ID token request \(HTTP 401\)"):
        secrets.resolve_bytes("vault://secret/otaseal#beta", what="k", mask=mask, env=env)


def test_github_oidc_token_is_not_enough_outside_the_role_policy(bao, oidc_env, mask):
    bao.secrets.kv.v2.create_or_update_secret(path="elsewhere", secret={"k": "x"})
    with pytest.raises(KeyMaterialError, match="Vault denied access"):
        secrets.resolve_bytes("vault://secret/elsewhere#k", what="k", mask=mask, env=oidc_env)


# --- the Capgo format's RSA key ------------------------------------------------------------------
@pytest.fixture(scope="module")
def capgo_pem() -> bytes:
    return crypto.generate_capgo_key().to_pem()


def test_capgo_key_from_secrets_manager_binary_der(aws, capgo_pem, mask):
    """A PKCS#1 key stored as DER bytes in a binary secret."""
    from cryptography.hazmat.primitives import serialization

    der = serialization.load_pem_private_key(capgo_pem, None).private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    name = _name("otaseal/capgo")
    aws.client("secretsmanager").create_secret(Name=name, SecretBinary=der)
    key = secrets.resolve_capgo_key(f"aws-sm://{name}", mask=mask)
    assert key.public == crypto.load_capgo_private_key(capgo_pem).public
    assert base64.b64encode(der).decode() in mask.values


def test_capgo_key_from_vault_kv(bao, vault_env, capgo_pem, mask):
    bao.secrets.kv.v2.create_or_update_secret(path="capgo", secret={"key": capgo_pem.decode()})
    key = secrets.resolve_capgo_key("vault://secret/capgo#key", mask=mask, env=vault_env)
    assert key.public == crypto.load_capgo_private_key(capgo_pem).public
    assert mask.covers(capgo_pem.decode())


def test_capgo_key_in_a_transit_engine_is_refused_before_any_call(mask):
    with pytest.raises(KeyMaterialError, match="remote signer cannot make Capgo") as caught:
        secrets.resolve_capgo_key("vault-transit://transit/capgo", mask=mask, env={})
    assert "aws-sm:// or vault://" in caught.value.diagnostics()
