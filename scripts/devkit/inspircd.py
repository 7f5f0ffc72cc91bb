"""InspIRCd (Debian's `inspircd`, 3.x) as the scale-out peer: servers linked through its
spanning-tree module, each with a config generated into a scratch directory.

ngIRCd is one process; InspIRCd is how a classic IRC network grows past one: several servers,
each holding its own clients, linked in a tree that carries every user, channel and message
to every server. A client of a server that dies is split from the network (its users QUIT on
every other server) and must reconnect to another one. Nothing here needs root: every path is
in the scratch directory, the link is plaintext on loopback, and as root (CI's containers) the
server is told `--runasroot`, which it otherwise refuses.

The limits are raised as for our gateways under the benchmark: no per-address clone limit
(every client comes from loopback), no flood penalty, send queues of a busy channel, and as
many clients as the process may open files.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from scripts.devkit.ircclient import IrcClient
from scripts.devkit.ircstack import Gateway, GatewaySpec
from scripts.devkit.processes import free_port

#: Where Debian puts the binary and its modules.
DEBIAN_BINARY = "/usr/sbin/inspircd"
MODULE_DIR = "/usr/lib/inspircd/modules"
#: The IRCv3 modules a reconnecting client uses: CAP, echo-message (its message was taken),
#: msgid and server-time (where it left off), batch. InspIRCd 3 has no draft/chathistory.
MODULES = ("spanningtree", "cap", "ircv3", "ircv3_echomessage", "ircv3_msgid", "ircv3_servertime",
           "ircv3_batch")
#: The link's password (loopback only: the bind and the allowmask say so).
LINK_PASSWORD = "bench-link"

CONFIG = """\
<path configdir="{workdir}" datadir="{workdir}" logdir="{workdir}" moduledir="{moduledir}">
<server name="{name}" description="InspIRCd {index} for canaduck's benchmark" id="{sid}" network="bench">
<admin name="bench" nick="bench" email="nobody@example.org">
<bind address="127.0.0.1" port="{port}" type="clients">
<bind address="127.0.0.1" port="{link_port}" type="servers">
{modules}
{links}
<connect name="bench" allow="*" limit="{limit}" localmax="{limit}" globalmax="{limit}" maxconnwarn="no"
         resolvehostnames="no" useident="no" timeout="120" pingfreq="600" maxchans="100"
         threshold="1000000" commandrate="100000000" fakelag="no"
         recvq="65536" softsendq="1048576" hardsendq="8388608">
<performance softlimit="{limit}" somaxconn="4096" clonesonconnect="no" quietbursts="yes">
<security hidesplits="no">
<channels users="100" opers="100">
<files motd="{workdir}/motd">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="{workdir}/{name}.log">
"""

LINK = """\
<link name="{name}" ipaddr="127.0.0.1" port="{link_port}" allowmask="127.0.0.0/8"
      sendpass="{password}" recvpass="{password}" timeout="30s">"""


def inspircd_binary() -> str | None:
    """The server's path, or None when the package is not installed."""
    found = shutil.which("inspircd")
    if found:
        return found
    return DEBIAN_BINARY if os.access(DEBIAN_BINARY, os.X_OK) else None


@dataclass(frozen=True)
class Node:
    """One server of the network: its name, its clients' port and its servers' port."""

    index: int
    port: int
    link_port: int

    @property
    def name(self) -> str:
        return f"s{self.index}.bench.canaduck"

    @property
    def sid(self) -> str:
        return f"{self.index}AA"  # a server id: a digit, then two letters or digits


def render_config(node: Node, peers: list[Node], workdir: Path, limit: int) -> str:
    """`node`'s config: a link block for each peer; the nodes after the first connect to it
    (one side dials, or both dial at once and each refuses the other's duplicate)."""
    links = [LINK.format(name=p.name, link_port=p.link_port, password=LINK_PASSWORD) for p in peers]
    if node.index > 1:
        links.append(f'<autoconnect period="1s" server="{peers[0].name}">')
    return CONFIG.format(workdir=workdir, moduledir=MODULE_DIR, name=node.name, index=node.index,
                         sid=node.sid, port=node.port, link_port=node.link_port,
                         modules="\n".join(f'<module name="{m}">' for m in MODULES),
                         links="\n".join(links), limit=limit)


def client_limit() -> int:
    """As many clients as this process's open files allow (a server inherits the limit),
    less a margin for its logs, its link and its listeners."""
    return max(64, resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 100)


def start_network(count: int, workdir: Path, timeout: float = 30.0) -> list[Gateway]:
    """`count` servers linked into one network (all to the first), waited for until every
    link has finished its burst; returned in order, as gateways (their clients' ports)."""
    binary = inspircd_binary()
    if binary is None:
        raise RuntimeError("inspircd is not installed (apt-get install inspircd)")
    nodes = [Node(i + 1, free_port(), free_port()) for i in range(count)]
    limit = client_limit()
    gateways = []
    try:
        for node in nodes:
            (workdir / "motd").write_text("InspIRCd for canaduck's benchmark\n")
            conf = workdir / f"{node.name}.conf"
            conf.write_text(render_config(node, [n for n in nodes if n is not node], workdir, limit))
            out = workdir / f"{node.name}.out"
            command = [binary, "--config", str(conf), "--nofork", "--nopid"]
            if os.geteuid() == 0:
                command.append("--runasroot")
            with open(out, "ab") as log:
                proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
            gateways.append(Gateway(node.name, GatewaySpec(port=node.port), proc, out))
        for gateway in gateways:
            gateway.wait(timeout)
        wait_linked(gateways[1:], nodes[0].name, timeout)
    except BaseException:
        for gateway in gateways:
            gateway.stop()
        raise
    return gateways


def wait_linked(leaves: list[Gateway], hub: str, timeout: float) -> None:
    """Until each leaf lists the hub in its LINKS (asked as a client would: the server's log
    is written in blocks, late)."""
    deadline = time.monotonic() + timeout
    for leaf in leaves:
        probe = IrcClient(leaf.listen_port, timeout=timeout)
        try:
            nick = f"probe{leaf.spec.port}"
            probe.send(f"NICK {nick}", f"USER {nick} 0 * :probe")  # no PING before 001: ignored
            probe.until(lambda line: " 001 " in line, timeout)
            while not any(" 364 " in line and hub in line for line in _links(probe)):
                if not leaf.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"{leaf.name} did not link to {hub} within {timeout} s: "
                                       f"{leaf.log()[-1000:]}")
                time.sleep(0.1)
        finally:
            probe.send("QUIT")
            probe.close()


def _links(client: IrcClient) -> list[str]:
    client.send("LINKS")
    return client.sync()
