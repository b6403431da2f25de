"""The current tables of ``docs/performance.md``, made from ``docs/bench/<machine>.json`` so
that they cannot drift from the measurements: one section per machine, one table per run.

``python -m qtts.bench.tables`` rewrites the part of the doc between the two markers below;
``--check`` only says whether it is current (a test runs it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

BEGIN = "<!-- tables: made by `python -m qtts.bench.tables` from docs/bench/*.json; do not edit by hand -->"
END = "<!-- tables: end -->"
ROOT = Path(__file__).resolve().parents[3]


def _cell(value: Any, digits: int | None = None) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, float) and digits is not None:
        return f"{value:.{digits}f}"
    return str(value)


def _machine_line(machine: dict[str, Any]) -> str:
    parts = [f"**{machine.get('cpu', '?')}** ({machine.get('machine', '?')})",
             "ISA: " + (", ".join(machine.get("isa", [])) or "baseline"),
             f"int8 kernel: {machine.get('int8_kernel', '?')}"]
    if machine.get("kernel_threading"):
        parts.append(machine["kernel_threading"])
    if machine.get("read_gbs"):
        parts.append(f"read {machine['read_gbs']} GB/s, GEMM {machine.get('gemm_gflops')} GFLOP/s")
    return "; ".join(parts)


def _path_name(path: dict[str, Any]) -> str:
    name = f"{path['path']} {path['precision']}"
    if path["path"] == "upstream":
        name += f" {path.get('attention', '')}".rstrip()
    if path["path"] == "qtts" and path.get("precision") in ("int8", "int4"):
        name += f" ({path.get('int8_kernel', 'torch')}'s kernel)" if path["precision"] == "int8" else ""
    if path.get("decoder_precision") and path["decoder_precision"] != "fp32":
        name += f", {path['decoder_precision']} decoder"
    if path.get("batch", 1) > 1:
        name += f", x{path['batch']} batch"
    return name


def _paths_table(run: dict[str, Any]) -> list[str]:
    lines = ["| path | peak RSS GB | prefill s | talker ms | code pred. ms | AR / floor | decoder s per audio s "
             "(floor) | RTF | first audio s cold / known voice |",
             "|---|---|---|---|---|---|---|---|---|"]
    for path in run["paths"]:
        decoder = _cell(path.get("decoder_s_per_audio_s"))
        if path.get("decoder_floor_s_per_audio_s"):
            decoder += f" ({path['decoder_floor_s_per_audio_s']})"
        if path.get("decoder_priming_s"):
            decoder += f", voice primed once {path['decoder_priming_s']} s"
        lines.append(" | ".join([
            f"| {_path_name(path)}", _cell(path.get("peak_rss_gb")), _cell(path.get("prefill_s")),
            _cell(path.get("talker_ms_per_step")), _cell(path.get("code_predictor_ms_per_step")),
            _cell(path.get("ar_over_floor")), decoder, f"**{_cell(path.get('rtf'))}**",
            _first_audio(path)]))
    notes = [f"{run.get('frames')} frames, {run.get('threads')} threads"]
    machine = run.get("machine", {})
    if machine.get("read_gbs"):
        notes.append(f"read {machine['read_gbs']} GB/s and GEMM {machine.get('gemm_gflops')} GFLOP/s in the run")
    default = [p for p in run["paths"] if (p["path"], p["precision"], p.get("int8_kernel")) == ("qtts", "int8", "qtts")]
    floors = next((p for p in default + run["paths"] if p.get("decoder_floor_s_per_audio_s")), None)
    if floors:
        notes.append(f"step floor {floors['floor_ms_per_step']} ms for {floors.get('weight_gb_per_frame')} GB of "
                     f"weights, decoder floor {floors.get('decoder_floor_s_per_audio_s')} s per audio s")
    if run.get("ratios", {}).get("rtf"):
        notes.append(f"qtts's default is **{run['ratios']['rtf']}x** faster than upstream's (RTF)")
    return lines + ["", "; ".join(notes) + "."]


def _first_audio(path: dict[str, Any]) -> str:
    if path["path"] == "upstream":  # it returns the sentence whole
        return f"{_cell(path.get('time_to_first_audio_s'))} (whole sentence) |"
    return f"{_cell(path.get('time_to_first_audio_s'))} / {_cell(path.get('time_to_first_audio_known_voice_s'))} |"


def _concurrency_table(run: dict[str, Any]) -> list[str]:
    lines = ["| at once | requests | audio s | aggregate RTF | first audio s median / worst | largest batch | "
             "peak RSS GB |", "|---|---|---|---|---|---|---|"]
    for level in run["levels"]:
        first = level.get("first_audio_s", {})
        lines.append(f"| {level['concurrency']} | {level.get('requests')} | {level.get('audio_s')} | "
                     f"**{level.get('aggregate_rtf')}** | {first.get('median')} / {first.get('worst')} | "
                     f"{level.get('largest_batch_seen')} | {level.get('peak_rss_gb')} |")
    lines += ["", f"Throughput against one at a time: {run.get('speedup_over_one_at_a_time')}x; a short request "
              f"during a long one: first audio {run.get('short_during_long_first_audio_s')} s "
              f"({run.get('short_during_long_vs_alone')}x alone)."]
    return lines


def _cli_table(run: dict[str, Any]) -> list[str]:
    lines = ["| call | wall s | synthesis s | beyond synthesis s |", "|---|---|---|---|"]
    for key, label in (("cold_no_engine", "cold, --no-engine"), ("cold_engine", "cold, starting the engine"),
                       ("warm", "warm engine")):
        if key in run:
            call = run[key]
            lines.append(f"| {label} | {call.get('wall_s')} | {call.get('synthesis_s')} | "
                         f"**{call.get('overhead_s')}** |")
    lines += ["", f"First audio byte with `--stream --out -`: warm {run.get('warm_stream_first_byte_s')} s, "
              f"cold {run.get('cold_stream_first_byte_s')} s ({run.get('frames')} frames, "
              f"{run.get('threads')} threads)."]
    return lines


def _rows_table(run: dict[str, Any]) -> list[str]:
    """A frame of the continuous batcher at 1 and at 8 rows, per kernel variant."""
    lines = ["| kernel | predictor frame ms, 1 row / 8 rows | talker step ms, 1 row / 8 rows | 8 rows / 1 row "
             "(frame) | 8-row instruction bound ms |", "|---|---|---|---|---|"]
    for row in run["row_costs"]:
        one, eight = row["1"], row["8"]
        ratio = (eight["predictor_frame_ms"] + eight["talker_step_ms"]) / (one["predictor_frame_ms"]
                                                                            + one["talker_step_ms"])
        lines.append(f"| {row['variant']} | {one['predictor_frame_ms']} / {eight['predictor_frame_ms']} | "
                     f"{one['talker_step_ms']} / {eight['talker_step_ms']} | **{ratio:.2f}x** | "
                     f"{row.get('bound_8_rows_ms', '–')} |")
    return lines + ["", str(run.get("note", ""))]


def render(bench_dir: Path) -> str:
    """The tables of every machine's file in ``bench_dir``, in a stable order."""
    sections = []
    for file in sorted(bench_dir.glob("*.json")):
        data = json.loads(file.read_text(encoding="utf-8"))
        if "runs" in data:
            sections.append(render_machine(data, file.name))
    return "\n".join(sections).rstrip() + "\n"


