"""The chat for tests and benchmarks: its backing (Redis, the users and messages services) and
IRC gateways started one by one on given ports: ours (`apps.ircd`) or Debian's ngIRCd.

ngIRCd is the peer: the tooling (irctest's controller, the round-robin proxy, the real
clients' tests, the benchmark) is checked against a real server nobody here wrote, and the
score table and the benchmark show it beside ours. Only ours shares state between replicas.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import ssl
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from scripts.devkit.processes import ROOT, scratch_dir, stop_process
from scripts.devkit.redis_server import RedisServer
from scripts.devkit.services import ServiceLauncher
from scripts.devkit.waiting import NotMet, wait_until

#: What a reset spares: each service's directory hash and the index of their names.
DIRECTORY_PREFIX, SERVICES_KEY = "canaduck:directory:", "canaduck:services"

# Deletes the keys matching ARGV[1] but the directory (services registered there stay found).
_RESET_SCRIPT = """
local n = 0
for _, key in ipairs(redis.call('KEYS', ARGV[1])) do
  if key:sub(1, #ARGV[2]) ~= ARGV[2] and key ~= ARGV[3] then redis.call('DEL', key); n = n + 1 end
end
return n
"""

#: ngIRCd's listen backlog: `listen(sock, 10)` in its conn.c, in every release up to 28; no
#: setting changes it. Past 10 handshakes waiting for its accept() the kernel drops the next
#: ones, and a client whose last handshake packet was dropped believes itself connected and
#: waits on TCP's retransmission timers (minutes at worst) for the server to see it.
NGIRCD_LISTEN_BACKLOG = 10
#: The descriptors ngIRCd keeps for itself (stdio, log, epoll, listener, the one accept() takes
#: before refusing): its MaxConnections is its open-files limit less these.
NGIRCD_OWN_FILES = 20

NGIRCD_CONFIG = """\
[Global]
    Name = My.Little.Server
    Info = ngIRCd for canaduck's tests
    Listen = 127.0.0.1
    Ports = {port}
    AdminInfo1 = canaduck tests
    AdminEMail = nobody@example.org
    {password_field}
[Limits]
    MaxNickLength = 32
    MaxConnections = {max_connections}
    MaxConnectionsIP = 0
    MaxJoins = 0
    PingTimeout = 600
    PongTimeout = 600
[Options]
    MorePrivacy = no
    PAM = no
    Ident = no
    DNS = no
[Operator]
    Name = operuser
    Password = operpassword
"""


def has_ircd() -> bool:
    """Whether this checkout has our gateway."""
    return (ROOT / "apps" / "ircd" / "app.py").exists()


def ngircd_binary() -> str | None:
    found = shutil.which("ngircd")
    if found:
        return found
    return "/usr/sbin/ngircd" if os.access("/usr/sbin/ngircd", os.X_OK) else None


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def client_tls_context() -> ssl.SSLContext:
    """What a load generator's TLS clients use: the run's self-signed certificate is not
    checked (what is measured is the servers' cost of TLS, not the trust in a name)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def self_signed(workdir: Path) -> tuple[Path, Path]:
    """A certificate and its key for the run's TLS listeners, made with openssl."""
    cert, key = workdir / "bench-cert.pem", workdir / "bench-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=bench.canaduck", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@dataclass
class GatewaySpec:
    """Where one gateway listens: IRC on `port`, IRC over TLS on `tls_port` when set."""

    port: int
    http_port: int = 0
    tls_port: int | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    password: str | None = None
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Gateway:
    """One running gateway process."""

    name: str
    spec: GatewaySpec
    proc: subprocess.Popen
    log_path: Path

    @property
    def listen_port(self) -> int:
        return self.spec.tls_port if self.spec.tls_port is not None else self.spec.port

    def alive(self) -> bool:
        return self.proc.poll() is None

    def listening(self) -> bool:
        if not self.alive():
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.log()[-2000:]}")
        return port_open(self.listen_port)

    def wait(self, timeout: float = 20.0) -> Gateway:
        """Until it listens (polled fast: a test's server start is on its clock)."""
        try:
            wait_until(self.listening, timeout, interval=0.01)
        except NotMet:
            raise RuntimeError(f"{self.name} not listening on {self.listen_port} within {timeout} s: "
                               f"{self.log()[-2000:]}") from None
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 3.0) -> None:
        stop_process(self.proc, timeout=timeout)


def stop_gateways(gateways: list[Gateway], timeout: float = 3.0) -> None:
    """SIGTERM them all at once, then wait for each (SIGKILL after `timeout`): replicas
    shut down side by side, not one after the other."""
    for gateway in gateways:
        if gateway.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(gateway.proc.pid, signal.SIGTERM)
    for gateway in gateways:
        gateway.stop(timeout)


