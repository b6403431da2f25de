"""``qtts bench``: upstream and qtts side by side, each path in its own process.

Uses full-size random-weight checkpoints of the real architecture (built on first use):
the cost per frame is the real models' cost; random weights rarely emit EOS, so every path
generates the same fixed number of frames.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qtts.errors import QttsError

COLUMNS = [("load_s", "load s"), ("peak_rss_gb", "peak RSS GB"), ("prefill_s", "prefill s"),
           ("talker_ms_per_step", "talker ms/step"), ("code_predictor_ms_per_step", "code pred. ms/step"),
           ("ar_over_floor", "AR / floor"), ("decoder_s_per_audio_s", "decoder s/audio s"), ("rtf", "RTF"),
           ("time_to_first_audio_s", "first audio s"), ("time_to_first_audio_known_voice_s",
                                                        "first audio, known voice s")]


def ensure_checkpoint(preset: str, directory: Path, say: Callable[[str], None]) -> Path:
    if (directory / "config.json").is_file() and (directory / "speech_tokenizer" / "model.safetensors").is_file():
        return directory
    from qtts.checkpoints.builder import build_random_checkpoint

    say(f"building the full-size random-weight {preset} checkpoint in {directory} (once) ...")
    return build_random_checkpoint(preset, directory, overwrite=True).path


def run_in_subprocess(args: dict[str, Any], threads: int) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "qtts.bench.measure", json.dumps(args)], env=env,
                            capture_output=True, text=True)
    for line in result.stdout.splitlines():
        if line.startswith("QTTS_BENCH_RESULT "):
            return json.loads(line.split(" ", 1)[1])
    tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
    raise QttsError(f"benchmark step {args.get('path', args.get('kind'))} failed (exit {result.returncode}): {tail}",
                    hint="run with --debug; a full-size 1.7B fp32 path needs ~12 GB of RAM")


def run_bench(preset: str, checkpoint_dir: Path, threads: int, frames: int, precision: str, batch: int,
              fidelity: bool, say: Callable[[str], None], decoder_precision: str = "fp32",
              eager_baseline: bool = True) -> dict[str, Any]:
    from qtts.bench import machine

    model_dir = str(ensure_checkpoint(preset, checkpoint_dir, say))
    say("measuring this machine's read bandwidth and fp32 GEMM rate ...")
    limits = run_in_subprocess({"kind": "limits"}, threads)
    common = {"model_dir": model_dir, "frames": frames, "threads": threads, "precision": precision, "seed": 0,
              "decoder_precision": decoder_precision}
    # Row 0 is upstream as a user loads it (fp32, sdpa): the baseline of every ratio.
    plan = [("upstream", 1, precision, decoder_precision, True), ("qtts", 1, precision, decoder_precision, True)]
    if eager_baseline:
        plan.insert(1, ("upstream-eager", 1, precision, decoder_precision, True))
    if precision == "int8":
        plan.append(("qtts", 1, precision, decoder_precision, False))  # torch's int8 kernel, for comparison
    from qtts.engine.weights.quant import fast_bf16_gemm

    fastest_decoder = "bf16" if fast_bf16_gemm() else "fp32"  # bf16 is emulated (and refused) elsewhere
    if (precision, decoder_precision) != ("int4", fastest_decoder):
        plan.append(("qtts", 1, "int4", fastest_decoder, True))  # the fastest settings, for comparison
    if batch > 1:
        plan.append(("qtts", batch, precision, decoder_precision, True))
    rows = []
    for path, size, row_precision, row_decoder, kernel in plan:
        say(f"measuring {path} {row_precision if path == 'qtts' else ''}{' batch ' + str(size) if size > 1 else ''}"
            f"{'' if kernel else ' torch kernel'} ({frames} frames, {threads} threads) ...")
        attention = "eager" if path == "upstream-eager" else "sdpa"
        row = run_in_subprocess({**common, "path": path.split("-")[0], "batch": size, "precision": row_precision,
                                 "decoder_precision": row_decoder, "int8_kernel": kernel, "attention": attention},
                                threads)
        rows.append(_with_floors(row, limits))
    report: dict[str, Any] = {"model": preset, "checkpoint": model_dir, "threads": threads, "frames": frames,
                              "machine": {**machine.describe(), **limits}, "paths": rows}
    upstream, qtts = rows[0], next(r for r in rows if r["path"] == "qtts")
    report["ratios"] = {key: _ratio(upstream.get(key), qtts.get(key)) for key, _ in COLUMNS if key != "load_s"}
    if fidelity:
        say("measuring fidelity (fp32 reference, then each low-bit path) ...")
        report["fidelity"] = run_in_subprocess({"kind": "fidelity", "model_dir": model_dir, "frames": min(frames, 40),
                                                "threads": threads, "precisions": ["bf16", "int8", "int4"]}, threads)
    report["default_is_faithful"] = _faithful(report.get("fidelity"), precision, decoder_precision)
    return report


# Our bar for a default path: teacher-forced talker logits within cosine 0.99 of fp32, and
# the decoder's waveform within 20 dB SNR of the fp32 decoder's.
MIN_LOGIT_COSINE = 0.99
MIN_DECODER_SNR_DB = 20.0


def _faithful(fidelity: dict[str, Any] | None, precision: str, decoder_precision: str) -> bool | None:
    if not fidelity:
        return None
    talker_ok = precision == "fp32" or (
        fidelity["paths"].get(precision, {}).get("talker_logit_cosine_mean", 0) >= MIN_LOGIT_COSINE
        and fidelity["paths"].get(precision, {}).get("code_predictor_logit_cosine_mean", 0) >= MIN_LOGIT_COSINE)
    decoder_ok = decoder_precision == "fp32" or (fidelity.get("bf16_decoder_snr_db") or 0) >= MIN_DECODER_SNR_DB
    return bool(talker_ok and decoder_ok)


def _with_floors(row: dict[str, Any], limits: dict[str, Any]) -> dict[str, Any]:
    """Add the weight-traffic floor of a generation step and the decoder's compute floor."""
    floor_ms = row["weight_gb_per_frame"] / limits["read_gbs"] * 1000
    ar_ms = row["talker_ms_per_step"] + row["code_predictor_ms_per_step"]
    row = {**row, "floor_ms_per_step": round(floor_ms, 1), "ar_over_floor": round(ar_ms / floor_ms, 2)}
    if row.get("decoder_gflop_per_audio_s"):
        row["decoder_floor_s_per_audio_s"] = round(row["decoder_gflop_per_audio_s"] / limits["gemm_gflops"], 3)
    return row


