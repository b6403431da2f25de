"""The engine's fast-path features through real qwen_tts on the tiny checkpoint:
fp32 codes identical to upstream, batched chunks, streaming."""

import numpy as np
import pytest
import torch

from qtts import audio as audio_mod
from qtts.engine.core import Engine, SynthesisOptions
from qtts.settings import Settings
from tests.integration.helpers import run

TEXT = "The first sentence is here. A second one follows. And the third one ends it."


@pytest.fixture(scope="module")
def fp32_engine(tiny_model):
    return Engine.load(Settings.resolve({"model_id": str(tiny_model), "precision": "fp32"}, environ={}))


@pytest.fixture(scope="module")
def prompt(fp32_engine):
    from qtts.doctor import smoke_reference

    reference = audio_mod.prepare_reference(smoke_reference(3.0), 30)
    return fp32_engine.create_prompt(reference, "A reference sentence.", False)


def test_fp32_codes_are_identical_to_upstream_generate_voice_clone(tiny_model, fp32_engine, prompt):
    """Upstream's own loop (transformers generate for the code predictor) on a fresh model
    against qtts's fp32 path (lean loop): same greedy codes."""
    from qtts.engine.upstream import calls as generation
    from qtts.engine.upstream import import_qwen_tts

    upstream = import_qwen_tts().Qwen3TTSModel.from_pretrained(str(tiny_model), device_map="cpu",
                                                                dtype=torch.float32, attn_implementation="sdpa")
    from qtts.engine.generation.talker import LeanTalker

    greedy = {"do_sample": False, "subtalker_dosample": False, "max_new_tokens": 40}
    expected = generation.generate(upstream, ["Hello world."], "English", prompt, **greedy)[0]
    got = generation.generate(fp32_engine._tts, ["Hello world."], "English", prompt, **greedy)[0]
    assert upstream.model.talker.code_predictor.generate.__name__ != "lean_code_predictor"
    assert not isinstance(upstream.model.talker.generate, LeanTalker)
    assert isinstance(fp32_engine.talker_loop, LeanTalker)
    assert len(expected) >= 8 and torch.equal(expected, got)


def test_sampled_codes_match_upstream_for_the_same_seed(tiny_model, fp32_engine, prompt):
    """Both loops draw from the random generator in the same order (talker token, then the
    code predictor's 15), with transformers' processors: the same seed, the same codes."""
    from qtts.engine.upstream import calls as generation
    from qtts.engine.upstream import import_qwen_tts

    upstream = import_qwen_tts().Qwen3TTSModel.from_pretrained(str(tiny_model), device_map="cpu",
                                                                dtype=torch.float32, attn_implementation="sdpa")
    sampling = {"do_sample": True, "top_k": 20, "top_p": 0.9, "temperature": 0.8, "repetition_penalty": 1.1,
                "max_new_tokens": 30}
    runs = []
    for tts in (upstream, fp32_engine._tts):
        torch.manual_seed(1234)
        runs.append(generation.generate(tts, ["Sampled speech."], "English", prompt, **sampling)[0])
    assert len(runs[0]) >= 8 and torch.equal(runs[0], runs[1])


def test_snake_activations_match_upstream(fp32_engine):
    """Each SnakeBeta of the engine's decoder (the native one-pass forward where qtts's module
    builds, installed at load) against upstream's own forward: within 1e-5 (its own sin^2);
    the lean torch forward (the fallback) to the bit, on an input long enough to span several
    slices, channels-first and time-major."""
    from qtts.engine import kernels
    from qtts.engine.codec import decoder as codec_decoder

    engine_tokenizer = fp32_engine._tts.model.speech_tokenizer
    snakes = [m for m in engine_tokenizer.model.modules() if type(m).__name__ == "SnakeBeta"]
    installed = codec_decoder.native_snake_forward if kernels.load() is not None else codec_decoder.lean_snake_forward
    assert snakes and all(m.forward.__func__ is installed for m in snakes)
    assert fp32_engine.patches.patches["decoder SnakeBeta"] == len(snakes)
    snake = type(snakes[-1])(snakes[-1].in_features)  # upstream's class, with weights that are not zeros
    with torch.no_grad():
        snake.alpha.normal_(0, 0.5, generator=torch.Generator().manual_seed(1))
        snake.beta.normal_(0, 0.5, generator=torch.Generator().manual_seed(2))
    hidden = torch.randn(1, snake.in_features, 3 * codec_decoder.SLICE_SAMPLES + 17,
                         generator=torch.Generator().manual_seed(0))
    lean, native = codec_decoder.lean_snake_forward, codec_decoder.native_snake_forward
    hidden = hidden * 4  # arguments of sin over several periods
    time_major = hidden.transpose(1, 2).contiguous().transpose(1, 2)  # the last decoder blocks' layout
    with torch.no_grad():
        expected = snake(hidden)
        assert torch.equal(lean(snake, hidden), expected)
        assert torch.equal(lean(snake, time_major), expected)
        for x in (hidden, time_major):
            got = native(snake, x)
            assert got.stride() == x.stride()
            assert torch.allclose(got, expected, rtol=0, atol=1e-5), (got - expected).abs().max()


def test_batched_chunks_give_every_chunk_its_own_audio(fp32_engine, prompt):
    options = SynthesisOptions(seed=1, split_max_chars=30, batch_size=3, max_frames=20)
    result = fp32_engine.synthesize(TEXT, prompt, options)
    assert [c.index for c in result.chunks] == [0, 1, 2]
    for chunk in result.chunks:
        assert 0 < chunk.frames <= 20
        assert len(chunk.samples) == chunk.frames * 1920


