"""Run every fuzz target for a while and write ``fuzz/REPORT.md`` (``make fuzz``).

    python fuzz/run.py                       # 300 s per target (FUZZ_SECONDS), all targets
    python fuzz/run.py --seconds 5 --only http --report -   # a quick look, report to stdout

Targets run one after another (the machine's cores are shared), each as
``python fuzz/fuzz_<target>.py -max_total_time=… -rss_limit_mb=500 -timeout=… <work corpus>
fuzz/corpus/<target>``. The grown corpus is kept in ``fuzz/.work/`` (not committed) so the next
campaign starts from it. A crash, hang or out-of-memory input is copied to
``fuzz/crashes/<target>/`` (commit it: ``make test`` replays that folder) and the target is
restarted for the rest of its time, so one finding does not hide the next. The report gives
executions, coverage, findings and peak RSS per target, the totals, the command, the machine and
the date. The exit status is 1 when anything was found, else 0.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGETS = ("sealed", "archive", "metadata", "http", "delta", "capgo_list")
RSS_LIMIT_MB = 500
#: Longest input each target may take before it counts as a hang, and the inputs' length cap.
TIMEOUT = {"sealed": 10, "archive": 10, "metadata": 10, "http": 20, "delta": 10, "capgo_list": 10}
MAX_LEN = {
    "sealed": 8192,
    "archive": 16384,
    "metadata": 8192,
    "http": 4096,
    "delta": 16384,
    "capgo_list": 8192,
}
GOAL = 1_000_000
#: Scratch in memory when the machine has it: the archive target writes files on every input
#: (about 4x the executions of a disk-backed /tmp here).
_FAST = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108

_STATUS = re.compile(
    r"^#(\d+)\s+(?:INITED|NEW|REDUCE|pulse|DONE|RELOAD).*?cov: (\d+) ft: (\d+) corp: (\d+)/"
    r".*?rss: (\d+)Mb",
    re.MULTILINE,
)
_DONE = re.compile(r"^Done (\d+) runs in (\d+) second", re.MULTILINE)
_ARTIFACT = re.compile(r"Test unit written to (\S+)")


@dataclass
class Result:
    """One target's figures, summed over its restarts."""

    target: str
    seconds: float = 0.0
    executions: int = 0
    coverage: int = 0
    features: int = 0
    corpus: int = 0
    peak_rss_mb: int = 0
    crashes: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    ooms: list[str] = field(default_factory=list)
    runs: int = 0

    @property
    def findings(self) -> int:
        """Crashes, hangs and out-of-memory inputs together."""
        return len(self.crashes) + len(self.hangs) + len(self.ooms)


def command(target: str, seconds: int, work: Path, artifacts: Path) -> list[str]:
    """The libFuzzer command line of one target run (with ``fuzz/dict/<target>.dict`` if any)."""
    words = HERE / "dict" / f"{target}.dict"
    return [
        sys.executable,
        str(HERE / f"fuzz_{target}.py"),
        f"-max_total_time={seconds}",
        f"-rss_limit_mb={RSS_LIMIT_MB}",
        f"-timeout={TIMEOUT[target]}",
        f"-max_len={MAX_LEN[target]}",
        "-print_final_stats=1",
        *([f"-dict={words}"] if words.is_file() else []),
        f"-artifact_prefix={artifacts}/",
        str(work),
        str(HERE / "corpus" / target),
    ]


