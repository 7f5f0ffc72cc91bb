"""irctest's controller for canaduck: `pytest --controller tests.irctest.controller`.

irctest (github.com/progval/irctest) runs from a checkout outside this repository, with this
repository on PYTHONPATH; `scripts/irc-conformance` does all of that.

Every test gets fresh gateway processes with a key prefix of their own (KEY_PREFIX), so no
test sees another's nicks, channels or history. A Redis and the users service live for the
whole run (one per pytest process, `ChatBacking`); accounts are deleted before each test.
irctest's port is served by the round-robin proxy (`scripts/devkit/rrproxy.py`) in front of
the test's gateways: with two gateways the clients of one test land on different replicas, so
every line between them crosses Redis; with one it just passes bytes (ngIRCd scores the same
behind it as alone). That also lets the gateways of the NEXT test start while this one runs:
a Python process start (~1 s idle, several under load) is no longer on every test's clock.
Stopping is not either: a test's gateways get SIGTERM at teardown and are reaped aside.

Set by the environment (the conformance script sets them):
- CANADUCK_IRCTEST_GATEWAYS: gateway replicas per test (default 1).
- CANADUCK_IRCTEST_SERVER=ngircd: Debian's ngIRCd instead of ours, to check the tooling.
- CANADUCK_IRCTEST_SYNC_SLEEP: irctest's `sync_sleep_time`, seconds slept before a client
  reads its messages (default 0). A client synchronises by PING and reading up to the PONG;
  a message relayed through Redis from another replica could arrive after that PONG.
- CANADUCK_IRCTEST_KEEP_LOGS=<dir>: keep every test's gateway logs there.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from irctest import patma
from irctest.basecontrollers import BaseServerController, DirectoryBasedController, ProcessStopped
from irctest.runner import NotImplementedByController
from irctest.specifications import Capabilities, OptionalBehaviors

from scripts.devkit.ircstack import ChatBacking, Gateway, GatewaySpec, start_ngircd, stop_gateways
from scripts.devkit.processes import free_port
from scripts.devkit.rrproxy import ThreadedProxy

GATEWAYS = int(os.environ.get("CANADUCK_IRCTEST_GATEWAYS", "1"))
SERVER = os.environ.get("CANADUCK_IRCTEST_SERVER", "canaduck")
#: Seconds a gateway has to listen on its port.
START_TIMEOUT = float(os.environ.get("CANADUCK_IRCTEST_START_TIMEOUT", "30"))
KEEP_LOGS = os.environ.get("CANADUCK_IRCTEST_KEEP_LOGS", "")
#: irctest's pause before reading a client's messages (after its PING/PONG round trip).
SYNC_SLEEP = float(os.environ.get("CANADUCK_IRCTEST_SYNC_SLEEP", "0"))
#: The same in the WebSocket tests. They send on the WebSocket, then read the TCP client's
#: messages behind a PING on the TCP side: a WebSocket line crosses more hops before the
#: gateway reads it (Hypercorn's frame parsing, the ASGI queue), so the TCP client's PING can
#: overtake it. 5 ms lost that race in a third of the tests, 20 ms never (2026-11-22, idle).
WEBSOCKET_SYNC_SLEEP = max(SYNC_SLEEP, 0.05)


@dataclass
class GatewaySet:
    """The gateways of one test, and what to clean after them."""

    gateways: list[Gateway]
    workdir: Path
    prefix: str = ""

    def alive(self) -> bool:
        return all(g.alive() for g in self.gateways)


class _Run:
    """What lives as long as the pytest process: the backing, the spare set of gateways,
    and the threads reaping stopped ones."""

    def __init__(self) -> None:
        self.backing: ChatBacking | None = None
        self.spare: GatewaySet | None = None
        self.reapers: list[threading.Thread] = []
        self.live: set[_GatewaysController] = set()
        self.serial = itertools.count(1)
        atexit.register(self.close)

    def chat(self) -> ChatBacking:
        if self.backing is None:
            self.backing = ChatBacking()
            self.backing.start()
        return self.backing

    def retire(self, gateway_set: GatewaySet) -> None:
        """Stop a test's gateways in the background, then drop its keys and files."""

        def reap() -> None:
            stop_gateways(gateway_set.gateways)
            if gateway_set.prefix and self.backing is not None:
                self.backing.reset(f"{gateway_set.prefix}*")
            if KEEP_LOGS:
                keep = Path(KEEP_LOGS) / gateway_set.workdir.name
                keep.mkdir(parents=True, exist_ok=True)
                for gateway in gateway_set.gateways:
                    if gateway.log_path.exists():
                        shutil.copy(gateway.log_path, keep / f"{gateway.name}.log")
            shutil.rmtree(gateway_set.workdir, ignore_errors=True)

        for gateway in gateway_set.gateways:
            gateway.proc.terminate()  # at once; the reaper waits and SIGKILLs if need be
        thread = threading.Thread(target=reap, daemon=True)
        thread.start()
        self.reapers = [t for t in self.reapers if t.is_alive()] + [thread]

    def close(self) -> None:
        for controller in list(self.live):
            controller.kill_proc()
        if self.spare is not None:
            self.retire(self.spare)
            self.spare = None
        for thread in self.reapers:
            thread.join(15)
        if self.backing is not None:
            self.backing.stop()