def test_streaming_yields_groups_that_add_up_to_the_whole(fp32_engine, prompt, monkeypatch):
    from qtts.engine import memory

    options = SynthesisOptions(seed=2, max_frames=30, do_sample=False, gap_s=0.25)
    whole = fp32_engine.synthesize("Hello there, my friend.", prompt, options)
    from qtts.engine.codec import stream as codec_stream

    events = []  # both from the thread that generates and decodes: in order
    monkeypatch.setattr(memory, "trim_heap", lambda: events.append("trim"))
    decode = codec_stream.StreamDecoder.decode
    monkeypatch.setattr(codec_stream.StreamDecoder, "decode",
                        lambda self, c: events.append("decode") or decode(self, c))
    pieces = list(fp32_engine.stream("Hello there, my friend.", prompt, options))
    assert events.count("decode") >= 2 and events[-1] == "trim"  # freed temporaries given back at the end
    assert len(pieces) >= 2  # the first small group came before the rest
    streamed = np.concatenate(pieces)
    assert len(streamed) == len(whole.audio.samples)
    noise = np.sum((streamed - whole.audio.samples) ** 2)
    # groups decoded with the decoder's state carried over equal one decode of all frames
    assert 10 * np.log10(np.sum(whole.audio.samples ** 2) / max(noise, 1e-12)) > 60


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8", "int4"])
def test_every_precision_speaks(tiny_env, reference_clip, tmp_path, precision):
    assert run("clone", "create", "--voice-id", "p", "--ref-audio", str(reference_clip), "--x-vector-only",
               "--precision", precision).exit_code == 0
    out = tmp_path / "p.wav"
    result = run("speak", "--voice-id", "p", "--text", "Hello.", "--precision", precision, "--seed", "1",
                 "--out", str(out))
    assert result.exit_code == 0, result.stderr
    assert out.stat().st_size > 44


def test_speak_stream_to_stdout(tiny_env, reference_clip):
    run("clone", "create", "--voice-id", "s", "--ref-audio", str(reference_clip), "--x-vector-only")
    result = run("speak", "--voice-id", "s", "--text", "Streaming now. Two sentences.", "--stream", "--out", "-",
                 "--format", "pcm", "--seed", "3", "--max-frames", "20")
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout_bytes) > 0 and len(result.stdout_bytes) % 2 == 0
    assert "first audio after" in result.stderr


def test_stream_needs_stdout_and_a_raw_format(tiny_env, reference_clip, tmp_path):
    run("clone", "create", "--voice-id", "s", "--ref-audio", str(reference_clip), "--x-vector-only")
    assert run("speak", "--voice-id", "s", "--text", "x", "--stream", "--out", str(tmp_path / "a.wav")).exit_code == 2
    result = run("speak", "--voice-id", "s", "--text", "x", "--stream", "--out", "-", "--format", "mp3")
    assert result.exit_code == 2 and "cannot be streamed" in result.stderr


def test_int8_kernel_setting_picks_the_matrix_vector_kernel(tiny_model, prompt):
    """QTTS_INT8_KERNEL=0 keeps torch's kernel; by default the tiny model's quantized linears
    take qtts's kernel wherever it builds, and both speak through real qwen_tts."""
    from qtts.engine import kernels
    from qtts.engine.weights.quant import Int8Linear

    lengths = []
    for environ in ({}, {"QTTS_INT8_KERNEL": "0"}):
        engine = Engine.load(Settings.resolve({"model_id": str(tiny_model), "precision": "int8"}, environ=environ))
        linears = [m for m in engine._tts.model.talker.modules() if isinstance(m, Int8Linear)]
        assert len(linears) >= 8  # the talker's and the code predictor's projections
        uses_kernel = environ == {} and kernels.load() is not None
        assert all((m.kernel is not None) == uses_kernel for m in linears)
        result = engine.synthesize("Hello there.", prompt, SynthesisOptions(seed=0, max_frames=6))
        lengths.append(len(result.audio.samples))
    assert all(length > 0 for length in lengths)
    if kernels.supported_cpu():
        assert kernels.load() is not None, "the kernel should build here: is a C++ compiler installed?"


def test_the_second_load_restores_the_quantized_weights_and_speaks_the_same(tiny_model, prompt, isolated_home):
    """The first int8 load quantizes and keeps the weights under <home>/weights; the second
    rebuilds every low-bit linear from that file and gives the same codes."""
    from qtts.engine.weights import cache as weight_cache
    from tests.integration.helpers import run

    settings = Settings.resolve({"model_id": str(tiny_model), "precision": "int8"},
                                environ={"QTTS_HOME": str(isolated_home)})
    first = Engine.load(settings)
    assert first.patches.patches["restored from the weight cache"] == 0
    (entry,) = weight_cache.entries(settings.home)
    assert entry["metadata"]["precision"] == "int8" and entry["size_bytes"] > 0
    second = Engine.load(settings)
    patches = second.patches.patches
    quantized = patches["talker linears quantized"] + patches["code predictor linears quantized"]
    assert patches["restored from the weight cache"] == quantized + patches["codec head quantized"] > 0
    options = SynthesisOptions(seed=3, max_frames=10, do_sample=False)
    codes = [engine.synthesize("Cached weights.", prompt, options).audio.samples for engine in (first, second)]
    assert np.array_equal(codes[0], codes[1])
    listed = run("--home", str(isolated_home), "models", "list", "--json")
    assert [w["path"] for w in __import__("json").loads(listed.stdout)["quantized_weights"]] == [entry["path"]]
    assert run("--home", str(isolated_home), "models", "prune").exit_code == 0
    assert weight_cache.entries(settings.home) == []
    third = Engine.load(settings.replace(weight_cache=False))
    assert third.patches.patches["restored from the weight cache"] == 0 and weight_cache.entries(settings.home) == []
