"""Real IRC clients driven from tests: Debian's `ii` (files and FIFOs) and `weechat-headless`
(its FIFO plugin in, its logger plugin out). Each client is one process in a session of its
own, stopped by `stop()` (SIGKILL as a last resort)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from scripts.devkit import stop_process, wait_until


def missing(binary: str) -> str | None:
    """Why a test of this client cannot run here, or None."""
    if shutil.which(binary) is None:
        return f"{binary} is not installed (apt-get install {binary})"
    return None


def _write_fifo(path: Path, line: str) -> None:
    # O_NONBLOCK: fails at once (ENXIO) instead of hanging if the client is gone.
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@dataclass
class IiClient:
    """`ii -s 127.0.0.1 -p PORT -n NICK -i DIR`: write to `DIR/127.0.0.1/in`, read `out` files."""

    nick: str
    port: int
    home: Path
    proc: subprocess.Popen | None = None

    @property
    def server_dir(self) -> Path:
        return self.home / "127.0.0.1"

    def start(self) -> IiClient:
        self.home.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["ii", "-s", "127.0.0.1", "-p", str(self.port), "-n", self.nick, "-i", str(self.home)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until(lambda: (self.server_dir / "in").exists() and self.registered(), 15, interval=0.05)
        return self

    def server_log(self) -> str:
        path = self.server_dir / "out"
        return path.read_text(errors="replace") if path.exists() else ""

    def registered(self) -> bool:
        # ii logs the text of the server's lines, the welcome (001) first; it names our nick.
        return self.nick in self.server_log()

    def command(self, line: str, channel: str | None = None) -> None:
        target = self.server_dir / channel.lower() if channel else self.server_dir
        _write_fifo(target / "in", line)

    def join(self, channel: str) -> None:
        self.command(f"/j {channel}")
        wait_until(lambda: (self.server_dir / channel.lower() / "in").exists(), 10, interval=0.05)

    def say(self, channel: str, text: str) -> None:
        self.command(text, channel)

    def channel_log(self, channel: str) -> str:
        path = self.server_dir / channel.lower() / "out"
        return path.read_text(errors="replace") if path.exists() else ""

    def saw(self, channel: str, nick: str, text: str) -> bool:
        return f"<{nick}> {text}" in self.channel_log(channel)

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(OSError):
                self.command("/q bye")
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(2)
            stop_process(self.proc)


@dataclass
class WeechatClient:
    """`weechat-headless --dir HOME`: commands through its FIFO, channel text from its logs."""

    nick: str
    port: int
    home: Path
    server: str = "t"
    proc: subprocess.Popen | None = None
    extra: list[str] = field(default_factory=list)

    def start(self) -> WeechatClient:
        self.home.mkdir(parents=True, exist_ok=True)
        commands = [
            "/set logger.file.flush_delay 0",
            "/set logger.file.auto_log on",
            "/set irc.look.temporary_servers on",
            f"/server add {self.server} 127.0.0.1/{self.port} -notls",
            f"/set irc.server.{self.server}.nicks {self.nick}",
            f"/set irc.server.{self.server}.username {self.nick}",
            f"/set irc.server.{self.server}.autoreconnect off",
            *self.extra,
            f"/connect {self.server}",
        ]
        self.proc = subprocess.Popen(
            ["weechat-headless", "--dir", str(self.home), "--no-script", "--run-command", ";".join(commands)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            start_new_session=True)
        wait_until(lambda: self.fifo() is not None, 15, interval=0.05)
        wait_until(self.registered, 15, interval=0.05)
        return self

    def fifo(self) -> Path | None:
        found = sorted(self.home.glob("weechat_fifo*"))
        return found[0] if found else None

    def _log(self, name: str) -> str:
        path = self.home / "logs" / name
        return path.read_text(errors="replace") if path.exists() else ""

    def server_log(self) -> str:
        return self._log(f"irc.server.{self.server}.weechatlog")

    def registered(self) -> bool:
        # The server buffer's log shows the welcome (001) text, which names our nick.
        return any(self.nick in line and "irc:" not in line for line in self.server_log().splitlines())

    def command(self, text: str, buffer: str | None = None) -> None:
        fifo = self.fifo()
        assert fifo is not None
        target = f"irc.{buffer} " if buffer else f"irc.server.{self.server} "
        _write_fifo(fifo, f"{target}*{text}")

    def join(self, channel: str) -> None:
        self.command(f"/join {channel}")
        log = self.home / "logs" / f"irc.{self.server}.{channel.lower()}.weechatlog"
        wait_until(log.exists, 10, interval=0.05)

    def say(self, channel: str, text: str) -> None:
        self.command(text, f"{self.server}.{channel}")

    def channel_log(self, channel: str) -> str:
        return self._log(f"irc.{self.server}.{channel.lower()}.weechatlog")

    def saw(self, channel: str, nick: str, text: str) -> bool:
        # A logged line: "<date> <time>\t<prefix><nick>\t<text>".
        return any(line.endswith(f"\t{text}") and f"{nick}\t" in line
                   for line in self.channel_log(channel).splitlines())

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(OSError, AssertionError):
                self.command("/quit bye")
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(3)
            stop_process(self.proc)
