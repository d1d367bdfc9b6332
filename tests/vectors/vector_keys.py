"""The vectors' fixed TEST keys: every private value is SHA-256 of a public label (or two fixed
RSA primes), so anyone can rebuild them; tests/vectors/README.md prints them all.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from otaseal.crypto import (
    CapgoPrivateKey,
    DecryptionKey,
    SigningKey,
    capgo_key_from_primes,
    decryption_key_from_scalar,
    load_signing_key,
    signing_key_from_scalar,
)

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
ED25519_PKCS8_PREFIX = bytes.fromhex("302e020100300506032b657004220420")

# The Capgo format's RSA-2048 TEST key: two fixed primes, e = 65537.
CAPGO_P = int(
    "e43b547a623ae68fb8f35dfd20ce8188f9682253e5df0d8a6f23f4e396a53ee594d5f57627e4c9321ae2c52e939cd7"
    "150166357f4a8480fd90eacc10b5fe49ad9067fe930421ccddb0c98b8ac96557ce9c6240881eae3aff4e71f66ce7ae"
    "7e9e14e5776c9be144e560e1cbeb7e7ec8425bbf9a288f998e815594e14d02091c3b",
    16,
)
CAPGO_Q = int(
    "bd359f1cdf8d778fd9bce724b3490cd44f05b3eff0cb25e718f8ca252411cb3879e6f0a6909c85beb90e1b35d23e94"
    "178c1cada13aae0169af76bfa553463d10fb7aa267e62212ea5cb27008531d6880cffdfcced34c9839bc4d0fcbf67f"
    "898c62f3f56ea90098c1b46a26c21a66e4778a198655c125bc042aa42d048e7adb67",
    16,
)


def scalar(label: str) -> int:
    """A fixed private scalar: SHA-256 of a public label (so: a TEST key)."""
    value = int.from_bytes(hashlib.sha256(b"otaseal test vector key: " + label.encode()).digest())
    if not 0 < value < P256_ORDER:  # pragma: no cover - astronomically unlikely
        raise ValueError(label)
    return value


def ed25519_seed(label: str) -> bytes:
    """A fixed Ed25519 seed (TEST key)."""
    return hashlib.sha256(b"otaseal test vector key: " + label.encode()).digest()


@dataclass(frozen=True)
class VectorKeys:
    """Every key the vectors use, made from the labels above."""

    root: SigningKey
    root_2: SigningKey
    root_3: SigningKey
    beta: SigningKey
    beta_2: SigningKey
    beta_3: SigningKey
    production: SigningKey
    ed25519: SigningKey
    ed25519_root: SigningKey
    decryption: DecryptionKey
    decryption_2: DecryptionKey
    capgo: CapgoPrivateKey

    @classmethod
    def make(cls) -> VectorKeys:
        def ed(label: str) -> SigningKey:
            return load_signing_key(ED25519_PKCS8_PREFIX + ed25519_seed(label))

        return cls(
            root=signing_key_from_scalar(scalar("root")),
            root_2=signing_key_from_scalar(scalar("root-2")),
            root_3=signing_key_from_scalar(scalar("root-3")),
            beta=signing_key_from_scalar(scalar("beta")),
            beta_2=signing_key_from_scalar(scalar("beta-2")),
            beta_3=signing_key_from_scalar(scalar("beta-3")),
            production=signing_key_from_scalar(scalar("production")),
            ed25519=ed("ed25519"),
            ed25519_root=ed("ed25519-root"),
            decryption=decryption_key_from_scalar(scalar("app-decryption")),
            decryption_2=decryption_key_from_scalar(scalar("app-decryption-2")),
            capgo=capgo_key_from_primes(CAPGO_P, CAPGO_Q),
        )


def ecdsa_der_to_raw(der: bytes) -> bytes:
    """DER ``SEQUENCE { INTEGER r, INTEGER s }`` to the 64-byte ``r ‖ s`` WebCrypto verifies."""
    if der[0] != 0x30 or der[1] != len(der) - 2:
        raise ValueError("not a short-form DER SEQUENCE")
    out, pos = b"", 2
    for _ in range(2):
        if der[pos] != 0x02:
            raise ValueError("expected an INTEGER")
        size = der[pos + 1]
        value = der[pos + 2 : pos + 2 + size]
        out += int.from_bytes(value).to_bytes(32)
        pos += 2 + size
    return out


def key_entry(key: SigningKey, private: dict[str, str]) -> dict[str, str]:
    return {
        "algorithm": key.algorithm,
        **private,
        "public_spki_der_hex": key.public.der.hex(),
        "public_pem": key.public.to_pem().decode(),
        "keyid": key.keyid,
    }


def keys_vector(keys: VectorKeys) -> dict[str, Any]:
    def ecdsa(label: str, key: SigningKey) -> dict[str, str]:
        return key_entry(key, {"private_scalar_hex": f"{scalar(label):064x}"})

    def ed(label: str, key: SigningKey) -> dict[str, str]:
        return key_entry(key, {"private_seed_hex": ed25519_seed(label).hex()})

    def decryption(label: str, key: DecryptionKey) -> dict[str, str]:
        return {
            "algorithm": "hpke-p256 (DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM)",
            "private_scalar_hex": f"{scalar(label):064x}",
            "private_pkcs8_pem": key.to_pem().decode(),
            "public_spki_der_hex": key.public.der.hex(),
            "public_pem": key.public.to_pem().decode(),
            "keyid": key.public.keyid,
        }

    return {
        "WARNING": "TEST KEYS. The private halves are public. Never trust them anywhere.",
        "derivation": "ECDSA P-256 scalar / Ed25519 seed = SHA-256('otaseal test vector key: ' "
        "+ label), big-endian",
        "signing": {
            "root": ecdsa("root", keys.root),
            "root-2": ecdsa("root-2", keys.root_2),
            "root-3": ecdsa("root-3", keys.root_3),
            "beta": ecdsa("beta", keys.beta),
            "beta-2": ecdsa("beta-2", keys.beta_2),
            "beta-3": ecdsa("beta-3", keys.beta_3),
            "production": ecdsa("production", keys.production),
            "ed25519": ed("ed25519", keys.ed25519),
            "ed25519-root": ed("ed25519-root", keys.ed25519_root),
        },
        "decryption": {
            "app-decryption": decryption("app-decryption", keys.decryption),
            "app-decryption-2": decryption("app-decryption-2", keys.decryption_2),
        },
        "capgo": {
            "algorithm": "rsa-2048-pkcs1 (the Capgo format: session key and V3 checksum)",
            "p_hex": f"{CAPGO_P:x}",
            "q_hex": f"{CAPGO_Q:x}",
            "e": 65537,
            "private_pem": keys.capgo.to_pem().decode(),
            "public_pem": keys.capgo.public.pem.decode(),
            "key_id": keys.capgo.public.key_id,
        },
    }
