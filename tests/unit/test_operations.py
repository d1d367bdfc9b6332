from __future__ import annotations

from pathlib import Path

import pytest

from otaseal import operations as ops
from otaseal.crypto import load_decryption_key
from otaseal.errors import InputError, KeyMaterialError, StoreError
from otaseal.store import index_key, pointer_key


def _variant(web: Path, tmp_path: Path, text: str) -> Path:
    import shutil

    target = tmp_path / f"web-{text}"
    shutil.copytree(web, target)
    (target / "index.html").write_text(f"<!doctype html><p>{text}</p>")
    return target


def test_publish_then_same_build_is_a_noop(project: ops.Project, web: Path) -> None:
    notices: list[str] = []
    first = ops.publish(project, web, channel="beta", label="1.0.0", commit="a" * 40, pr=12)
    assert not first.noop
    assert first.release.counter == 1
    assert first.change.manifest.version == 1
    again = ops.publish(project, web, channel="beta", label="1.0.1", notice=notices.append)
    assert again.noop
    assert again.change.manifest.version == 1
    assert "nothing published" in notices[-1]


def test_release_keeps_identity_across_channels(
    project: ops.Project, web: Path, tmp_path: Path
) -> None:
    beta = ops.publish(project, web, channel="beta", label="1.0.0", commit="c" * 40, pr=3)
    promoted = ops.promote(project, source="beta", target="production", rollout=10)
    prod = promoted.manifest.current
    assert prod is not None
    assert (prod.label, prod.counter, prod.sha256, prod.commit, prod.pr) == (
        "1.0.0",
        beta.release.counter,
        beta.release.sha256,
        "c" * 40,
        3,
    )
    assert prod.rollout_bp == 1000
    assert ops.promote(project, source="beta", target="production", rollout=10).noop
    raised = ops.set_rollout(project, channel="production", percent=50)
    assert raised.manifest.current and raised.manifest.current.rollout_salt == prod.rollout_salt
    paused = ops.set_rollout(project, channel="production", pause=True)
    assert paused.manifest.current and paused.manifest.current.paused
    resumed = ops.set_rollout(project, channel="production", resume=True)
    assert resumed.manifest.current and not resumed.manifest.current.paused
    second = ops.publish(project, _variant(web, tmp_path, "two"), channel="beta")
    assert second.release.label == f"r{second.release.counter}"
    assert second.release.counter == beta.release.counter + 1


def test_revert_previous_named_and_builtin(project: ops.Project, web: Path, tmp_path: Path) -> None:
    ops.publish(project, web, channel="beta", label="1.0.0")
    ops.publish(project, _variant(web, tmp_path, "b"), channel="beta", label="1.1.0")
    ops.publish(project, _variant(web, tmp_path, "c"), channel="beta", label="1.2.0")
    back = ops.revert(project, channel="beta")
    assert back.manifest.current and back.manifest.current.label == "1.1.0"
    assert [r.label for r in back.manifest.releases] == ["1.1.0", "1.0.0"]
    named = ops.revert(project, channel="beta", to="1.0.0")
    assert named.manifest.current and named.manifest.current.label == "1.0.0"
    with pytest.raises(InputError, match="no earlier release"):
        ops.revert(project, channel="beta")
    # 1.2.0 is no longer listed, but history still knows it
    forward = ops.revert(project, channel="beta", to="1.2.0")
    assert forward.manifest.current and forward.manifest.current.label == "1.2.0"
    builtin = ops.revert(project, channel="beta", to="builtin")
    assert builtin.manifest.builtin and builtin.manifest.current is None
    assert ops.revert(project, channel="beta", to="builtin").noop
    with pytest.raises(InputError, match="never on beta"):
        ops.revert(project, channel="beta", to="9.9.9")
    events = [m.event for m in ops.history(project, "beta")]
    assert events[0] == "publish 1.0.0"
    assert events[-1] == "revert to builtin"


