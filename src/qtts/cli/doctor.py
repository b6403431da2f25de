"""``qtts doctor``: check this machine, optionally run one real synthesis."""

from __future__ import annotations

import click

from qtts.cli.options import info, model_options, print_json, with_settings
from qtts.settings import Settings

_MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


@click.command()
@click.option("--run-smoke", is_flag=True, help="Also load the model and synthesize one sentence.")
@click.option("--voice-id", default="smoke", show_default=True, help="Voice used (created if missing) by --run-smoke.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
@model_options
@with_settings
def doctor(settings: Settings, run_smoke: bool, voice_id: str, as_json: bool) -> None:
    """Check Python, torch, qwen_tts, CPU, memory, disk, model and voice library."""
    from qtts.doctor import checks_to_dicts, run_checks
    from qtts.doctor import run_smoke as smoke
    from qtts.errors import QttsError

    checks = run_checks(settings)
    failed = [c for c in checks if c.status == "fail"]
    report: dict = {"checks": checks_to_dicts(checks)}
    if not as_json:
        for check in checks:
            click.echo(f"[{_MARK[check.status]}] {check.name:<13} {check.detail}")
            if check.fix:
                label = "note" if check.status == "ok" else "fix"
                click.echo(f"       {'':<13} {label}: {check.fix}")
    exit_code = 1 if failed else 0
    if run_smoke:
        info(f"smoke test: loading {settings.model_id} ...")
        try:
            report["smoke"] = smoke(settings, voice_id)
        except QttsError as exc:
            report["smoke"] = {"ok": False, **exc.to_dict()}
            if not as_json:
                raise
            print_json(report)
            raise SystemExit(_exit_code(exc))
        result = report["smoke"]
        if not as_json:
            click.echo(f"smoke: load {result['load_seconds']:.2f} s, synthesis {result['synthesis_seconds']:.2f} s "
                       f"for {result['audio_seconds']:.2f} s of audio (RTF {result['rtf']:.2f}), "
                       f"peak RSS {result['peak_rss_bytes'] / 1024**3:.2f} GiB")
            patches = result.get("upstream_patches")
            if patches:
                click.echo(f"upstream patches ({patches['precision']}, activations {patches['activation_dtype']}, "
                           f"int8 kernel {patches['int8_kernel']}):")
                for name, count in patches["patches"].items():
                    click.echo(f"  {name}: {count}")
    if as_json:
        print_json(report)
    if exit_code:
        raise SystemExit(exit_code)


def _exit_code(exc: Exception) -> int:
    from qtts.errors import exit_code_for

    return exit_code_for(getattr(exc, "category", ""))
