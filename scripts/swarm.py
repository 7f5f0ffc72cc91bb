"""The stack on Docker Swarm (single node here; docs/cluster.md for N nodes).

    scripts/swarm up [--no-build] [--scale calc=3]   swarm init if needed, build, deploy, wait, table
    scripts/swarm scale calc=3 [aggregator=2 ...]     scale, wait until ready, table
    scripts/swarm status                              the table as it is now
    scripts/swarm down [--keep-data]                  remove the stack (and its Redis volume); leave
                                                      the swarm if `up` created it
    scripts/swarm render [--check]                    write docker-stack.yml from docker-compose.yml

CANADUCK_STACK (default canaduck-swarm) names the stack, CANADUCK_HTTP_PORT (default 80) is
Caddy's port on the node, CANADUCK_IMAGE_PREFIX and CANADUCK_TAG name the images.
"""

from __future__ import annotations

import argparse
import sys
import time

from scripts.devkit.manifest import COMPOSE_FILE, ManifestError, load, parse_scale
from scripts.devkit.swarm import SwarmError, SwarmStack, engine_available, table
from scripts.devkit.swarmstack import STACK_FILE, rendered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/swarm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="deploy the stack and wait until it is ready")
    up.add_argument("--no-build", action="store_true", help="use the images already built")
    up.add_argument("--scale", action="append", default=[], metavar="SERVICE=N")
    scale = commands.add_parser("scale", help="scale services and wait until ready")
    scale.add_argument("counts", nargs="+", metavar="SERVICE=N")
    commands.add_parser("status", help="print the table of the running stack")
    down = commands.add_parser("down", help="remove the stack; leave the swarm if up created it")
    down.add_argument("--keep-data", action="store_true", help="keep the Redis volume")
    render = commands.add_parser("render", help="write docker-stack.yml from docker-compose.yml")
    render.add_argument("--check", action="store_true", help="only say whether it is up to date")
    args = parser.parse_args(argv)

    if args.command == "render":
        text = rendered()
        if args.check:
            same = STACK_FILE.exists() and STACK_FILE.read_text() == text
            print(f"{STACK_FILE.name} {'is' if same else 'is NOT'} what docker-compose.yml gives")
            return 0 if same else 1
        STACK_FILE.write_text(text)
        print(f"wrote {STACK_FILE.name}")
        return 0
    if STACK_FILE.read_text() != rendered():
        print(f"{STACK_FILE.name} is out of date with docker-compose.yml: run scripts/swarm render",
              file=sys.stderr)
        return 2
    reason = engine_available()
    if reason:
        print(f"scripts/swarm: {reason}", file=sys.stderr)
        return 2
    stack = SwarmStack()
    started = time.monotonic()
    try:
        manifest = load(COMPOSE_FILE, environ={})
        if args.command == "up":
            rows = stack.up(build=not args.no_build, scale=parse_scale(args.scale, manifest))
        elif args.command == "scale":
            for service, count in parse_scale(args.counts, manifest).items():
                stack.scale_to(service, count, wait=False)
            rows = stack.wait_ready()
        elif args.command == "status":
            rows = stack.state()
        else:
            stack.down(keep_data=args.keep_data)
            print(f"stack {stack.name} removed" + ("" if args.keep_data else " with its Redis volume"))
            return 0
    except (SwarmError, ManifestError) as exc:
        print(f"scripts/swarm {args.command}: {exc}", file=sys.stderr)
        return 1
    print(table(rows, stack, time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