_run = _Run()


class _GatewaysController(BaseServerController, DirectoryBasedController):
    """GATEWAYS fresh gateways per test behind the proxy on irctest's port."""

    _port_wait_interval = 0.01
    # irctest's base classes set these; declared here for the type checker, which runs
    # where irctest is not installed.
    proc: subprocess.Popen | None
    port_open: bool
    #: Whether the server kind listens for IRC over WebSocket (irctest's websocket tests).
    websocket = False
    sync_sleep_time = SYNC_SLEEP

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.current: GatewaySet | None = None
        self.proxy: ThreadedProxy | None = None

    # -- what a server kind provides ---------------------------------------------------------
    def start_gateway(self, spec: GatewaySpec, workdir: Path, index: int, prefix: str) -> Gateway:
        raise NotImplementedError

    def before_test(self) -> None:
        """Run before each test's server is handed out."""

    def own_settings(self) -> dict[str, str]:
        """Gateway settings this test's configuration asks for beyond the run's defaults: a
        test with some gets gateways of its own rather than the spare set."""
        return {}

    # -- starting ----------------------------------------------------------------------------
    def launch(self, password: str | None = None, tls: tuple[Path, Path] | None = None,
               websocket_port: int | None = None, env: dict[str, str] | None = None) -> GatewaySet:
        """A test's gateways; with `websocket_port`, the first one's HTTP port (where its IRC
        WebSocket listens) is that one; `env`, settings of their own."""
        workdir = Path(tempfile.mkdtemp(prefix="canaduck-irctest-"))
        prefix = f"canaduck:irctest:{os.getpid()}:{next(_run.serial)}:"
        gateways = []
        try:
            for index in range(GATEWAYS):
                http_port = websocket_port if websocket_port is not None and index == 0 else free_port()
                spec = GatewaySpec(port=free_port(), http_port=http_port, password=password,
                                   env=dict(env or {}))
                if tls is not None:
                    spec.tls_port = free_port()
                    spec.tls_cert, spec.tls_key = tls
                gateways.append(self.start_gateway(spec, workdir, index, prefix))
        except BaseException:
            stop_gateways(gateways)
            raise
        return GatewaySet(gateways, workdir, prefix)

    def run(self, hostname: str, port: int, *, password: str | None, ssl: bool, run_services: bool,
            faketime: str | None, websocket_hostname: str | None = None,
            websocket_port: int | None = None, **_: Any) -> None:
        if websocket_port is not None and not self.websocket:
            raise NotImplementedByController("WebSocket")
        self.sync_sleep_time = WEBSOCKET_SYNC_SLEEP if websocket_port is not None else SYNC_SLEEP
        assert self.current is None
        # irctest hands out ports found on 0.0.0.0; everything here binds loopback only.
        self.hostname, self.port = hostname, port
        # irctest picked the port and let it go: held until the proxy takes it, so that the
        # gateways launched meanwhile (their ports picked here too) cannot be given it.
        with socket.socket() as held:
            held.bind(("127.0.0.1", port))
            backends = self._launch_for(password, ssl, websocket_port)
        self.proxy = ThreadedProxy(("127.0.0.1", port), backends).start()

    def _launch_for(self, password: str | None, ssl: bool,
                    websocket_port: int | None) -> list[tuple[str, int]]:
        """The test's gateways (the spare set when it fits), the next test's spare started;
        the addresses the proxy spreads the test's connections over."""
        for stale in list(_run.live):
            stale.kill_proc()  # a test whose tearDown never came (unittest skips it when setUp fails)
        self.before_test()
        _run.live.add(self)
        if _run.spare is not None and not _run.spare.alive():
            _run.retire(_run.spare)  # it crashed: the test starts its own, which will tell why
            _run.spare = None
        own_env = self.own_settings()
        if password is None and not ssl and websocket_port is None and not own_env and \
                _run.spare is not None:
            spare, _run.spare = _run.spare, None
            self.current = self.listening(spare, self.launch)
        else:
            tls = None
            if ssl:
                self.create_config()
                self.gen_ssl()
                tls = (self.pem_path, self.key_path)
            self.current = self.listening(self.launch(password, tls, websocket_port, own_env),
                                          lambda: self.launch(password, tls, websocket_port, own_env))
        self.proc = self.current.gateways[0].proc
        if _run.spare is None:
            _run.spare = self.launch()  # the next test's, starting while this one runs
        return [("127.0.0.1", g.listen_port) for g in self.current.gateways]

    def listening(self, gateways: GatewaySet, again: Callable[[], GatewaySet]) -> GatewaySet:
        """`gateways` once every one listens, or a set made `again` (on other ports) when one
        could not bind its port: another pytest worker may take a port between its pick and
        its bind. Any other failure is the test's (ProcessStopped)."""
        for attempt in range(3):
            try:
                for gateway in gateways.gateways:
                    gateway.wait(START_TIMEOUT)
                return gateways
            except RuntimeError as exc:
                _run.retire(gateways)
                if "Address already in use" not in str(exc) or attempt == 2:
                    raise ProcessStopped(str(exc)) from None
            gateways = again()
        raise AssertionError("unreachable")

    def check_is_alive(self) -> None:
        for gateway in self.current.gateways if self.current else []:
            if not gateway.alive():
                raise ProcessStopped(f"{gateway.name} exited with {gateway.proc.returncode}")

    def wait_for_port(self) -> None:
        """Every gateway listens (checked on its own port, behind the proxy's back)."""
        if self.port_open:
            return
        assert self.current is not None
        for gateway in self.current.gateways:
            try:
                gateway.wait(START_TIMEOUT)
            except RuntimeError as exc:
                raise ProcessStopped(str(exc)) from None
        self.port_open = True

    def wait_for_services(self) -> None:
        """The users service is up for the whole run: nothing to wait for per test."""

    # -- stopping ----------------------------------------------------------------------------
    def kill_proc(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None
        if self.current is not None:
            _run.retire(self.current)
            self.current = None
        self.proc = None
        _run.live.discard(self)

    def kill(self) -> None:
        self.kill_proc()
        super().kill()


class CanaduckController(_GatewaysController):
    """Our gateways (`apps.ircd`) over the run's Redis and users service."""

    software_name = "canaduck"
    supported_sasl_mechanisms = {"PLAIN"}
    supports_sts = False
    websocket = True
    capabilities = frozenset({
        Capabilities.ECHO_MESSAGE,
        Capabilities.MESSAGE_TAGS,
        Capabilities.SERVER_TIME,
        Capabilities.BATCH,
        Capabilities.ACCOUNT_TAG,
        Capabilities.AWAY_NOTIFY,
        Capabilities.EXTENDED_JOIN,
        Capabilities.EXTENDED_MONITOR,
        Capabilities.LABELED_RESPONSE,
        Capabilities.MULTI_PREFIX,
        Capabilities.SETNAME,
    })
    optional_behaviors = frozenset({
        OptionalBehaviors.BAN_EXCEPTION_MODE,
        OptionalBehaviors.INVITE_EXCEPTION_MODE,
        OptionalBehaviors.MULTI_JOIN,
        OptionalBehaviors.MULTI_KICK,
    })
    #: The ISUPPORT tokens the gateway promises (docs/ircd.md), checked by irctest's
    #: `testValues`; None: present without a value.
    isupport: dict[str, Any] = {
        "CASEMAPPING": "ascii",
        "CHANMODES": "Ibe,k,l,imnst",
        "CHATHISTORY": "100",
        "ELIST": "CMNTU",
        "EXCEPTS": "e",
        "INVEX": "I",
        "MONITOR": patma.ANYSTR,
        "MSGREFTYPES": "msgid,timestamp",
        "PREFIX": "(ov)@+",
        "STATUSMSG": "@+",
        "TARGMAX": patma.ANYSTR,
        "UTF8ONLY": None,
        "WHOX": None,
    }

    def start_gateway(self, spec: GatewaySpec, workdir: Path, index: int, prefix: str) -> Gateway:
        chat = _run.chat()
        # Its own key prefix: the test's admin login, as the ACL users are tied to canaduck:*.
        spec.env.update(KEY_PREFIX=prefix, REDIS_URL=chat.server.admin_url,
                        IRC_OPERS="operuser:operpassword")  # the operator irctest's tests use
        # irctest's default configuration has no account registration before connecting.
        spec.env.setdefault("ACCOUNT_REGISTRATION_BEFORE_CONNECT", "0")
        return chat.start_ircd(spec, f"ircd-{index + 1}-{spec.port}")

    def before_test(self) -> None:
        if self.test_config.account_registration_requires_email:
            # The users service keeps no email address, so no registration ever needs one.
            raise NotImplementedByController("account-registration with email-required")
        _run.chat().reset("canaduck:users:*")  # accounts are shared by every test's gateways

    def own_settings(self) -> dict[str, str]:
        if self.test_config.account_registration_before_connect:
            return {"ACCOUNT_REGISTRATION_BEFORE_CONNECT": "1"}
        return {}

    def registerUser(self, case: Any, username: str, password: str | None = None) -> None:
        """An account made through the users service (what the web page's sign-up does)."""
        if not case.run_services:
            raise ValueError("Attempted to register a nick, but `run_services` it not True.")
        assert password
        _run.chat().register(username, password)


class ProxiedNgircdController(_GatewaysController):
    """Debian's ngIRCd behind the proxy: the tooling checked against a real server."""

    software_name = "ngIRCd"  # irctest's own allowances for ngIRCd apply, as upstream
    supported_sasl_mechanisms: set[str] = set()
    supports_sts = False

    def start_gateway(self, spec: GatewaySpec, workdir: Path, index: int, prefix: str) -> Gateway:
        if spec.tls_port is not None:
            raise NotImplementedByController("TLS in the generated ngIRCd config")
        return start_ngircd(spec, workdir)


def get_irctest_controller_class() -> type[_GatewaysController]:
    return ProxiedNgircdController if SERVER == "ngircd" else CanaduckController
