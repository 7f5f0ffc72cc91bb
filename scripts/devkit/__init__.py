"""The dev toolkit: what scripts/ and tests/ both use to run, drive and measure the stack.

A package of the project (pyproject.toml installs it beside apps/), one module per job: the
README's "The dev toolkit" has a line for each, and each module's docstring says the rest.
The names most tests need are here too: `from scripts.devkit import LocalStack, wait_until`.

Nothing here is imported by the services; scripts/ entry points and tests import from here,
never from each other.
"""

from scripts.devkit.localstack import LocalStack
from scripts.devkit.processes import ROOT, free_port, free_port_block, free_ports, scratch_dir, stop_process
from scripts.devkit.redis_cluster import ValkeyCluster, running_cluster
from scripts.devkit.redis_server import ADMIN_PASSWORD, ADMIN_USER, RedisServer, running_server
from scripts.devkit.services import ServiceLauncher, ServiceProcess, start_at
from scripts.devkit.stats import percentile
from scripts.devkit.waiting import NotMet, eventually, wait_until, wait_until_async

__all__ = [
    "ADMIN_PASSWORD", "ADMIN_USER", "ROOT", "LocalStack", "NotMet", "RedisServer", "ServiceLauncher",
    "ServiceProcess", "ValkeyCluster", "eventually", "free_port", "free_port_block", "free_ports",
    "percentile", "running_cluster", "running_server", "scratch_dir", "start_at", "stop_process",
    "wait_until", "wait_until_async",
]