def test_resign_refreshes_expiry(project: ops.Project, web: Path) -> None:
    first = ops.publish(project, web, channel="beta")
    again = ops.resign(project, channel="beta")
    assert again.manifest.version == first.change.manifest.version + 1
    assert again.manifest.releases == first.change.manifest.releases
    assert again.manifest.event == "resign"


def test_bad_operations_leave_store_unchanged(project: ops.Project, web: Path) -> None:
    with pytest.raises(InputError, match="no release yet"):
        ops.set_rollout(project, channel="beta", percent=10)
    with pytest.raises(InputError, match="no release"):
        ops.promote(project, source="beta", target="production")
    with pytest.raises(InputError, match="nothing to re-sign"):
        ops.resign(project, channel="beta")
    with pytest.raises(InputError, match="no release to revert"):
        ops.revert(project, channel="beta")
    ops.publish(project, web, channel="beta", label="1.0.0")
    with pytest.raises(InputError, match="not on beta"):
        ops.promote(project, source="beta", target="production", ref="2.0.0")
    with pytest.raises(InputError, match="both beta"):
        ops.promote(project, source="beta", target="beta")
    with pytest.raises(InputError, match="outside 0–100"):
        ops.set_rollout(project, channel="beta", percent=150)
    with pytest.raises(InputError, match="exactly one"):
        ops.set_rollout(project, channel="beta")
    assert not project.store.exists(pointer_key(project.app, "production"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rollout": 101}, "outside 0–100"),
        ({"label": "bad label"}, "label"),
        ({"native_min": 5, "native_max": 3}, "native-max"),
        ({"channel": "staging"}, "not in"),
    ],
)
def test_publish_input_errors(
    project: ops.Project, web: Path, kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {"channel": "beta"} | kwargs
    with pytest.raises(InputError, match=message):
        ops.publish(project, web, **args)  # type: ignore[arg-type]
    assert project.store.list(f"{project.app}/channels") == []


def test_key_of_another_channel_is_refused(project: ops.Project, web: Path) -> None:
    from dataclasses import replace

    swapped = replace(
        project.config, keys=project.config.keys | {"beta": project.config.keys["production"]}
    )
    wrong = ops.Project(swapped, project.store, clock=project.clock)
    with pytest.raises(KeyMaterialError, match="not a beta signing key"):
        ops.publish(wrong, web, channel="beta")
    assert project.store.list(f"{project.app}/bundles") == []


def test_report_key_reads_the_index(project: ops.Project, project_dir: Path, web: Path) -> None:
    published = ops.publish(project, web, channel="beta")
    assert project.store.exists(index_key(project.app, published.release.sha256))
    report = load_decryption_key((project_dir / "keys" / "report.pem").read_bytes())
    index = ops.read_index(project, published.release, report)
    assert index is not None
    assert {f.path for f in index.files} >= {"index.html", "assets/app.js"}
    other = ops.publish(project, web, channel="production")
    project.store.root.joinpath(*index_key(project.app, other.release.sha256).split("/")).unlink()  # type: ignore[attr-defined]
    assert ops.read_index(project, other.release, report) is None


def test_status_and_open_store(project: ops.Project, web: Path) -> None:
    ops.publish(project, web, channel="beta")
    rows = {row.channel: row for row in ops.status(project)}
    assert rows["beta"].manifest is not None
    assert rows["production"].manifest is None
    with pytest.raises(InputError, match="unsupported store"):
        ops.open_store("ftp://x")
    assert ops.release_dict(None) is None


def test_missing_root_json_is_explained(project: ops.Project, web: Path) -> None:
    project.config.root.unlink()
    with pytest.raises(InputError, match="root.json"):
        ops.publish(project, web, channel="beta")


def test_empty_channel_noop_guard(project: ops.Project) -> None:
    with pytest.raises(StoreError):
        ops.change_channel(project, "beta", lambda head: None, project.signer("beta"))