def child_env(scratch: Path) -> dict[str, str]:
    """The environment of a fuzz process: its own scratch folder, no coverage subprocess hook."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    env["OTASEAL_FUZZ_SCRATCH"] = str(scratch)
    env["TMPDIR"] = str(scratch)
    return env


def _keep(artifact: Path, target: str) -> str:
    """Copy a finding into fuzz/crashes/<target>/ under its content hash; return its path."""
    data = artifact.read_bytes()
    kind = artifact.name.split("-", 1)[0]
    dest = HERE / "crashes" / target / f"{kind}-{hashlib.sha1(data).hexdigest()}"  # noqa: S324
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return str(dest.relative_to(ROOT))


def run_target(target: str, seconds: int, log: Path) -> Result:
    """Fuzz ``target`` for ``seconds``, restarting after each finding; append output to ``log``."""
    result = Result(target)
    work = HERE / ".work" / target
    work.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + seconds
    while (left := int(deadline - time.monotonic())) >= 1:
        with tempfile.TemporaryDirectory(prefix=f"otaseal-fuzz-{target}-", dir=_FAST) as tmp:
            artifacts, scratch = Path(tmp) / "artifacts", Path(tmp) / "scratch"
            artifacts.mkdir()
            scratch.mkdir()
            started = time.monotonic()
            proc = subprocess.run(
                command(target, left, work, artifacts),
                env=child_env(scratch),
                capture_output=True,
                check=False,
                cwd=tmp,
                timeout=left + 10 * TIMEOUT[target] + 60,
            )
            result.seconds += time.monotonic() - started
            out = proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")
            with log.open("a", encoding="utf-8") as handle:
                handle.write(f"\n===== {target} (exit {proc.returncode})\n{out}")
            result.runs += 1
            _account(result, out)
            for artifact in sorted(artifacts.iterdir()):
                kept = _keep(artifact, target)
                kind = artifact.name.split("-", 1)[0]
                {"timeout": result.hangs, "oom": result.ooms}.get(kind, result.crashes).append(kept)
            if proc.returncode != 0 and not any(artifacts.iterdir()):
                result.crashes.append(f"(exit {proc.returncode} without an input; see {log.name})")
            if result.runs >= 10:  # a target that keeps failing: stop restarting
                break
    return result


def _account(result: Result, out: str) -> None:
    statuses = _STATUS.findall(out)
    done = _DONE.findall(out)
    if done:
        result.executions += int(done[-1][0])
    elif statuses:  # stopped by a finding: the last status line is the best count there is
        result.executions += int(statuses[-1][0])
    if statuses:
        last = statuses[-1]
        result.coverage = max(result.coverage, int(last[1]))
        result.features = max(result.features, int(last[2]))
        result.corpus = max(result.corpus, int(last[3]))
        result.peak_rss_mb = max(result.peak_rss_mb, *(int(s[4]) for s in statuses))


def machine() -> str:
    """CPU, cores, memory, OS and Python, for the report."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = int(meminfo.read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    return (
        f"{cpu}, {os.cpu_count()} cores (shared){memory}; {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}; atheris {_atheris_version()}"
    )


def _atheris_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("atheris")
    except PackageNotFoundError:
        return "not installed"


def _commit() -> str:
    proc = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() or "unknown"


