"""Chaos against compose: a fault reaches the one container the victim names, a scaled
replica (`calc-2`) included, which `docker compose exec calc-2` would not find."""

from __future__ import annotations

import subprocess

import pytest

from scripts.devkit.chaos import ComposeTarget

#: (service, container number) -> container id, as compose's labels would answer.
CONTAINERS = {("calc", "1"): "c1", ("calc", "2"): "c2", ("ping", "1"): "p1", ("mult-a", "1"): "ma",
              ("redis", "1"): "r1"}


class RecordingTarget(ComposeTarget):
    def __init__(self) -> None:
        super().__init__("proj", 8080)
        self.calls: list[tuple[str, ...]] = []

    def docker(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        self.calls.append(args)
        if args[0] == "ps":
            labels = dict(arg.removeprefix("label=com.docker.compose.").split("=", 1)
                          for arg in args if arg.startswith("label="))
            assert labels["project"] == "proj"
            found = CONTAINERS.get((labels["service"], labels["container-number"]), "")
            return subprocess.CompletedProcess(args, 0, found + "\n", "")
        return subprocess.CompletedProcess(args, 0, "PONG\n", "")


@pytest.mark.parametrize(("instance", "container"), [
    ("calc-2", "c2"), ("calc-1", "c1"), ("ping", "p1"), ("mult-a", "ma"), ("redis", "r1"),
])
def test_an_instance_names_one_container(instance: str, container: str):
    assert RecordingTarget().container(instance) == container


def test_a_missing_instance_is_an_error_not_a_silent_no_op():
    with pytest.raises(LookupError, match="calc-7"):
        RecordingTarget().container("calc-7")


def test_a_kill_and_a_freeze_hit_only_that_replica():
    target = RecordingTarget()
    target.kill("calc-2")
    target.freeze("calc-2")
    target.thaw("calc-2")
    actions = [call for call in target.calls if call[0] != "ps"]
    assert actions == [("exec", "-u", "0", "c2", "sh", "-c", "kill -KILL -1"),
                       ("pause", "c2"), ("unpause", "c2")]
    assert target.redis_answers()
