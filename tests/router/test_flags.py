"""Flag validation, string forms, and the precedence of sources."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.decide import decide
from router.errors import FlagError
from router.flags import FLAG_NAMES, RouterFlags, Snapshot, validate_values
from router.sources import EnvironmentSource, StaticSource

BAD_VALUES = [
    ("phase", "lamda"),
    ("phase", None),
    ("lambda_percent", 100.5),
    ("lambda_percent", -1),
    ("lambda_percent", 12.345),
    ("lambda_percent", "half"),
    ("lambda_percent", float("nan")),
    ("lambda_percent", True),
    ("sticky_key", "email"),
    ("salt", ""),
    ("salt", "x" * 129),
    ("lambda_users", 42),
    ("celery_users", "[1, 2"),
    ("celery_users", [["nested"]]),
    ("max_lambda_file_size_mb", 0),
    ("max_lambda_file_size_mb", 20_000),
    ("unknown_size", "lambda"),
    ("fallback_to_celery", "maybe"),
    ("kill_switch", 2),
]


def test_the_defaults_are_the_safe_state():
    flags = RouterFlags()
    assert flags.phase == "celery" and not flags.kill_switch and flags.fallback_to_celery
    assert decide({"job_id": "j", "user_id": "u", "file_size": 1}, flags).backend == "celery"


@pytest.mark.parametrize(("name", "value"), BAD_VALUES)
def test_a_bad_value_is_rejected_naming_the_flag(name, value):
    with pytest.raises(FlagError) as raised:
        validate_values({name: value})
    assert raised.value.flag == name
    assert str(raised.value).startswith(f"{name}: ")
    with pytest.raises(FlagError):
        RouterFlags(**{name: value})


def test_an_unknown_flag_is_rejected_by_name():
    with pytest.raises(FlagError, match="kil_switch: is not a flag"):
        validate_values({"kil_switch": True})


def test_a_change_with_one_bad_value_is_not_half_applied():
    source = StaticSource({"phase": "canary", "lambda_percent": 10})
    with pytest.raises(FlagError, match="lambda_percent"):
        source.set({"phase": "lambda", "lambda_percent": 500})
    assert source.fetch().values == {"phase": "canary", "lambda_percent": 10.0}


@pytest.mark.parametrize(("text", "expected"), [
    ("true", True), ("TRUE", True), ("1", True), ("yes", True), ("on", True),
    ("false", False), ("0", False), ("no", False), ("Off", False),
])
def test_booleans_from_text(text, expected):
    assert validate_values({"kill_switch": text}) == {"kill_switch": expected}


def test_numbers_from_text_and_percent_steps():
    assert validate_values({"lambda_percent": "12.34", "max_lambda_file_size_mb": "512"}) == {
        "lambda_percent": 12.34, "max_lambda_file_size_mb": 512.0}
    assert RouterFlags(lambda_percent=0.01).lambda_percent == 0.01


# Any id without a comma; a value starting with "[", "{" or '"' is read as JSON, so ids hold none.
user_ids = st.lists(st.text(alphabet=st.characters(blacklist_characters=',[{"', blacklist_categories=("Cs", "Cc", "Z")),
                            min_size=1, max_size=20), max_size=10)


@given(user_ids)
def test_lists_read_the_same_comma_separated_or_as_json(users):
    expected = frozenset(users)
    assert validate_values({"lambda_users": ",".join(users)})["lambda_users"] == expected
    assert validate_values({"lambda_users": json.dumps(users)})["lambda_users"] == expected
    assert validate_values({"lambda_users": users})["lambda_users"] == expected


def test_list_spacing_and_empty_items_are_ignored():
    assert validate_values({"celery_users": " a , b,,c "})["celery_users"] == {"a", "b", "c"}
    assert validate_values({"celery_users": "[]"})["celery_users"] == frozenset()


def test_environment_overrides_are_read_from_router_variables():
    source = EnvironmentSource({
        "ROUTER_PHASE": "celery", "ROUTER_KILL_SWITCH": "true", "ROUTER_LAMBDA_USERS": "u1, u2",
        "ROUTER_CELERY_USERS": '["u3", "u4"]', "ROUTER_LAMBDA_PERCENT": "", "ROUTER_FLAGS_PARAMETER": "/p",
        "OTHER": "x"})
    snapshot = source.fetch()
    assert snapshot.values == {"phase": "celery", "kill_switch": True, "lambda_users": {"u1", "u2"},
                               "celery_users": {"u3", "u4"}}
    assert snapshot.version.startswith("env:")
    assert source.unknown_variables() == []


def test_no_router_variables_means_no_environment_layer():
    assert EnvironmentSource({"PATH": "/bin"}).fetch() is None


def test_a_misspelt_router_variable_is_reported():
    assert EnvironmentSource({"ROUTER_KILLSWITCH": "true"}).unknown_variables() == ["ROUTER_KILLSWITCH"]


def test_an_invalid_environment_variable_rejects_the_whole_layer():
    with pytest.raises(FlagError, match="phase"):
        EnvironmentSource({"ROUTER_KILL_SWITCH": "true", "ROUTER_PHASE": "lamda"}).fetch()


def test_environment_wins_over_the_live_source_which_wins_over_defaults():
    live = Snapshot("ssm:/p", validate_values({"phase": "canary", "lambda_percent": 30, "salt": "s1"}), "ssm:4")
    env = EnvironmentSource({"ROUTER_PHASE": "celery"}).fetch()
    flags, origins = RouterFlags.layered([live, env])
    assert (flags.phase, flags.lambda_percent, flags.salt, flags.sticky_key) == ("celery", 30, "s1", "user_id")
    assert origins["phase"] == "env" and origins["lambda_percent"] == "ssm:/p" and origins["sticky_key"] == "default"
    assert flags.version == f"ssm:4+{env.version}"
    assert set(origins) == set(FLAG_NAMES)


def test_to_plain_round_trips_through_json():
    flags = RouterFlags(phase="canary", lambda_percent=12.5, lambda_users=["b", "a"], kill_switch="true")
    plain = json.loads(json.dumps(flags.to_plain()))
    assert plain["lambda_users"] == ["a", "b"]
    assert RouterFlags(**plain) == flags
