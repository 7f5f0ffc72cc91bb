"""Behind scripts/irc-conformance: irctest against our gateways, one and two replicas.

irctest (github.com/progval/irctest) is not vendored: give a checkout with IRCTEST_DIR=...
or --irctest-dir. It runs in this project's virtualenv (irctest needs only pytest, plus
pytest-xdist for parallel workers and filelock; IRCTEST_PYTHON names another interpreter), from its
checkout, with our controller module `tests.irctest.controller` on its path. Runs, each a
pytest session:

1. the "basic server" selection with one gateway;
2. the same with two gateways behind the round-robin TCP proxy (clients of one test land on
   different replicas, so everything between them crosses Redis);
3. ngIRCd (Debian's, through irctest's own controller) on the same selection, the peer's row,
   when it is installed (`--ngircd reference` prints the figures measured before instead);
4. the `services` selection (accounts made through the users service, SASL PLAIN); on request
   (`--runs services-two`), the same with two gateways behind the proxy;
5. on request (`--runs strict-one,strict-two`), the selection Ergo runs on itself: every test
   that is neither implementation-specific nor deprecated, the `strict` and `services` ones
   included, on one gateway and on two.

Prints a table, the failures grouped by test file, and a last RESULT line.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from scripts.devkit.ircstack import has_ircd

ROOT = Path(__file__).resolve().parent.parent
BASIC = "not services and not implementation-specific and not deprecated and not strict"
SERVICES = "services and not implementation-specific and not deprecated and not strict"
STRICT = "not implementation-specific and not deprecated"
#: ngIRCd 26.1's score on BASIC, measured here with irctest's own controller (-n 8).
NGIRCD_REFERENCE = (160, 10, 165, 8)


@dataclass
class Score:
    name: str
    key: str = ""
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    xfailed: int = 0
    errors: int = 0
    seconds: float = 0.0
    failures: dict[str, str] = field(default_factory=dict)
    note: str = ""

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.skipped + self.xfailed + self.errors


def parse_junit(path: Path, name: str) -> Score:
    """Counts from pytest's junit XML; an xfail is a <skipped type="pytest.xfail">."""
    score = Score(name)
    for case in ET.parse(path).getroot().iter("testcase"):
        module, _, cls = case.get("classname", "").rpartition(".")
        test_id = f"{module.replace('.', '/')}.py::{cls}::{case.get('name')}"
        failure = case.find("failure")
        error = case.find("error")
        skipped = case.find("skipped")
        if failure is not None:
            score.failed += 1
            score.failures[test_id] = failure.get("message") or (failure.text or "")[:300]
        elif error is not None:
            score.errors += 1
            score.failures[test_id] = "ERROR " + (error.get("message") or (error.text or "")[:300])
        elif skipped is not None:
            if skipped.get("type") == "pytest.xfail":
                score.xfailed += 1
            else:
                score.skipped += 1
        else:
            score.passed += 1
    return score


def irctest_python() -> str:
    """IRCTEST_PYTHON, else this project's virtualenv: irctest needs only pytest, filelock
    and pytest-xdist (to run in parallel), which the project's dev extras have."""
    return os.environ.get("IRCTEST_PYTHON") or sys.executable


def run_irctest(key: str, name: str, irctest_dir: Path, python: str, controller: str, markers: str, *,
                workers: int, keyword: str | None, env: dict[str, str], outdir: Path,
                verbose: bool) -> Score:
    xml = outdir / f"{re.sub(r'[^a-z0-9]+', '-', name.lower())}.xml"
    command = [python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--controller", controller,
               "-m", markers, f"--junitxml={xml}", "irctest/server_tests/"]
    if workers > 1 and importlib.util.find_spec("xdist") is not None:
        command += ["-n", str(workers)]
    if keyword:
        command += ["-k", keyword]
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(irctest_dir)]), **env}
    print(f"== {name}: {' '.join(command[3:])}", file=sys.stderr, flush=True)
    started = time.monotonic()
    log = outdir / xml.with_suffix(".log").name
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=irctest_dir, env=full_env, stdout=None if verbose else out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait()
        finally:
            # irctest's own ngIRCd controller leaves some of its servers running after the run
            # (six per run, seen on 2026-11-22): end what is left of the run's process group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    seconds = time.monotonic() - started
    if not xml.exists() or proc.returncode not in (0, 1):
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise SystemExit(f"irc-conformance: {name} produced no report (exit {proc.returncode}):\n{tail}")
    score = parse_junit(xml, name)
    score.key, score.seconds = key, seconds
    return score


def ngircd_version() -> str:
    binary = shutil.which("ngircd") or "/usr/sbin/ngircd"
    try:
        first = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=5).stdout
    except OSError:
        return ""
    found = re.search(r"ngIRCd\s+([\d.]+)", first)
    return found.group(1) if found else ""


def table(scores: list[Score]) -> str:
    lines = [f"{'run':<48} {'passed':>6} {'failed':>6} {'errors':>6} {'skipped':>7} {'xfailed':>7} "
             f"{'seconds':>7}"]
    for s in scores:
        seconds = f"{s.seconds:.0f}" if s.seconds else "-"
        lines.append(f"{s.name:<48} {s.passed:>6} {s.failed:>6} {s.errors:>6} {s.skipped:>7} "
                     f"{s.xfailed:>7} {seconds:>7}{'  ' + s.note if s.note else ''}")
    return "\n".join(lines)