def _ratio(upstream: Any, ours: Any) -> float | None:
    if not upstream or not ours:
        return None
    return round(float(upstream) / float(ours), 2)


def format_table(report: dict[str, Any]) -> str:
    header = ["path"] + [label for _, label in COLUMNS]
    lines = [header]
    for row in report["paths"]:
        name = row["path"] + (f" {row['precision']}/dec {row.get('decoder_precision')}" if row["path"] == "qtts"
                              else f" fp32 {row.get('attention', 'sdpa')}")
        if row["path"] == "upstream" and row.get("attention") == "eager":
            name += " (planning doc)"
        if row["path"] == "qtts" and row["precision"] == "int8":
            name += f" ({row.get('int8_kernel')} kernel)"
        if row.get("batch", 1) > 1:
            name += f" x{row['batch']} batch"
        lines.append([name] + [_cell(row.get(key)) for key, _ in COLUMNS])
    lines.append(["upstream / qtts"] + [_cell(report["ratios"].get(key), "x") for key, _ in COLUMNS])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = [" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)) for line in lines]
    out.insert(1, "-+-".join("-" * w for w in widths))
    host = report.get("machine")
    if host:
        qtts = next(r for r in report["paths"] if r["path"] == "qtts")
        out.insert(0, f"machine: {host['cpu']} ({', '.join(host['isa']) or host['machine']}; int8 kernel "
                      f"{host['int8_kernel']}), {report['threads']} threads, read {host['read_gbs']} GB/s, "
                      f"fp32 GEMM {host['gemm_gflops']} GFLOP/s")
        out.insert(1, f"floors: a qtts {qtts['precision']} step reads {qtts['weight_gb_per_frame']} GB of weights "
                      f"-> {qtts['floor_ms_per_step']} ms; decoder {qtts.get('decoder_gflop_per_audio_s')} GFLOP per "
                      f"audio s -> {qtts.get('decoder_floor_s_per_audio_s')} s per audio s")
        out.insert(2, "")
    fidelity = report.get("fidelity")
    if fidelity:
        out.append("")
        out.append(f"fidelity ({fidelity['frames']} greedy frames): fp32 codes identical to upstream: "
                   f"{fidelity['fp32_codes_identical']}; new-frames decode vs upstream re-decode SNR "
                   f"{fidelity['new_frames_decode_snr_db']} dB; bf16 decoder vs fp32 SNR "
                   f"{fidelity.get('bf16_decoder_snr_db')} dB")
        for name, values in fidelity["paths"].items():
            out.append(f"  {name}: talker logit cosine {values['talker_logit_cosine_mean']} (min "
                       f"{values['talker_logit_cosine_min']}), top-1 {values['talker_top1_agreement']:.1%}; "
                       f"code predictor cosine {values['code_predictor_logit_cosine_mean']}, "
                       f"top-1 {values['code_predictor_top1_agreement']:.1%}")
    return "\n".join(out)


def _cell(value: Any, suffix: str = "") -> str:
    return "-" if value is None else f"{value}{suffix}"
