"""The chaos run's report: what counts as a failure, and whether it says why."""

from __future__ import annotations

from scripts.devkit.chaos import Fault, Report, Sample


def report(samples: list[Sample], faults: list[Fault]) -> Report:
    return Report(began=0.0, ended=20.0, samples=samples, faults=faults, written=0, lost=[],
                  route_names=["GET /sum", "GET /rally"], need_redis={"GET /rally"})


def test_a_failure_during_a_redis_outage_counts_there_and_one_outside_counts_as_failed():
    samples = [
        Sample("GET /rally", 3.0, 3.2, 503, False, True, "503 '{\"error\": \"Redis unavailable\"}'"),
        Sample("GET /sum", 9.0, 14.0, 502, False, False, "502 ''"),
        Sample("GET /sum", 10.0, 10.1, 200, True, False),
    ]
    faults = [Fault("kill redis", "redis", began=2.0, over=4.0), Fault("kill", "calc-2", began=8.0, over=9.5)]
    result = report(samples, faults)
    assert (result.failed, result.failed_in_outage, result.bad_outage_answers) == (1, 1, 0)
    assert faults[1].failures == 1 and faults[1].recovery == 4.5
    assert not result.met(max_recovery=5.0)  # a failure outside the outage misses the target


def test_the_report_lists_why_each_failure_outside_an_outage_failed():
    samples = [Sample("GET /sum", 9.0, 14.0, 0, False, False, "ReadTimeout: timed out")]
    text = report(samples, [Fault("freeze", "calc-1", began=8.0, over=11.0)]).render(window=2.0)
    assert "failures outside a Redis outage" in text
    assert "GET /sum" in text and "ReadTimeout: timed out" in text


def test_a_clean_run_lists_no_failures():
    text = report([Sample("GET /sum", 1.0, 1.1, 200, True, False)], []).render(window=2.0)
    assert "failures outside a Redis outage" not in text
