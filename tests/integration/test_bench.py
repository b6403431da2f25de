"""qtts bench end to end on the tiny checkpoint (the real runs use the full-size ones)."""

import json

import pytest

from tests.integration.helpers import run


def test_bench_runs_every_path_and_writes_json(tiny_model, tmp_path):
    result = run("bench", "--checkpoint-dir", str(tiny_model), "--frames", "8", "--batch", "2", "--json", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    (written,) = tmp_path.glob("*.json")  # one file per machine, named after it
    report = json.loads(written.read_text())["runs"]["1.7b"]
    paths = [(p["path"], p["precision"], p["batch"]) for p in report["paths"]]
    assert paths == [("upstream", "fp32", 1), ("upstream", "fp32", 1), ("qtts", "int8", 1), ("qtts", "int8", 1),
                     ("qtts", "int4", 1), ("qtts", "int8", 2)]
    assert [p["attention"] for p in report["paths"][:2]] == ["sdpa", "eager"]  # the default first
    assert report["machine"]["read_gbs"] > 0 and report["machine"]["gemm_gflops"] > 0 and report["machine"]["cpu"]
    qtts = report["paths"][2]
    assert 0 < qtts["weight_gb_per_frame"] < report["paths"][0]["weight_gb_per_frame"]  # int8 reads less than fp32
    assert qtts["ar_over_floor"] > 0 and qtts["decoder_gflop_per_audio_s"] > 0
    # the bench's voice has a reference: its decoder state is primed once, timed apart
    assert qtts["decoder_priming_s"] > 0 and "decoder_priming_s" not in report["paths"][0]
    from qtts.engine import kernels

    expected_kernel = "qtts" if kernels.load() is not None else "torch"
    assert [p["int8_kernel"] for p in report["paths"][2:4]] == [expected_kernel, "torch"]
    for row in report["paths"]:
        assert row["rtf"] > 0 and row["peak_rss_gb"] > 0 and row["frames"] > 0
        assert 0 < row["time_to_first_audio_s"] <= row["total_s"] + 0.5 or row["path"] == "upstream"
        assert 0 < row["time_to_first_audio_known_voice_s"]
    assert report["fidelity"]["fp32_codes_identical"] is True
    paths = report["fidelity"]["paths"]
    assert set(paths) == {f"{p}{loops}" for p in ("bf16", "int8", "int4") for loops in ("", " generation loops")}
    # What synthesis runs (step by step, the native steps for int8) is as faithful as one
    # teacher-forced forward through the same int8 modules.
    for part in ("talker", "code_predictor"):
        forward = paths["int8"][f"{part}_logit_cosine_mean"]
        loops = paths["int8 generation loops"][f"{part}_logit_cosine_mean"]
        assert loops > 0.9 and abs(forward - loops) < 0.01, (part, forward, loops)
    assert "upstream / qtts" in result.stdout and "fidelity" in result.stdout


@pytest.mark.parametrize("preset", ["1.7b-custom", "1.7b-design"])
def test_bench_measures_the_other_model_kinds(preset, tiny_custom_model, tiny_design_model):
    """The measurement of each path of ``qtts bench --model 1.7b-custom / 1.7b-design``, in
    this process (the CLI around it is the Base model's, tested above)."""
    from qtts.bench.measure import measure

    path = tiny_custom_model if preset.endswith("custom") else tiny_design_model
    rows = [measure(row, str(path), frames=6, threads=2, precision="int8", batch=1, seed=0) for row in ("upstream",
                                                                                                        "qtts")]
    assert [(r["path"], r["precision"]) for r in rows] == [("upstream", "fp32"), ("qtts", "int8")]
    for row in rows:
        assert row["rtf"] > 0 and row["frames"] > 0 and row["talker_ms_per_step"] > 0


def test_concurrency_bench_serves_levels_and_writes_json(tiny_model, tmp_path):
    result = run("bench", "--concurrency", "1,3", "--checkpoint-dir", str(tiny_model), "--frames", "5",
                 "--json", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    report = json.loads(next(tmp_path.glob("*.json")).read_text())["runs"]["1.7b concurrency"]
    levels = {row["concurrency"]: row for row in report["levels"]}
    assert set(levels) == {1, 3}
    assert levels[1]["largest_batch_seen"] <= 1 and levels[1]["requests"] == levels[3]["requests"] == 3
    for row in levels.values():
        assert row["aggregate_rtf"] > 0 and row["audio_s"] > 0 and row["peak_rss_gb"] > 0
        assert 0 < row["first_audio_s"]["median"] <= row["first_audio_s"]["worst"] <= row["total_s"]["worst"]
    assert report["speedup_over_one_at_a_time"] > 0 and "aggregate RTF" in result.stdout
