"""Decoding new frames only, with the decoder's state carried over (``codec_stream``),
against upstream's own decode of the reference and the new frames together, through real
qwen_tts on the tiny checkpoint."""

import numpy as np
import pytest
import torch

from qtts.engine.codec import stream as codec_stream
from qtts.settings import Settings

FRAME = 1920


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    assert reference.shape == other.shape
    noise = float(np.sum((reference - other) ** 2))
    return 10 * np.log10(float(np.sum(reference ** 2)) / max(noise, 1e-30))


@pytest.fixture(scope="module")
def tokenizers(tiny_model):
    """(upstream's speech tokenizer as loaded, the engine's patched one)."""
    from qtts.engine.core import Engine
    from qtts.engine.upstream import import_qwen_tts

    import_qwen_tts()
    from qwen_tts import Qwen3TTSTokenizer

    upstream = Qwen3TTSTokenizer.from_pretrained(str(tiny_model / "speech_tokenizer"), device_map="cpu",
                                                 dtype=torch.float32)
    engine = Engine.load(Settings.resolve({"model_id": str(tiny_model), "precision": "fp32"}, environ={}))
    return upstream, engine._tts.model.speech_tokenizer


def codes(frames: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 32, (frames, 16), generator=torch.Generator().manual_seed(seed))


def upstream_new_frames(upstream, ref: torch.Tensor | None, new: torch.Tensor) -> np.ndarray:
    frames = new if ref is None else torch.cat([ref, new])
    (wave,), _ = upstream.decode([{"audio_codes": frames}])
    return np.asarray(wave[0 if ref is None else len(ref) * FRAME:], dtype=np.float32)


def test_patched_decoder_matches_upstream(tokenizers):
    """Transposed convolutions as convolutions, time-major last blocks: the same waveform
    (to float rounding) as upstream's decoder."""
    upstream, patched = tokenizers
    frames = codes(20, 0)
    (expected,), _ = upstream.decode([{"audio_codes": frames}])
    (got,), _ = patched.decode([{"audio_codes": frames}])
    assert snr_db(np.asarray(expected), np.asarray(got)) > 60


@pytest.mark.parametrize("groups", [[1, 16, 16, 7], [40]])
def test_groups_after_a_reference_equal_one_decode_of_everything(tokenizers, groups):
    upstream, patched = tokenizers
    ref, new = codes(30, 1), codes(sum(groups), 2)
    expected = upstream_new_frames(upstream, ref, new)
    decoder = codec_stream.StreamDecoder(patched, ref)
    pieces, start = [], 0
    for size in groups:
        pieces.append(decoder.decode(new[start:start + size]))
        start += size
    assert [len(p) for p in pieces] == [size * FRAME for size in groups]
    assert snr_db(expected, np.concatenate(pieces)) > 60
    # the test can tell: the same frames decoded without the reference's state differ
    alone = codec_stream.StreamDecoder(patched, None).decode(new)
    assert snr_db(expected, alone) < 30


def test_no_reference_and_long_inputs(tokenizers, monkeypatch):
    """Without a reference (CustomVoice, VoiceDesign) the frames decode as upstream decodes
    them alone; inputs longer than a piece are decoded piece by piece, the same."""
    upstream, patched = tokenizers
    monkeypatch.setattr(codec_stream, "PIECE_FRAMES", 7)
    new = codes(30, 3)
    expected = upstream_new_frames(upstream, None, new)
    assert snr_db(expected, codec_stream.StreamDecoder(patched, None).decode(new)) > 60


def test_a_voices_state_is_primed_once_and_copied(tokenizers, monkeypatch):
    _, patched = tokenizers
    ref, new = codes(25, 4), codes(10, 5)
    primed = []
    original = codec_stream._transformer_part
    monkeypatch.setattr(codec_stream, "_transformer_part",
                        lambda decoder, frames, state: primed.append(frames.shape[-1]) or original(decoder, frames,
                                                                                                   state))
    codec_stream._primed_states.clear()
    first = codec_stream.StreamDecoder(patched, ref)
    one = first.decode(new)
    second = codec_stream.StreamDecoder(patched, ref)  # from the kept state, untouched by `first`
    assert np.array_equal(second.decode(new), one)
    assert primed.count(25) == 1


