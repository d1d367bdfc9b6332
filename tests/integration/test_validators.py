"""The Action's surface checked by the same validators CI uses, offline.

check-jsonschema's schemas are vendored in the wheel, hadolint is a static binary: none of this
touches the network. Docker itself does not run here, so the rules the runner imposes on a
container action's Dockerfile (which hadolint does not know) are checked by parsing it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WORKFLOWS = sorted([*ROOT.glob(".github/workflows/*.yml"), *ROOT.glob("docs/workflows/*.yml")])
PINNED_ACTION = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def tool(name: str) -> str:
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (it is in the dev extras)")
    return found


def check(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    out = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, rest = line.strip().partition(" ")
            out.append((instruction.upper(), rest.strip()))
    return out


# --- action.yml ----------------------------------------------------------------------------------
def test_action_yml_follows_the_github_actions_schema() -> None:
    done = check(
        tool("check-jsonschema"),
        "--builtin-schema",
        "vendor.github-actions",
        str(ROOT / "action.yml"),
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_action_yml_inputs_are_kebab_case_and_described() -> None:
    doc = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    assert doc["runs"] == {"using": "docker", "image": "Dockerfile"}
    for name, spec in {**doc["inputs"], **doc["outputs"]}.items():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name), name
        assert spec["description"].strip(), name
    for name in ("comment", "deployments"):  # booleans as quoted strings
        assert doc["inputs"][name]["default"] == "true"
    assert doc["inputs"]["github-token"]["default"] == "${{ github.token }}"
    assert set(doc["outputs"]) == {
        "release-label",
        "bundle-sha256",
        "manifest-version",
        "channel",
        "rollout",
        "formats",
        "capgo-session-key",
        "capgo-checksum",
        "delta-bytes",
        "delta-patches",
        "comment-url",
        "deployment-id",
    }


# --- workflows ---------------------------------------------------------------------------------
@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: str(p.relative_to(ROOT)))
def test_workflow_follows_the_schema_and_every_job_has_a_timeout(workflow: Path) -> None:
    for schema in ("vendor.github-workflows", "custom.github-workflows-require-timeout"):
        done = check(tool("check-jsonschema"), "--builtin-schema", schema, str(workflow))
        assert done.returncode == 0, f"{schema}: {done.stdout}{done.stderr}"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: str(p.relative_to(ROOT)))
def test_workflow_grants_no_permission_by_default_and_pins_actions(workflow: Path) -> None:
    doc = yaml.safe_load(workflow.read_text(encoding="utf-8"))
    assert doc["permissions"] == {}
    assert "concurrency" in doc or all("concurrency" in job for job in doc["jobs"].values())
    for name, job in doc["jobs"].items():
        assert "permissions" in job, f"job {name} must say which permissions it needs"
        for step in job.get("steps", []):
            uses = step.get("uses", "")
            if uses and not uses.startswith("./") and "/otaseal@" not in uses:
                assert PINNED_ACTION.match(uses), f"{name}: {uses} is not pinned by commit SHA"
            # Expressions from events or inputs never go into a shell line (script injection).
            assert not re.search(r"\$\{\{\s*(github\.event|inputs)\.", step.get("run", "")), name


# --- Dockerfile --------------------------------------------------------------------------------
def test_dockerfile_passes_hadolint() -> None:
    done = check(tool("hadolint"), str(ROOT / "Dockerfile"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_follows_the_container_action_rules() -> None:
    instructions = dockerfile_instructions()
    names = [name for name, _ in instructions]
    assert "USER" not in names  # the action must run as root to write the workspace
    assert "WORKDIR" not in names  # the runner overrides it with --workdir
    [base] = [args for name, args in instructions if name == "FROM"]
    assert re.fullmatch(r"python:3\.11[\w.-]*@sha256:[0-9a-f]{64}", base), base
    [entry] = [args for name, args in instructions if name == "ENTRYPOINT"]
    argv = json.loads(entry)  # exec form
    assert all(part.startswith("/") for part in argv), argv  # absolute, no reliance on WORKDIR
    assert "-m" not in argv
    copied = {args.split()[-1] for name, args in instructions if name == "COPY"}
    assert argv[-1].startswith(tuple(copied))  # the script is in the image
    installs = [args for name, args in instructions if name == "RUN" and "pip install" in args]
    assert installs
    assert all("--require-hashes" in run and "--no-cache-dir" in run for run in installs)


def test_action_requirements_pin_every_package_by_hash() -> None:
    text = (ROOT / "requirements" / "action.txt").read_text(encoding="utf-8")
    entries = re.split(r"\n(?=[A-Za-z])", re.sub(r"(?m)^#.*\n", "", text).strip())
    pins = {}
    for entry in entries:
        requirement = entry.split()[0]
        name, _, version = requirement.partition("==")
        assert version, f"{requirement} is not pinned with =="
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", entry), f"{name} has no hash"
        pins[name.lower()] = version
    needed = {
        "cryptography",
        "requests",
        "pyyaml",
        "boto3",
        "botocore",
        "s3transfer",
        "jmespath",
        "hvac",
        "urllib3",
        "certifi",
        "charset-normalizer",
        "idna",
        "python-dateutil",
        "six",
        "cffi",
        "pycparser",
        # otaseal serve
        "starlette",
        "anyio",
        "typing-extensions",
        "uvicorn",
        "click",
        "h11",
        "uvloop",
        "httptools",
        "msgspec",
        "psycopg",
        "psycopg-binary",
        "psycopg-pool",
        # sealed deltas (SPEC §19) and Capgo manifest mode (SPEC §17.1)
        "zstandard",
        "brotli",
    }
    assert set(pins) == needed
