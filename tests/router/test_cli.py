"""``python -m router``: flags show/set/reset with optimistic concurrency, phase, explain, simulate, help."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from router.cli import main
from router.decide import decide
from router.flags import FLAG_HELP, PHASE_HELP
from router.live_flags import LiveFlags
from router.sources import EnvironmentSource, SSMParameterSource
from sandbox import backend
from tests.router.conftest import S3_KEY, invocations, make_router, put_flags, upload, wait_for

ROOT = Path(__file__).resolve().parents[2]


def stored(name: str) -> tuple[dict, int]:
    parameter = boto3.client("ssm", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).get_parameter(Name=name)["Parameter"]
    return json.loads(parameter["Value"]), parameter["Version"]


def run(*args: str) -> subprocess.CompletedProcess:
    """The command as an operator runs it: a process of its own, the shell's environment."""
    return subprocess.run([sys.executable, "-m", "router", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def one_line_error(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_set_creates_the_parameter_and_show_says_where_each_value_came_from(flags_parameter, monkeypatch, capsys):
    assert main(["flags", "set", "phase=canary", "lambda_percent=12.5", "lambda_users=u1, u2"]) == 0
    assert stored(flags_parameter) == ({"phase": "canary", "lambda_percent": 12.5, "lambda_users": ["u1", "u2"]}, 1)

    monkeypatch.setenv("ROUTER_KILL_SWITCH", "true")
    capsys.readouterr()
    assert main(["flags", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["flags"]["phase"] == "canary" and shown["flags"]["kill_switch"] is True
    assert shown["sources"]["phase"] == f"ssm:{flags_parameter}"
    assert shown["sources"]["kill_switch"] == "env ROUTER_KILL_SWITCH"
    assert shown["sources"]["salt"] == "default"
    assert shown["version"].startswith("ssm:1+env:")

    assert main(["flags", "show"]) == 0
    table = capsys.readouterr().out
    assert "lambda_users              u1,u2" in table and f"ssm:{flags_parameter}" in table


def test_set_keeps_the_other_stored_flags_and_an_empty_value_removes_one(flags_parameter, capsys):
    assert main(["flags", "set", "phase=canary", "lambda_percent=5"]) == 0
    assert main(["flags", "set", "lambda_percent=20"]) == 0
    assert stored(flags_parameter) == ({"phase": "canary", "lambda_percent": 20.0}, 2)
    put_flags(flags_parameter, {"phase": "canary", "lambda_percent": 20, "typo_flag": 1})  # edited by hand
    capsys.readouterr()
    assert main(["flags", "set", "lambda_percent=", "typo_flag="]) == 0
    assert stored(flags_parameter) == ({"phase": "canary"}, 4)
    assert "lambda_percent: 20 -> (default)" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "message"), [
    (["flags", "set", "phase=canary", "lambda_percent=150"], "lambda_percent: must be between 0 and 100"),
    (["flags", "set", "kil_switch=true"], "kil_switch: is not a flag"),
    (["flags", "set", "phase"], "expected KEY=VALUE"),
    (["phase", "lambda", "--percent", "5"], "--percent applies to the canary phase only"),
    (["phase", "beta"], "invalid choice: 'beta'"),
])
def test_bad_input_is_one_line_exit_two_and_nothing_is_written(flags_parameter, capsys, args, message):
    put_flags(flags_parameter, {"phase": "celery"})
    assert main(args) == 2
    error = one_line_error(capsys.readouterr().err)
    assert message in error
    assert stored(flags_parameter) == ({"phase": "celery"}, 1)


def test_bad_input_from_a_real_process_has_no_traceback(flags_parameter):
    for args, message in ((["flags", "set", "sticky_key=email"], "sticky_key: must be one of user_id, job_id"),
                          (["explain", "--job-id", "j", "--file-size", "12XB"], "not a file size: '12XB'"),
                          (["simulate", "--jobs", "/nonexistent.csv"], "cannot read /nonexistent.csv")):
        result = run(*args)
        assert result.returncode == 2
        assert message in one_line_error(result.stderr)


def test_set_needs_a_parameter(monkeypatch, capsys):
    monkeypatch.delenv("ROUTER_FLAGS_PARAMETER", raising=False)
    assert main(["flags", "set", "phase=lambda"]) == 2
    assert "set ROUTER_FLAGS_PARAMETER or pass --parameter" in one_line_error(capsys.readouterr().err)


def test_phase_with_percent(flags_parameter):
    assert main(["phase", "canary", "--percent", "2.5"]) == 0
    assert main(["phase", "lambda"]) == 0
    assert stored(flags_parameter) == ({"phase": "lambda", "lambda_percent": 2.5}, 2)


def test_a_stale_expected_version_is_refused(flags_parameter, capsys):
    put_flags(flags_parameter, {"phase": "canary"})
    put_flags(flags_parameter, {"phase": "canary", "lambda_percent": 50})  # the other operator, version 2
    assert main(["phase", "celery", "--expect-version", "1"]) == 1
    assert "is at version 2, not 1" in one_line_error(capsys.readouterr().err)
    assert stored(flags_parameter)[1] == 2


def test_a_change_landing_before_our_write_is_refused(flags_parameter, ssm_proxy, capsys):
    put_flags(flags_parameter, {"phase": "canary"})
    reads = []

    def other_operator_after_our_read(exchange):
        reads.append(exchange)
        return exchange.target == "AmazonSSM.GetParameter" and len(reads) == 2  # the version check before writing

    ssm_proxy.before(other_operator_after_our_read, lambda: put_flags(flags_parameter, {"phase": "celery"}))
    assert main(["flags", "set", "lambda_percent=30"]) == 1
    assert "nothing was written" in one_line_error(capsys.readouterr().err)
    assert stored(flags_parameter) == ({"phase": "celery"}, 2)


def test_a_change_racing_our_write_is_detected(flags_parameter, ssm_proxy):
    put_flags(flags_parameter, {"phase": "canary"})
    ssm_proxy.before(lambda exchange: exchange.target == "AmazonSSM.PutParameter",
                     lambda: put_flags(flags_parameter, {"phase": "celery"}))
    result = run("flags", "set", "lambda_percent=30")  # a real process, through the proxy
    assert result.returncode == 1
    error = one_line_error(result.stderr)
    assert "another writer changed the flags" in error and "version 3, not 2" in error


def test_explain_names_the_rule(flags_parameter, capsys):
    put_flags(flags_parameter, {"phase": "canary", "lambda_percent": 100})
    assert main(["explain", "--job-id", "j1", "--user-id", "u1", "--file-size", "1.5GB"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "celery (size_limit)"
    assert "1.5 GB" in out[1] and "max_lambda_file_size_mb (250 MB)" in out[1]
    assert main(["explain", "--job-id", "j1", "--user-id", "u1", "--file-size", "120MB"]) == 0
    assert capsys.readouterr().out.startswith("lambda (rollout_in)\n  user_id u1 is in bucket")
    assert main(["explain", "--job-id", "j1", "--set", "kill_switch=true"]) == 0
    assert capsys.readouterr().out.startswith("celery (kill_switch)")


def test_simulate_synthetic_jobs_under_proposed_flags(flags_parameter, capsys):
    put_flags(flags_parameter, {"phase": "canary", "lambda_percent": 10})
    assert main(["simulate", "--count", "10000", "--set", "lambda_percent=25"]) == 0
    out = capsys.readouterr().out
    lambda_share = float(next(line for line in out.splitlines() if line.startswith("lambda")).split()[-1].rstrip("%"))
    assert abs(lambda_share - 25) <= 1
    assert "flags version ssm:1+proposed:1" in out


def test_simulate_jobs_from_a_csv(flags_parameter, tmp_path, capsys):
    put_flags(flags_parameter, {"phase": "lambda", "celery_users": ["u3"]})
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("job_id,user_id,file_size\nj1,u1,120MB\nj2,u2,1GB\nj3,u3,10\nj4,,\n")
    assert main(["simulate", "--jobs", str(jobs)]) == 0
    out = capsys.readouterr().out
    assert "lambda             1    25.00%" in out and "celery             3    75.00%" in out
    assert "size_limit             1" in out and "user_deny              1" in out and "unknown_size           1" in out

    jobs.write_text("job_id,user_id,file_size\nj1,u1,120MB\nj2,u2,lots\n")
    assert main(["simulate", "--jobs", str(jobs)]) == 2
    assert "jobs.csv line 3: file_size: not a file size: 'lots'" in one_line_error(capsys.readouterr().err)


def test_show_with_ssm_unreachable_fails_in_one_line(flags_parameter, ssm_proxy, capsys):
    ssm_proxy.fail(500)
    assert main(["flags", "show"]) == 1
    assert f"ssm:{flags_parameter}" in one_line_error(capsys.readouterr().err)


def test_a_toggle_from_the_command_line_moves_jobs_within_the_cache_time(
        backend_world, lambda_function, lambda_proxy, celery_queue, flags_parameter, job_id):
    ttl = 1.0
    assert run("flags", "set", "phase=celery").returncode == 0
    live = LiveFlags([SSMParameterSource(flags_parameter), EnvironmentSource()], ttl=ttl, first_load_timeout=10)
    router = make_router(live, backend_world.table, broker_url=celery_queue.broker_url, queue=celery_queue.name)
    backend.put_job_row(job_id, S3_KEY)
    assert router.dispatch(upload(job_id)).backend == "celery"

    toggle = run("flags", "set", "phase=lambda")
    assert toggle.returncode == 0, toggle.stderr
    toggled_at = time.monotonic()
    assert wait_for(lambda: decide(upload(job_id), live.current()).backend == "lambda", timeout=ttl + 5)
    # A refresh starts at most one cache time after the last one; SSM (moto) answers in well under
    # the margin, even on a loaded machine.
    assert time.monotonic() - toggled_at <= ttl + 2.0

    second = "toggle-" + job_id
    backend.put_job_row(second, S3_KEY)
    decision = router.dispatch(upload(second))
    assert (decision.backend, decision.flags_version) == ("lambda", "ssm:2")
    assert [invoke.json()["job_id"] for invoke in invocations(lambda_proxy)] == [second]


def test_show_reports_a_misspelt_or_bad_environment_override(flags_parameter, monkeypatch, capsys):
    put_flags(flags_parameter, {"phase": "canary"})
    monkeypatch.setenv("ROUTER_KILSWITCH", "true")
    assert main(["flags", "show"]) == 0
    assert "ROUTER_KILSWITCH is not a flag variable" in one_line_error(capsys.readouterr().err)
    monkeypatch.setenv("ROUTER_PHASE", "lamda")
    assert main(["flags", "show"]) == 2
    assert "env holds a bad value: phase: must be one of" in capsys.readouterr().err


# --- repairing the parameter, no-op writes, what the help says ---------------------------------


def test_a_parameter_holding_invalid_json_is_repaired_with_reset(flags_parameter, capsys):
    put_flags(flags_parameter, '{"phase": "lambda",}')  # a hand edit gone wrong, version 1
    assert main(["flags", "set", "phase=celery"]) == 1
    error = one_line_error(capsys.readouterr().err)
    assert "version 1 is not valid JSON" in error and "flags reset" in error and "flags set --force" in error
    assert main(["flags", "reset"]) == 0
    assert stored(flags_parameter) == ({}, 2)
    assert "the unreadable version 1 replaced by {}" in capsys.readouterr().out
    assert main(["phase", "canary", "--percent", "5"]) == 0
    assert stored(flags_parameter) == ({"phase": "canary", "lambda_percent": 5.0}, 3)


def test_set_force_replaces_an_unreadable_value_with_exactly_the_given_flags(flags_parameter):
    put_flags(flags_parameter, "[1, 2]")
    result = run("flags", "set", "--force", "phase=celery", "kill_switch=true")
    assert result.returncode == 0, result.stderr
    assert stored(flags_parameter) == ({"phase": "celery", "kill_switch": True}, 2)


def test_a_bad_stored_value_is_named_and_can_be_removed(flags_parameter, capsys):
    put_flags(flags_parameter, {"phase": "canary", "lambda_percent": 300})
    assert main(["flags", "set", "kill_switch=true"]) == 1
    error = one_line_error(capsys.readouterr().err)
    assert "holds a bad value: lambda_percent: must be between 0 and 100" in error
    assert "`lambda_percent=`" in error
    assert stored(flags_parameter)[1] == 1
    assert main(["flags", "set", "lambda_percent=", "kill_switch=true"]) == 0
    assert stored(flags_parameter) == ({"phase": "canary", "kill_switch": True}, 2)


@pytest.mark.parametrize(("value", "kind"), [('{"a":1}', "a JSON object"), ('"u1"', "a JSON string")])
def test_a_user_list_must_be_a_list(flags_parameter, capsys, value, kind):
    put_flags(flags_parameter, {"phase": "canary"})
    assert main(["flags", "set", f"lambda_users={value}"]) == 2
    assert one_line_error(capsys.readouterr().err).endswith(
        f"lambda_users: must be a list of user ids (a JSON array or comma-separated), got {kind}")
    assert stored(flags_parameter) == ({"phase": "canary"}, 1)


def test_show_needs_a_parameter_like_set(monkeypatch):
    monkeypatch.delenv("ROUTER_FLAGS_PARAMETER", raising=False)
    result = run("flags", "show")
    assert result.returncode == 2 and result.stdout == ""
    assert "no flags parameter: set ROUTER_FLAGS_PARAMETER or pass --parameter" in one_line_error(result.stderr)


def test_a_change_that_changes_nothing_writes_nothing(flags_parameter, capsys):
    assert main(["phase", "canary", "--percent", "5"]) == 0
    capsys.readouterr()
    for args in (["phase", "canary"], ["phase", "canary", "--percent", "5.00"], ["flags", "set", "lambda_percent=5"],
                 ["flags", "set", "salt="]):
        assert main(args) == 0
        assert capsys.readouterr().out == f"ssm:{flags_parameter} version 1: no change, nothing written\n"
    assert stored(flags_parameter) == ({"phase": "canary", "lambda_percent": 5.0}, 1)
    assert main(["flags", "reset"]) == 0 and main(["flags", "reset"]) == 0
    assert stored(flags_parameter) == ({}, 2)


def _help(*args: str) -> str:
    result = run(*args, "--help")
    assert result.returncode == 0, result.stderr
    return " ".join(result.stdout.split())  # argparse wraps lines; compare words


def test_help_says_what_each_phase_and_each_flag_means():
    phases = _help("phase")
    for name, meaning in PHASE_HELP.items():
        assert f"{name} {meaning}" in phases
    flags = _help("flags", "set")
    for name, meaning in FLAG_HELP.items():
        assert f"{name} {meaning}" in flags
    assert "--force" in flags
    assert "every flag back to its default" in _help("flags", "reset")
