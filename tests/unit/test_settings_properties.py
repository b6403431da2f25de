"""Settings from any source, as Hypothesis generates them: every value is either a setting
within its range or a BadInput naming its source, never another exception or a value
outside the table."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from qtts.errors import BadInput
from qtts.settings import LIMITS, Settings

NAMES = sorted(LIMITS)
VALUES = st.one_of(st.integers(min_value=-(2**70), max_value=2**70).map(str),
                   st.floats(allow_nan=True, allow_infinity=True).map(repr),
                   st.text(max_size=12),
                   st.sampled_from(["nan", "inf", "-inf", "1e400", " 3 ", "0x10", "1_000", "", "-0"]))


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(NAMES), value=VALUES, source=st.sampled_from(["env", "flag", "file"]))
def test_any_value_is_a_checked_setting_or_bad_input_naming_its_source(tmp_path_factory, name, value, source):
    home = tmp_path_factory.mktemp("home")
    environ = {"QTTS_HOME": str(home)}
    flags = {}
    if source == "env":
        environ[f"QTTS_{name.upper()}"] = value
        where = f"QTTS_{name.upper()}"
    elif source == "flag":
        flags[name] = value
        where = f"--{name.replace('_', '-')}"
    else:
        (home / "config.toml").write_text(f"{name} = {_toml(value)}\n")
        where = "config.toml"
    try:
        resolved = Settings.resolve(flags, environ=environ)
    except BadInput as exc:
        assert where in exc.message or name in exc.message, exc.message
        return
    number = getattr(resolved, name)
    low, high, low_open = LIMITS[name]
    assert math.isfinite(number) and (number > low if low_open else number >= low) and number <= high


def _toml(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
