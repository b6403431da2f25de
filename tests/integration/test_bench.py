"""qtts bench end to end on the tiny checkpoint (the real runs use the full-size ones)."""

import json

from tests.integration.helpers import run


def test_bench_runs_every_path_and_writes_json(tiny_model, tmp_path):
    out = tmp_path / "bench.json"
    result = run("bench", "--checkpoint-dir", str(tiny_model), "--frames", "8", "--batch", "2", "--json", str(out))
    assert result.exit_code == 0, result.stderr
    report = json.loads(out.read_text())
    paths = [(p["path"], p["precision"], p["batch"]) for p in report["paths"]]
    assert paths == [("upstream", "fp32", 1), ("qtts", "int8", 1), ("qtts", "int8", 1), ("qtts", "int4", 1),
                     ("qtts", "int8", 2)]
    from qtts.engine import kernels

    expected_kernel = "qtts" if kernels.load() is not None else "torch"
    assert [p["int8_kernel"] for p in report["paths"][1:3]] == [expected_kernel, "torch"]
    for row in report["paths"]:
        assert row["rtf"] > 0 and row["peak_rss_gb"] > 0 and row["frames"] > 0
        assert 0 < row["time_to_first_audio_s"] <= row["total_s"] + 0.5 or row["path"] == "upstream"
    assert report["fidelity"]["fp32_codes_identical"] is True
    assert set(report["fidelity"]["paths"]) == {"bf16", "int8", "int4"}
    assert "upstream / qtts" in result.stdout and "fidelity" in result.stdout
