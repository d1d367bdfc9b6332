"""``pip install otaseal`` without extras: each optional module names the extra that brings it.

The missing module is simulated by a ``None`` entry in ``sys.modules``, which makes ``import``
raise ``ModuleNotFoundError`` exactly as an absent package does.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from otaseal.cli import main
from otaseal.errors import InputError
from otaseal.operations import open_store
from otaseal.secrets import resolve_bytes, resolve_signer


def _without(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def test_s3_store_without_boto3_names_the_s3_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _without(monkeypatch, "boto3")

    with pytest.raises(InputError) as caught:
        open_store("s3://bucket/prefix")

    text = caught.value.diagnostics()
    assert "the store s3://bucket/prefix needs the Python package boto3" in text
    assert "pip install 'otaseal[s3]'" in text
    assert caught.value.exit_code == 2


def test_s3_store_from_the_cli_is_one_paragraph_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], project_dir: Path
) -> None:
    _without(monkeypatch, "boto3")
    monkeypatch.chdir(project_dir)

    code = main(["status", "--store", "s3://bucket/prefix"])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("otaseal: error: the store s3://bucket/prefix needs")
    assert "otaseal[s3]" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("ref", ["aws-sm://prod/otaseal#beta", "kms://alias/otaseal-beta"])
def test_aws_references_without_boto3_name_the_s3_extra(
    ref: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without(monkeypatch, "boto3")

    with pytest.raises(InputError) as caught:
        resolve_signer(ref, role="beta", mask=lambda _: None, env={})

    text = caught.value.diagnostics()
    assert f"{ref} (the signing key for beta) needs the Python package boto3" in text
    assert "pip install 'otaseal[s3]'" in text


def test_vault_reference_without_hvac_names_the_vault_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _without(monkeypatch, "hvac")

    with pytest.raises(InputError) as caught:
        resolve_bytes(
            "vault://secret/otaseal#beta",
            what="the signing key for beta",
            mask=lambda _: None,
            env={"VAULT_ADDR": "http://127.0.0.1:1"},
        )

    text = caught.value.diagnostics()
    assert "needs the Python package hvac" in text
    assert "pip install 'otaseal[vault]'" in text


@pytest.mark.parametrize("module", ["starlette", "uvicorn", "msgspec"])
def test_serve_without_its_extra_names_it(
    module: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    _without(monkeypatch, module)

    code = main(["serve", "--store", str(tmp_path)])

    err = capsys.readouterr().err
    assert code == 2
    assert f"otaseal serve needs the Python package {module}" in err
    assert "pip install 'otaseal[serve]'" in err


def test_postgres_stats_without_psycopg_names_the_postgres_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from otaseal.serve.db import open_stats

    _without(monkeypatch, "psycopg", "psycopg_pool")
    monkeypatch.delitem(sys.modules, "otaseal.serve.postgres", raising=False)

    with pytest.raises(InputError) as caught:
        open_stats("postgresql://otaseal@127.0.0.1:1/stats")

    assert "pip install 'otaseal[postgres]'" in caught.value.diagnostics()
