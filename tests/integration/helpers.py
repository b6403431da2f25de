"""Helpers for driving the CLI in-process, as a user would from a shell."""

from __future__ import annotations

import io
import json

import soundfile as sf
from click.testing import CliRunner, Result

from qtts.cli.main import cli

SAMPLES_PER_FRAME = 1920
GAP_SAMPLES = 6000  # 0.25 s at 24 kHz between chunks


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def run_json(*args: str) -> dict:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def decode(data: bytes) -> tuple[int, int]:
    samples, rate = sf.read(io.BytesIO(data))
    return rate, len(samples)


def expected_samples(summary: dict) -> int:
    frames = [c["frames"] for c in summary["chunks"]]
    return sum(frames) * SAMPLES_PER_FRAME + GAP_SAMPLES * (len(frames) - 1)