def ngircd_max_connections() -> int:
    """What ngIRCd's MaxConnections is set to: the open files it inherits from this process,
    less its own. Past it a client is told `ERROR :Connection limit reached`; without it an
    accept() past the limit fails with EMFILE and the client waits unanswered. 0 (no limit)
    when the open files are unlimited."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 0 if soft == resource.RLIM_INFINITY else max(1, soft - NGIRCD_OWN_FILES)


def start_ngircd(spec: GatewaySpec, workdir: Path) -> Gateway:
    binary = ngircd_binary()
    if binary is None:
        raise RuntimeError("ngircd is not installed (apt-get install ngircd)")
    if spec.tls_port is not None:
        raise RuntimeError("TLS is not in the generated ngIRCd config")
    conf = workdir / f"ngircd-{spec.port}.conf"
    password_field = f"Password = {spec.password}" if spec.password else ""
    conf.write_text(NGIRCD_CONFIG.format(port=spec.port, password_field=password_field,
                                         max_connections=ngircd_max_connections()))
    log = workdir / f"ngircd-{spec.port}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([binary, "--nodaemon", "--config", str(conf)], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    return Gateway(f"ngircd-{spec.port}", spec, proc, log)


@dataclass
class ChatBacking:
    """A Redis-compatible server with the project's ACL and, when the checkout has them, the
    users and messages services: what every gateway of a run shares."""

    server: RedisServer = field(default_factory=RedisServer)
    launcher: ServiceLauncher | None = None
    services: dict[str, str] = field(default_factory=dict)

    def start(self) -> ChatBacking:
        self.server.start()
        self.launcher = ServiceLauncher(self.server)
        try:
            for service in ("users", "messages"):
                if (ROOT / "apps" / service / "app.py").exists():
                    # irctest's passwords are short ("sesame1") or long (600 characters, to
                    # test SASL split over several lines): the length rules are settings.
                    svc = self.launcher.start(f"apps.{service}", service, LOG_LEVEL="WARNING",
                                              PASSWORD_MIN_LENGTH="1", PASSWORD_MAX_LENGTH="1024")
                    self.services[service] = svc.url
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def workdir(self) -> Path:
        return self.server.workdir

    def reset(self, pattern: str = "*") -> int:
        """Delete the keys matching `pattern` (all: accounts, channels, history, limits), never
        the directory; returns how many went."""
        with self.server.admin() as admin:
            return int(admin.eval(_RESET_SCRIPT, 0, pattern, DIRECTORY_PREFIX, SERVICES_KEY))

    def register(self, account: str, password: str) -> None:
        """An account made through the users service, as the web page's sign-up does."""
        url = self.services.get("users")
        if url is None:
            raise RuntimeError("this checkout has no users service")
        response = httpx.post(f"{url}/api/users/register", json={"account": account, "password": password},
                              timeout=10)
        if response.status_code != 201:
            raise RuntimeError(f"register {account}: {response.status_code} {response.text}")

    def ircd_env(self, spec: GatewaySpec, instance: str) -> dict[str, str]:
        """A gateway's environment: its ports, Redis, the users service, and the flood and
        per-IP limits raised (a test suite or a load generator sends many lines from one IP)."""
        env = {
            "INSTANCE_ID": instance, "LOG_LEVEL": "WARNING",
            "IRC_HOST": "127.0.0.1", "IRC_PORT": str(spec.port), "SERVER_NAME": "My.Little.Server",
            "FLOOD_LINES": "1000000", "MAX_CONNECTIONS_PER_IP": "100000",
            "IRC_TLS_PORT": str(spec.tls_port or 0),
        }
        if "users" in self.services:
            # A fixed URL: a gateway of irctest has a key prefix of its own, so the run's users
            # service is not in its directory. Without one, a gateway offers no SASL.
            env["USERS_URL"] = self.services["users"]
        if spec.tls_port is not None:
            env.update(TLS_CERT=str(spec.tls_cert), TLS_KEY=str(spec.tls_key))
        if spec.password:
            env["IRC_PASSWORD"] = spec.password
        env.update(spec.env)
        return env

    def start_ircd(self, spec: GatewaySpec, instance: str) -> Gateway:
        """One of our gateways (`python -m apps.kit.serve apps.ircd`), not waited for."""
        assert self.launcher is not None
        svc = self.launcher.launch("apps.ircd", "ircd", wait=False, port=spec.http_port or None,
                                   env=self.ircd_env(spec, instance))
        spec.http_port = svc.port
        return Gateway(instance, spec, svc.proc, svc.log_path)

    def stop(self) -> None:
        if self.launcher is not None:
            self.launcher.stop_all()
        self.server.stop()


__all__ = ["NGIRCD_LISTEN_BACKLOG", "ChatBacking", "Gateway", "GatewaySpec", "client_tls_context", "has_ircd",
           "ngircd_binary", "ngircd_max_connections",
           "port_open", "scratch_dir", "self_signed", "start_ngircd", "stop_gateways"]
