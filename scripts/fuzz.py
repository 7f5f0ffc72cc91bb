"""Fuzzing: Hypothesis generates hostile input against a target for a while.

    scripts/fuzz                                  # the http target, 5 minutes, seed 0
    scripts/fuzz --target http --seconds 120 --seed 7
    scripts/fuzz --target http --service users --service jokes
    scripts/fuzz --target irc --seconds 600       # the IRC gateway on the embedded server

A target is a callable in `TARGETS`, taking the seconds to run and the first seed, printing
what it tries and finds, and returning how many examples it tried and how many failures it
found. `http` (scripts/devkit/fuzz_http.py): every route of every service's app, in process
on fakeredis, in rounds (a new seed each round) until the time is up. `irc`
(scripts/devkit/fuzz_irc.py): the IRC gateway, started in a thread on the embedded server
with the project's ACL (the Lua scripts and permissions real): any bytes to the parser, any
parameters to the formatter, and every command handler with random parameters over a real
socket, to the sender and to a watcher, in rounds the same way. Last line:

    RESULT target=<name> examples=<n> failures=<n> seed=<first seed>

Exit status 0 only if nothing was found. A failure names the route, the smallest request
Hypothesis found for it, and what went wrong: replay that request in a unit test.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable

from scripts.devkit import fuzz_http, fuzz_irc
from scripts.devkit.inprocess import SERVICES

#: (seconds, seed, options) -> (examples tried, failures found)
Target = Callable[[float, int, argparse.Namespace], tuple[int, int]]


def http(seconds: float, seed: int, options: argparse.Namespace) -> tuple[int, int]:
    """Every route of every service (or of `--service`), `--examples` requests per route a round."""
    services = options.service or sorted(SERVICES)
    print(f"http: services {', '.join(services)}; every route each lists, "
          f"{options.examples} examples per route and round")
    started = time.monotonic()
    report = fuzz_http.run(services, seconds=seconds, seed=seed, examples=options.examples)
    print(f"tried {report.examples} requests on {report.routes} routes in {time.monotonic() - started:.0f} s")
    for finding in report.findings:
        print(f"FOUND {finding.service} {finding.route}: {finding.problem}\n"
              f"      smallest request: {finding.attempt}")
    return report.examples, len(report.findings)


def irc(seconds: float, seed: int, options: argparse.Namespace) -> tuple[int, int]:
    """The IRC gateway on the embedded server: parsing, formatting, and every handler."""
    from scripts.devkit import running_server

    print(f"irc: parse (any bytes), format (any parameters), handlers (every command, random "
          f"parameters, over a socket); {options.examples} examples per property and round")
    started = time.monotonic()
    with running_server() as server:
        report = fuzz_irc.run(seconds=seconds, seed=seed, examples=options.examples,
                              redis_factory=lambda: server.async_client("ircd"))
    print(f"tried {report.examples} examples in {report.rounds} rounds in {time.monotonic() - started:.0f} s")
    for finding in report.findings:
        print(f"FOUND {finding.property}: {finding.problem}")
    return report.examples, len(report.findings)


TARGETS: dict[str, Target] = {"http": http, "irc": irc}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=sorted(TARGETS), default="http", help="what to fuzz")
    parser.add_argument("--seconds", type=float, default=300, help="how long to run (checked between routes)")
    parser.add_argument("--seed", type=int, default=0, help="the first round's seed (then +1 per round)")
    parser.add_argument("--examples", type=int, default=100,
                        help="examples per route (http) or per property (irc) in a round")
    parser.add_argument("--service", action="append", choices=sorted(SERVICES),
                        help="http: only this service (repeatable)")
    parser.add_argument("--verbose", action="store_true", help="let the services log (errors included)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    if not options.verbose:  # every provoked error would be logged, with its traceback
        logging.disable(logging.CRITICAL)
    examples, failures = TARGETS[options.target](options.seconds, options.seed, options)
    print(f"RESULT target={options.target} examples={examples} failures={failures} seed={options.seed}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
