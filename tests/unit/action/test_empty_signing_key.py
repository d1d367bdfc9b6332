"""An empty ``signing-key`` input names the input and the secret, whatever otaseal.yml holds."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from otaseal.action.entrypoint import secret_name, verify_config_key
from otaseal.config import load_config
from otaseal.errors import InputError


@pytest.mark.parametrize(
    ("channel", "secret"),
    [
        ("beta", "OTASEAL_BETA_KEY"),
        ("production", "OTASEAL_PRODUCTION_KEY"),
        ("eu.prod-2", "OTASEAL_EU_PROD_2_KEY"),
    ],
)
def test_secret_names(channel: str, secret: str) -> None:
    assert secret_name(channel) == secret


@pytest.mark.parametrize(
    ("ref", "env", "says"),
    [
        (None, {}, "otaseal.yml names no key for beta under `keys:`"),
        ("file:/nowhere/beta.pem", {}, "is file:/nowhere/beta.pem, which does not exist here"),
        ("env:OTASEAL_BETA_KEY", {}, "is env:OTASEAL_BETA_KEY, which is not set or empty"),
        ("env:OTASEAL_BETA_KEY", {"OTASEAL_BETA_KEY": " "}, "which is not set or empty"),
    ],
)
def test_an_unusable_fallback_names_the_input_and_the_secret(
    ref: str | None, env: dict[str, str], says: str, project_dir: Path
) -> None:
    config = load_config(project_dir / "otaseal.yml")
    keys = {k: v for k, v in config.keys.items() if k != "beta"}
    config = dataclasses.replace(config, keys=keys if ref is None else {**keys, "beta": ref})

    with pytest.raises(InputError) as caught:
        verify_config_key(config, "beta", env)

    text = caught.value.diagnostics()
    assert text.startswith("the input 'signing-key' is empty (a secret that is not set")
    assert says in text
    assert "`signing-key: ${{ secrets.OTASEAL_BETA_KEY }}`" in text


@pytest.mark.parametrize(
    ("ref", "env"),
    [
        ("env:OTASEAL_BETA_KEY", {"OTASEAL_BETA_KEY": "set"}),
        ("kms://alias/otaseal-beta", {}),
        ("vault://secret/otaseal#beta", {}),
    ],
)
def test_a_usable_fallback_is_left_to_the_key_resolver(
    ref: str, env: dict[str, str], project_dir: Path
) -> None:
    config = load_config(project_dir / "otaseal.yml")

    verify_config_key(dataclasses.replace(config, keys={"beta": ref}), "beta", env)
    verify_config_key(config, "beta", {})  # file:keys/beta.pem exists in a fresh project
