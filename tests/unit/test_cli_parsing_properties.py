"""The CLI's option parsing, as Hypothesis generates it: any value for any numeric flag of
'qtts speak' ends in a clean refusal (exit 2 or 3, an error line, no traceback) before a
model could load; never an exception."""

from __future__ import annotations

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from qtts.cli.main import cli

FLAGS = ["--timeout", "--temperature", "--top-p", "--top-k", "--repetition-penalty", "--max-frames",
         "--split-max-chars", "--batch-size", "--seed", "--cpu-threads"]
VALUES = st.one_of(st.integers(min_value=-(2**70), max_value=2**70).map(str),
                   st.floats(allow_nan=True, allow_infinity=True).map(repr),
                   st.sampled_from(["nan", "inf", "-inf", "1e400", "", " ", "0x10", "1_0", "-0", "١٢"]),
                   st.text(max_size=8))


@settings(max_examples=150, deadline=None)
@given(flag=st.sampled_from(FLAGS), value=VALUES)
def test_any_flag_value_is_parsed_or_refused_cleanly(tmp_path_factory, flag, value):
    home = tmp_path_factory.mktemp("home")
    result = CliRunner().invoke(cli, ["--home", str(home), "speak", "--voice-id", "nobody", "--text", "Hello there.",
                                      flag, value, "--out", str(home / "x.wav"), "--no-engine"])
    # A value that parses still meets a model that is not downloaded here (exit 3) or a voice
    # that does not exist (exit 2): every path ends in a clean refusal.
    assert result.exit_code in (2, 3), (flag, value, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output and not (home / "x.wav").exists()
