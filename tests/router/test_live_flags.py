"""Live flags from SSM: cached, refreshed when due (bounded), last good kept on failure."""

from __future__ import annotations

import json
import logging
import time

import pytest

from router.counters import metrics
from router.live_flags import LiveFlags
from router.sources import EnvironmentSource, SSMParameterSource, StaticSource
from sandbox.servers import free_port
from tests.router.conftest import put_flags, wait_for

TTL = 0.2


@pytest.fixture
def live(flags_parameter, ssm_proxy):
    """Flags as the backend reads them: SSM (through the fault proxy) under the environment."""
    put_flags(flags_parameter, {"phase": "canary", "lambda_percent": 10})
    return LiveFlags([SSMParameterSource(flags_parameter), EnvironmentSource()], ttl=TTL, first_load_timeout=10,
                     refresh_timeout=10)  # moto on a loaded machine may take more than the default second


def refresh_failures(caplog) -> list[dict]:
    lines = [json.loads(record.getMessage()) for record in caplog.records if record.name == "router"]
    return [line for line in lines if line["event"] == "router.flags_refresh_failed"]


def test_first_load_reads_the_parameter(live):
    flags = live.current()
    assert (flags.phase, flags.lambda_percent, flags.version) == ("canary", 10, "ssm:1")


def test_a_toggle_shows_after_the_cache_time(live, flags_parameter):
    assert live.current().phase == "canary"
    put_flags(flags_parameter, {"phase": "lambda"})
    assert wait_for(lambda: live.current().phase == "lambda", timeout=5)
    assert live.current().version == "ssm:2"


def test_the_first_read_after_an_idle_gap_sees_a_change_made_during_it(live, flags_parameter):
    """The reproduction: flags loaded, a quiet spell longer than the cache, a kill switch set in it."""
    assert live.current().phase == "canary"
    put_flags(flags_parameter, {"phase": "canary", "lambda_percent": 10, "kill_switch": True})
    time.sleep(TTL * 3)  # idle: no request reads the flags
    flags = live.current()  # the very first read after the gap, no retry
    assert flags.kill_switch and flags.version == "ssm:2"


def test_a_due_refresh_waits_for_a_slow_source(live, flags_parameter, ssm_proxy):
    assert live.current().version == "ssm:1"
    put_flags(flags_parameter, {"phase": "lambda"})
    # SSM answers, slowly but within the refresh timeout.
    ssm_proxy.before(lambda exchange: exchange.target == "AmazonSSM.GetParameter", lambda: time.sleep(1.5))
    time.sleep(TTL * 2)
    assert live.current().phase == "lambda"


def test_a_due_refresh_gives_up_on_a_hung_source_keeps_the_last_good_flags_and_logs_it(
        flags_parameter, ssm_proxy, caplog):
    put_flags(flags_parameter, {"phase": "canary", "lambda_percent": 10})
    live = LiveFlags([SSMParameterSource(flags_parameter), EnvironmentSource()], ttl=TTL, first_load_timeout=10)
    assert live.current().phase == "canary"
    caplog.set_level(logging.WARNING, logger="router")
    ssm_proxy.hang()
    put_flags(flags_parameter, {"phase": "lambda"})  # directly in moto, not through the hung proxy
    time.sleep(TTL * 2)
    assert live.current().phase == "canary"  # after waiting for SSM in vain: the last good flags
    [failure] = refresh_failures(caplog)
    assert failure == {"event": "router.flags_refresh_failed", "source": f"ssm:{flags_parameter}",
                       "error": "no answer within 1 s", "keeping": "ssm:1"}
    ssm_proxy.heal()
    assert wait_for(lambda: live.current().phase == "lambda", timeout=10)


def test_first_load_is_bounded_and_the_environment_applies_meanwhile(flags_parameter, ssm_proxy, monkeypatch):
    put_flags(flags_parameter, {"phase": "canary"})
    live = LiveFlags([SSMParameterSource(flags_parameter), EnvironmentSource()], ttl=TTL, first_load_timeout=0.5)
    monkeypatch.setenv("ROUTER_KILL_SWITCH", "true")
    ssm_proxy.hang()
    flags = live.current()  # returns after first_load_timeout, without SSM
    assert flags.kill_switch and flags.phase == "celery" and flags.version.startswith("env:")
    ssm_proxy.heal()
    assert wait_for(lambda: live.current().phase == "canary", timeout=10)
    assert live.current().kill_switch


@pytest.mark.parametrize("fault", ["server_error", "invalid_json", "invalid_value", "not_an_object"])
def test_a_failed_refresh_keeps_the_last_good_flags(fault, live, flags_parameter, ssm_proxy, caplog):
    assert live.current().version == "ssm:1"
    failures_before = metrics()["flag_refresh_failures"].get(f"ssm:{flags_parameter}", 0)
    caplog.set_level(logging.WARNING, logger="router")
    if fault == "server_error":
        ssm_proxy.fail(500)
    else:
        put_flags(flags_parameter, {"invalid_json": "{phase: lambda", "invalid_value": {"phase": "lambda", "lambda_percent": 300},
                                    "not_an_object": "[1, 2]"}[fault])
    assert wait_for(lambda: live.current() and refresh_failures(caplog), timeout=5)
    flags = live.current()
    assert (flags.phase, flags.lambda_percent, flags.version) == ("canary", 10, "ssm:1")
    [failure] = refresh_failures(caplog)[:1]
    assert failure["source"] == f"ssm:{flags_parameter}" and failure["keeping"] == "ssm:1"
    if fault == "invalid_value":
        assert failure["error"].startswith("lambda_percent:")
    assert metrics()["flag_refresh_failures"][f"ssm:{flags_parameter}"] > failures_before


def test_with_ssm_down_from_the_start_the_safe_default_applies(flags_parameter, monkeypatch, caplog):
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", f"http://127.0.0.1:{free_port()}")
    caplog.set_level(logging.WARNING, logger="router")
    flags = LiveFlags([SSMParameterSource(flags_parameter), EnvironmentSource()], ttl=TTL).current()
    assert (flags.phase, flags.version) == ("celery", "defaults")
    assert refresh_failures(caplog)[0]["keeping"] == "defaults"


def test_an_in_memory_source_can_be_toggled():
    source = StaticSource({"phase": "lambda"})
    live = LiveFlags([source], ttl=TTL)
    assert live.current().phase == "lambda"
    source.set({"phase": "celery"})
    assert wait_for(lambda: live.current().phase == "celery", timeout=5)