def failures_report(scores: list[Score]) -> str:
    out = []
    for s in scores:
        if not s.failures or s.key == "ngircd":
            continue
        out.append(f"-- {s.name}: {len(s.failures)} failed or in error")
        by_file: dict[str, list[str]] = defaultdict(list)
        for test_id, message in sorted(s.failures.items()):
            by_file[test_id.split("::")[0]].append(
                f"   {test_id.split('::', 1)[1]}: {' '.join(message.split())[:220]}")
        for file, lines in by_file.items():
            out.append(f"  {file}")
            out.extend(lines)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("assignments", nargs="*", metavar="IRCTEST_DIR=PATH",
                        help="IRCTEST_DIR=... (the same as --irctest-dir)")
    parser.add_argument("--irctest-dir", default=os.environ.get("IRCTEST_DIR", ""))
    parser.add_argument("--workers", "-n", type=int, default=2, help="pytest-xdist workers (default 2)")
    parser.add_argument("-k", dest="keyword", help="only the irctest tests matching this expression")
    parser.add_argument("--runs", default="one,two,services",
                        help="which of one,two,services,services-two,strict-one,strict-two to run "
                             "(default the first three)")
    parser.add_argument("--ngircd", choices=["live", "reference", "off"], default="live",
                        help="ngIRCd's row: run it now when installed (default), or print the "
                             "figures measured before")
    parser.add_argument("--server", choices=["canaduck", "ngircd"], default="canaduck",
                        help="ngircd: put Debian's ngIRCd behind our controller (checks the tooling)")
    parser.add_argument("--sync-sleep", type=float, default=None,
                        help="irctest's sync_sleep_time in seconds (default 0)")
    parser.add_argument("--verbose", action="store_true", help="irctest's output on the terminal")
    args = parser.parse_args(argv)
    for assignment in args.assignments:
        key, _, value = assignment.partition("=")
        if key != "IRCTEST_DIR" or not value:
            parser.error(f"unknown argument {assignment!r}")
        args.irctest_dir = value
    if not args.irctest_dir:
        parser.error("give IRCTEST_DIR=<irctest checkout> (git clone https://github.com/progval/irctest)")
    irctest_dir = Path(args.irctest_dir).resolve()
    if not (irctest_dir / "irctest/server_tests").is_dir():
        parser.error(f"{irctest_dir} is not an irctest checkout")
    if args.server == "canaduck" and not has_ircd():
        parser.error("this checkout has no IRC gateway (apps.ircd) yet")

    python = irctest_python()
    runs = set(args.runs.split(","))
    outdir = Path(tempfile.mkdtemp(prefix="irc-conformance-"))
    common = dict(irctest_dir=irctest_dir, python=python, workers=args.workers, keyword=args.keyword,
                  outdir=outdir, verbose=args.verbose)
    base_env = {"CANADUCK_IRCTEST_SERVER": args.server}
    if args.sync_sleep is not None:
        base_env["CANADUCK_IRCTEST_SYNC_SLEEP"] = str(args.sync_sleep)
    label = "canaduck" if args.server == "canaduck" else "ngIRCd via our controller"
    scores: list[Score] = []
    if "one" in runs:
        scores.append(run_irctest("one", f"{label}, 1 gateway", controller="tests.irctest.controller",
                                  markers=BASIC, env={**base_env, "CANADUCK_IRCTEST_GATEWAYS": "1"},
                                  **common))
    if "two" in runs:
        scores.append(run_irctest("two", f"{label}, 2 gateways + rr proxy",
                                  controller="tests.irctest.controller",
                                  markers=BASIC, env={**base_env, "CANADUCK_IRCTEST_GATEWAYS": "2"},
                                  **common))
    version = ngircd_version()
    if args.ngircd == "live" and version:
        scores.append(run_irctest("ngircd", f"ngIRCd {version} (irctest's controller)",
                                  controller="irctest.controllers.ngircd", markers=BASIC, env={}, **common))
    elif args.ngircd != "off":
        passed, failed, skipped, xfailed = NGIRCD_REFERENCE
        scores.append(Score("ngIRCd 26.1 (measured before)", "ngircd", passed=passed, failed=failed,
                            skipped=skipped, xfailed=xfailed, note="a 343-test irctest"))
    if "services" in runs and args.server == "canaduck":
        scores.append(run_irctest("services", f"{label} services (SASL), 1 gateway",
                                  controller="tests.irctest.controller", markers=SERVICES,
                                  env={**base_env, "CANADUCK_IRCTEST_GATEWAYS": "1"}, **common))
    if "services-two" in runs and args.server == "canaduck":
        scores.append(run_irctest("services_two", f"{label} services (SASL), 2 gateways + rr proxy",
                                  controller="tests.irctest.controller", markers=SERVICES,
                                  env={**base_env, "CANADUCK_IRCTEST_GATEWAYS": "2"}, **common))
    for gateways, key in (("1", "strict_one"), ("2", "strict_two")):
        if f"strict-{key.split('_')[1]}" in runs and args.server == "canaduck":
            scores.append(run_irctest(key, f"{label} strict selection, {gateways} gateway(s)",
                                      controller="tests.irctest.controller", markers=STRICT,
                                      env={**base_env, "CANADUCK_IRCTEST_GATEWAYS": gateways}, **common))

    print(table(scores))
    report = failures_report(scores)
    if report:
        print(report)
    print(f"(junit XML and logs in {outdir})")
    print("RESULT " + " ".join(f"{s.key}_passed={s.passed} {s.key}_failed={s.failed + s.errors}"
                               for s in scores))
    ours = [s for s in scores if s.key != "ngircd"]
    return 1 if any(s.failed or s.errors for s in ours) else 0


if __name__ == "__main__":
    sys.exit(main())