def render_machine(data: dict[str, Any], file_name: str) -> str:
    """One machine's section: its CPU, then a table per run."""
    out = [f"### {data.get('machine', {}).get('cpu', file_name)} (`docs/bench/{file_name}`)", "",
           _machine_line(data.get("machine", {})), ""]
    for name, run in data["runs"].items():
        if "paths" in run:
            table = _paths_table(run)
        elif "levels" in run:
            table = _concurrency_table(run)
        elif "warm" in run:
            table = _cli_table(run)
        elif "row_costs" in run:
            table = _rows_table(run)
        else:
            continue
        out += [f"**{name}**", "", *table, ""]
    return "\n".join(out) + "\n"


def updated(doc: str, tables: str) -> str:
    """``doc`` with the part between the markers replaced by ``tables``."""
    if BEGIN not in doc or END not in doc:
        raise ValueError("the doc has no tables markers")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n\n{tables}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qtts.bench.tables", description=__doc__.split("\n\n")[0])
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument("--bench-dir", type=Path, default=ROOT / "docs" / "bench")
    parser.add_argument("--check", action="store_true", help="exit 1 if the doc's tables are not current")
    args = parser.parse_args(argv)
    doc = args.doc.read_text(encoding="utf-8")
    new = updated(doc, render(args.bench_dir))
    if args.check:
        if new != doc:
            print(f"{args.doc} is not current: run python -m qtts.bench.tables", file=sys.stderr)
            return 1
        return 0
    args.doc.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
