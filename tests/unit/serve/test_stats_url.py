"""``--stats URL`` forms: what is accepted, what is refused, and that passwords never show."""

from __future__ import annotations

from pathlib import Path

import pytest

from otaseal.errors import InputError
from otaseal.serve.stats_url import StatsUrl, parse_stats_url, redact


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///var/lib/otaseal/stats.db", Path("/var/lib/otaseal/stats.db")),
        ("sqlite:////var/lib/otaseal/stats.db", Path("/var/lib/otaseal/stats.db")),
        ("SQLITE:///tmp/x.db", Path("/tmp/x.db")),
        ("sqlite:stats.db", Path("stats.db")),
        ("sqlite:data/stats.db", Path("data/stats.db")),
        ("sqlite:///tmp/with%20space.db", Path("/tmp/with space.db")),
    ],
)
def test_sqlite_forms(url: str, path: Path) -> None:
    assert parse_stats_url(url) == StatsUrl("sqlite", path=path)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://otaseal@127.0.0.1:5432/stats",
        "postgres://otaseal:pw@db.internal/stats?sslmode=require",
        "postgresql:///stats?host=/run/postgresql",
    ],
)
def test_postgres_forms_are_passed_as_given(url: str) -> None:
    assert parse_stats_url(url) == StatsUrl("postgres", conninfo=url)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("stats.db", "has no scheme"),
        ("mysql://x/y", "unknown scheme 'mysql'"),
        ("sqlite://host/stats.db", "names the host 'host'"),
        ("sqlite://", "has no file path"),
        ("sqlite:///", "has no file path"),
        ("sqlite:", "does not name a file"),
        ("sqlite::memory:", "does not name a file"),
        ("sqlite:///tmp/", "does not name a file"),
        ("sqlite:///tmp/x.db?mode=ro", "query or fragment"),
        ("postgresql:stats", "expected // after the scheme"),
        ("postgresql://u:pw@h:notaport/db", "is not a valid URL"),
    ],
)
def test_bad_urls_are_one_paragraph_input_errors(url: str, why: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_stats_url(url)
    text = caught.value.diagnostics()
    assert why in text
    assert "\n" not in text
    assert "sqlite:///absolute/path.db" in text
    assert caught.value.exit_code == 2
    assert "pw" not in text


def test_str_never_shows_a_password() -> None:
    target = parse_stats_url("postgresql://otaseal:hunter2@db:5432/stats?password=hunter3")
    assert "hunter" not in str(target)
    assert str(target).startswith("postgresql://otaseal:***@db:5432/stats")
    assert str(parse_stats_url("sqlite:///tmp/s.db")) == "/tmp/s.db"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:secret@h/db", "postgresql://u:***@h/db"),
        ("postgresql://:secret@h/db", "postgresql://:***@h/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        (
            "postgresql://h/db?password=secret&sslmode=require",
            "postgresql://h/db?password=***&sslmode=require",
        ),
        ("postgresql://u:secret@h:bad/db", "postgresql://u:***@h:bad/db"),
        ("postgresql://u:secret@[::1/db", "<unparseable URL>"),
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_postgres_without_the_extra_is_an_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from otaseal.serve.stats_url import open_stats

    monkeypatch.setitem(sys.modules, "otaseal.serve.postgres", None)
    with pytest.raises(InputError, match="needs the postgres extra") as caught:
        open_stats("postgresql://otaseal:pw@127.0.0.1/stats")
    assert "pip install 'otaseal[postgres]'" in caught.value.diagnostics()
    assert ":pw@" not in caught.value.diagnostics()
