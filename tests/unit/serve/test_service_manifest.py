"""Manifest mode's download URLs: one presigned GET per body, reused for half its life."""

from __future__ import annotations

from otaseal.serve.service import PresignedUrls, PublicUrls, ServedUrls

APP = "com.example.app"
SHA = "ab" * 32


class Signer:
    def __init__(self) -> None:
        self.signed: list[str] = []

    def presign(self, key: str, expires: int) -> str:
        self.signed.append(key)
        return f"https://s3.example.com/{key}?X-Amz-Expires={expires}&n={len(self.signed)}"


def test_presigned_file_urls_are_reused_for_half_their_life_then_signed_again():
    clock = [1000.0]
    signer = Signer()
    urls = PresignedUrls(signer, 3600, monotonic=lambda: clock[0])
    first = urls.file_url(APP, SHA, own_base="")
    clock[0] += 1799
    assert urls.file_url(APP, SHA, own_base="") == first
    clock[0] += 2
    assert urls.file_url(APP, SHA, own_base="") != first
    assert signer.signed == [f"{APP}/capgo-files/{SHA}"] * 2


def test_public_and_served_file_urls():
    assert PublicUrls("https://cdn.example.com/u/").file_url(APP, SHA, own_base="x") == (
        f"https://cdn.example.com/u/{APP}/capgo-files/{SHA}"
    )
    assert ServedUrls().file_url(APP, SHA, own_base="http://127.0.0.1:8765/") == (
        f"http://127.0.0.1:8765/files/{APP}/{SHA}"
    )