def test_the_warm_up_covers_the_receptive_field(tokenizers):
    """Priming runs each stage on what the stages after it reach back to; fewer frames would
    leave other states (the schedule is not padded far beyond what it needs)."""
    upstream, patched = tokenizers
    decoder = patched.model.decoder
    schedule = codec_stream._warm_schedule(decoder)
    assert schedule == sorted(schedule, reverse=True) and schedule[-1] >= 2
    ref, new = codes(30, 6), codes(6, 7)
    expected = upstream_new_frames(upstream, ref, new)

    from qtts.engine.codec.stream import decoder_cache

    def decoded(keep: list[int]) -> np.ndarray:
        state = codec_stream.DecoderState(decoder_cache(decoder))
        with torch.inference_mode():
            hidden = codec_stream._transformer_part(decoder, ref.transpose(0, 1).unsqueeze(0), state)
            codec_stream._conv_part(decoder, hidden, state, keep=keep)
        stream = codec_stream.StreamDecoder.__new__(codec_stream.StreamDecoder)
        stream.decoder, stream.state = decoder, state
        return stream.decode(new)

    assert snr_db(expected, decoded(schedule)) > 60
    assert snr_db(expected, decoded([max(k - 5, 1) for k in schedule])) < 60


def test_a_decoder_whose_convolutions_cannot_carry_state_is_refused(tiny_model):
    """A changed upstream (here: a strided causal convolution) is a dependency error naming
    the patch, not a silently wrong waveform."""
    from qtts.engine import upstream
    from qtts.errors import DependencyProblem

    upstream.import_qwen_tts()
    from qwen_tts import Qwen3TTSTokenizer

    tokenizer = Qwen3TTSTokenizer.from_pretrained(str(tiny_model / "speech_tokenizer"), device_map="cpu",
                                                  dtype=torch.float32)
    convs = [m for m in tokenizer.model.decoder.modules() if type(m).__name__ == "Qwen3TTSTokenizerV2CausalConvNet"]
    convs[-1].stride = 2
    with pytest.raises(DependencyProblem, match="cannot carry state"):
        upstream.speed_up_decoder(tokenizer)


def test_prepacked_convolutions_give_the_plain_ones_bits(tiny_model, tokenizers, monkeypatch):
    """Every channels-first convolution runs on oneDNN's prepacked weights (the tiny decoder's
    channels are few, so all of them are made channels-first here): the plain convolutions'
    waveform to float rounding (torch may take another algorithm than oneDNN's for so few
    channels; at the real sizes the bits were equal), and upstream's."""
    from qwen_tts import Qwen3TTSTokenizer

    from qtts.engine import upstream as door
    from qtts.engine.codec import decoder as codec_decoder

    upstream, _ = tokenizers
    monkeypatch.setattr(codec_decoder, "TIME_MAJOR_CHANNELS", 0)
    tokenizer = Qwen3TTSTokenizer.from_pretrained(str(tiny_model / "speech_tokenizer"), device_map="cpu",
                                                  dtype=torch.float32)
    counts = door.speed_up_decoder(tokenizer)
    packed = [m for m in tokenizer.model.modules() if getattr(m, "qtts_packed", None) is not None]
    if not codec_decoder._prepacked_ops():
        pytest.skip("this torch has no oneDNN prepacked convolutions")
    assert len(packed) == counts["decoder causal convolutions"] + counts["decoder transposed convolutions"]
    ref, new = codes(30, 1), codes(20, 2)
    got = codec_stream.StreamDecoder(tokenizer, ref).decode(new)
    with codec_decoder.plain_convolutions():
        plain = codec_stream.StreamDecoder(tokenizer, ref).decode(new)
    assert snr_db(plain, got) > 60  # 92 dB here; a wrong dilation or tap order gives ~0
    assert snr_db(upstream_new_frames(upstream, ref, new), got) > 60


def test_freed_memory_is_given_back_when_another_thread_decoded_before(tokenizers, monkeypatch):
    """A thread decoding again right after itself keeps its malloc arena's pages (trimming
    after every group made the next one fault them in again); a decode after another
    thread's trims, so that at most two threads' arenas hold freed pages."""
    import threading

    from qtts.engine import memory

    _, patched = tokenizers
    trims = []
    monkeypatch.setattr(memory, "trim_heap", lambda: trims.append(threading.get_ident()))
    codec_stream._last_thread.clear()
    decoder = codec_stream.StreamDecoder(patched, None)
    for start in range(0, 12, 4):  # three groups in this thread
        decoder.decode(codes(12, 6)[start:start + 4])
    assert len(trims) == 1  # after the first only
    other = threading.Thread(target=lambda: codec_stream.StreamDecoder(patched, None).decode(codes(4, 7)))
    other.start()
    other.join()
    decoder.decode(codes(4, 8))  # back in this thread, after the other one
    assert len(trims) == 3
