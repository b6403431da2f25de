"""docs/performance.md's current tables are made from docs/bench/*.json and cannot drift."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from qtts.bench import tables

ROOT = Path(__file__).parents[2]


def test_the_docs_tables_are_the_ones_the_bench_files_make():
    assert tables.main(["--check"]) == 0, "run: python -m qtts.bench.tables"


def test_a_changed_measurement_makes_the_doc_stale_and_the_script_mends_it(tmp_path):
    bench = tmp_path / "bench"
    shutil.copytree(ROOT / "docs" / "bench", bench)
    doc = tmp_path / "performance.md"
    shutil.copy(ROOT / "docs" / "performance.md", doc)
    file = next(f for f in sorted(bench.glob("*.json")) if "paths" in json.dumps(json.loads(f.read_text())))
    data = json.loads(file.read_text())
    run = next(r for r in data["runs"].values() if "paths" in r)
    run["paths"][0]["rtf"] = 123.456
    file.write_text(json.dumps(data))
    args = ["--doc", str(doc), "--bench-dir", str(bench)]
    assert tables.main([*args, "--check"]) == 1
    before = doc.read_text()
    assert tables.main(args) == 0 and tables.main([*args, "--check"]) == 0
    after = doc.read_text()
    assert "**123.456**" in after and "**123.456**" not in before
    # only the part between the markers changed
    assert before.split(tables.BEGIN)[0] == after.split(tables.BEGIN)[0]
    assert before.split(tables.END)[1] == after.split(tables.END)[1]


def test_a_machine_file_renders_its_runs():
    machine = {"cpu": "Some CPU", "machine": "aarch64", "isa": ["asimddp"], "int8_kernel": "neon-dotprod"}
    path = {"path": "qtts", "precision": "int8", "int8_kernel": "qtts", "decoder_precision": "fp32", "batch": 1,
            "rtf": 1.5, "ar_over_floor": 1.1, "floor_ms_per_step": 90.0, "weight_gb_per_frame": 2.674,
            "decoder_floor_s_per_audio_s": 0.3, "decoder_s_per_audio_s": 0.4}
    run = {"frames": 40, "threads": 2, "machine": {**machine, "read_gbs": 30.0}, "paths": [path],
           "ratios": {"rtf": 4.0}}
    text = tables.render_machine({"machine": machine, "runs": {"1.7b": run}}, "some-cpu.json")
    assert "### Some CPU (`docs/bench/some-cpu.json`)" in text
    assert "| qtts int8 (qtts's kernel) |" in text and "**1.5**" in text and "0.4 (0.3)" in text
    assert "step floor 90.0 ms for 2.674 GB" in text and "**4.0x** faster" in text