def report(results: list[Result], seconds: int, started: datetime) -> str:
    """The markdown report."""
    total = sum(r.executions for r in results)
    findings = sum(r.findings for r in results)
    peak = max((r.peak_rss_mb for r in results), default=0)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    verdict = "PASS" if total >= GOAL and not findings and peak <= RSS_LIMIT_MB else "FAIL"
    seconds_total = sum(r.seconds for r in results)
    order = "one target after another"
    argv = " ".join(
        [
            "python fuzz/fuzz_<target>.py",
            f"-max_total_time={seconds}",
            f"-rss_limit_mb={RSS_LIMIT_MB}",
            "-timeout=<T> -max_len=<L> [-dict=fuzz/dict/<target>.dict]",
            "fuzz/.work/<target> fuzz/corpus/<target>",
        ]
    )
    invocation = " ".join(["python fuzz/run.py", *sys.argv[1:]])
    command_line = (
        f"- **Command**: `{invocation}` (`FUZZ_SECONDS={seconds} make fuzz` runs the same); "
        f"per target `{argv}`"
    )
    intro = (
        "Written by `make fuzz` (`fuzz/run.py`); see `fuzz/README.md` for the targets and their "
        "contract: only `otaseal.errors.Error` may escape, no input may hang past its timeout, "
        f"and no process may pass {RSS_LIMIT_MB} MB."
    )
    goal = (
        f"- **Goal** (issue 10): at least {GOAL:,} executions in total with no crash, hang or "
        f"memory over {RSS_LIMIT_MB} MB: **{verdict}** ({total:,} executions, {findings} "
        f"findings, peak RSS {peak} MB)."
    )
    header = (
        "| target | what it feeds | seconds | executions | exec/s | coverage (edges / features) "
        "| corpus | crashes | hangs | over memory | peak RSS (MB) | timeout (s) |"
    )
    lines = [
        "# Fuzzing report",
        "",
        intro,
        "",
        goal,
        f"- **Date**: {started:%Y-%m-%d %H:%M} UTC; {seconds_total:.0f} s of fuzzing, {order}",
        f"- **Commit**: `{_commit()}`",
        f"- **Machine**: {machine()}",
        command_line,
        "",
        header,
        "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    what = {
        "sealed": "`.cub` bytes to `read_header`, `open_sealed`",
        "archive": "zip bytes to `archive.extract` with a signed budget",
        "metadata": "envelopes, payloads (raw and signed), `state.json` to the parser and trust",
        "http": "scripted hostile server replies to `HttpFetcher`",
        "delta": "patch plaintexts to `read_header`, `check_header`, `apply_patch`",
        "capgo_list": "list objects to `parse_list`; bodies to `open_body`",
    }
    for r in results:
        rate = r.executions / r.seconds if r.seconds else 0
        lines.append(
            f"| {r.target} | {what.get(r.target, '')} | {r.seconds:.0f} | {r.executions:,} | "
            f"{rate:,.0f} | {r.coverage} / {r.features} | {r.corpus} | {len(r.crashes)} | "
            f"{len(r.hangs)} | {len(r.ooms)} | {r.peak_rss_mb} | {TIMEOUT[r.target]} |"
        )
    totals = (
        f"| **total** | | {seconds_total:.0f} | **{total:,}** | | | | "
        f"{sum(len(r.crashes) for r in results)} | {sum(len(r.hangs) for r in results)} | "
        f"{sum(len(r.ooms) for r in results)} | {peak} | |"
    )
    rss_note = (
        "Peak RSS is the largest `rss:` libFuzzer printed for the target; the largest any fuzz "
        f"process reached by the kernel's count (`ru_maxrss`) was {children} MB."
    )
    lines += [totals, "", rss_note]
    found = [(r.target, p) for r in results for p in r.crashes + r.hangs + r.ooms]
    lines += ["", "## Findings", ""]
    if found:
        lines += [f"- {target}: `{path}`" for target, path in found]
        lines += ["", "Each is kept in `fuzz/crashes/` and replayed by `make test`."]
    else:
        lines.append("None in this run.")
    return "\n".join(lines) + "\n"


def main() -> int:
    """Parse options, fuzz each target, write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds",
        type=int,
        default=int(os.environ.get("FUZZ_SECONDS", "300")),
        help="seconds per target (default: $FUZZ_SECONDS or 300)",
    )
    parser.add_argument("--only", action="append", choices=TARGETS, help="target (repeatable)")
    parser.add_argument(
        "--report", default=str(HERE / "REPORT.md"), help="where to write the report; - for stdout"
    )
    args = parser.parse_args()
    started = datetime.now(UTC)
    log = HERE / ".work" / "fuzz.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    results = []
    for target in args.only or TARGETS:
        print(f"fuzz: {target} for {args.seconds} s …", flush=True)
        result = run_target(target, args.seconds, log)
        print(
            f"fuzz: {target}: {result.executions:,} executions, {result.findings} findings, "
            f"peak RSS {result.peak_rss_mb} MB",
            flush=True,
        )
        results.append(result)
    text = report(results, args.seconds, started)
    if args.report == "-":
        print(text)
    else:
        Path(args.report).write_text(text, encoding="utf-8")
        print(f"fuzz: report in {args.report} (libFuzzer output in {log})")
    return 1 if any(r.findings for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
