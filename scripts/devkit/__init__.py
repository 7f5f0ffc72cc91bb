"""The dev toolkit: what scripts/ and tests/ both use to run, drive and measure the stack.

- `processes`: the checkout's root, scratch directories, free ports, stopping a process group
- `waiting`: the one polling loop (`wait_until`, `eventually`, `wait_until_async`)
- `redis_server`: the embedded Redis-compatible server on a free port, with the project's ACL
- `redis_cluster`: a Valkey Cluster of those servers (3 primaries, 3 replicas), formed by hand
- `services`: service processes run one by one against that server
- `stack`: the processes of the local stack (what `scripts/up` runs)
- `localstack`: that stack started in the background on free ports, and driven
- `stats`: the one percentile (from `apps/kit/stats.py`)
- `loadgen`: a keep-alive HTTP load generator; `requestloop`: a request loop for failover
- `ircstack`: the chat for tests and benchmarks (Redis, users, messages) and IRC gateways
  started one by one (ours, or ngIRCd as the peer); `rrproxy`: a round-robin TCP proxy
- `broker_relay`, `raw_pubsub`: the broker alone, and the raw pub/sub round trips it is compared
  with (scripts/bench-rally, scripts/bench-scale)
- `chaos`: a mixed request loop while faults hit a running stack (local or compose), and its report
- `rawhttp`: HTTP/1.1 written and read byte by byte on one socket (framing, resets, closes)
- `inprocess`: every service's app built in process on a Redis client given (fakeredis), its
  calls to other services answered by a stand-in (imported by name: it imports every service)
- `fuzz_http`: Hypothesis against every route of those apps (scripts/fuzz, tests/unit/test_fuzz_http.py)

Nothing here is imported by the services; scripts/ entry points and tests import from here
(`from scripts.devkit import LocalStack, wait_until`), never from each other.
"""

from scripts.devkit.localstack import LocalStack
from scripts.devkit.processes import ROOT, free_port, free_port_block, scratch_dir, stop_process
from scripts.devkit.redis_cluster import ValkeyCluster, running_cluster
from scripts.devkit.redis_server import ADMIN_PASSWORD, ADMIN_USER, RedisServer, running_server
from scripts.devkit.services import ServiceLauncher, ServiceProcess, start_at
from scripts.devkit.stats import percentile
from scripts.devkit.waiting import NotMet, eventually, wait_until, wait_until_async

__all__ = [
    "ADMIN_PASSWORD", "ADMIN_USER", "ROOT", "LocalStack", "NotMet", "RedisServer", "ServiceLauncher",
    "ServiceProcess", "ValkeyCluster", "eventually", "free_port", "free_port_block", "percentile",
    "running_cluster", "running_server", "scratch_dir", "start_at", "stop_process", "wait_until",
    "wait_until_async",
]
