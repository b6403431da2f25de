"""The engine: load a Qwen3-TTS model (Base, CustomVoice or VoiceDesign) on the CPU, make
voice prompts, synthesize.

It knows nothing of click, HTTP or queues.  torch and qwen_tts are imported lazily here.
One ``Engine`` serves one synthesis at a time (a lock); callers in threads just wait.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from qtts import audio as audio_mod
from qtts.engine import memory, upstream
from qtts.engine.generation import streaming
from qtts.engine.generation.guard import GenerationGuard, GuardSlot, guarded, looks_like_loop
from qtts.engine.prompts import DesignedVoice, SpeakerVoice, Voice, VoicePrompt
from qtts.engine.upstream import calls
from qtts.errors import BadInput, Cancelled, MemoryShortage, SynthesisTimeout, TooLarge
from qtts.hub import ResolvedModel, check_language, expand_alias, resolve_model
from qtts.model_kinds import check_fits
from qtts.numbers import spoken_numbers
from qtts.settings import FALLBACK_MODEL_ID, Settings
from qtts.text import estimate_seconds, split_text

log = logging.getLogger(__name__)

FRAME_RATE = 12.5
SAMPLES_PER_FRAME = 1920
MAX_FRAMES_PER_CHUNK = 2048
_RETRY_SEED_OFFSET = 7919


@dataclass(frozen=True)
class SynthesisOptions:
    language: str = Settings.language  # every default is written once, in settings.Settings
    seed: int | None = None
    timeout_s: float = 0.0  # whole request; 0 = none
    split_max_chars: int = Settings.split_max_chars
    pack_sentences: bool = True  # False: one sentence per chunk (streaming)
    gap_s: float = 0.25
    max_frames: int | None = None  # per chunk; None = derived from the chunk's length
    retry_runaway: bool = True  # regenerate once, with another seed, output that loops or never ends
    batch_size: int = Settings.batch_size  # chunks generated together (weights read once per frame for all)
    do_sample: bool | None = None
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None
    read_numbers: bool = False  # numbers as words in the chunk's language (qtts.numbers)

    def sampling_kwargs(self) -> dict[str, Any]:
        names = ("do_sample", "temperature", "top_k", "top_p", "repetition_penalty")
        values = {name: getattr(self, name) for name in names if getattr(self, name) is not None}
        if self.do_sample is False:
            values["subtalker_dosample"] = False  # greedy means greedy for all 16 codes
        return values


@dataclass(frozen=True)
class ChunkAudio:
    index: int
    total: int
    text: str
    samples: np.ndarray
    frames: int
    elapsed_s: float
    retried: bool = False
    runaway: bool = False
    spoken: str | None = None  # what the model was given, where it differs from ``text`` (--read-numbers)


class _Plan(NamedTuple):
    language: str
    pieces: list[str]  # the chunks, verbatim
    spoken: list[str]  # what the model is given for each
    deadline: float | None
    base_seed: int


@dataclass(frozen=True)
class SynthesisResult:
    audio: audio_mod.Audio
    chunks: list[ChunkAudio] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def rtf(self) -> float:
        return self.elapsed_s / self.audio.duration_s if self.audio.duration_s else float("inf")


# (first chunk of the batch in progress, chunk count, frames so far, the batch's frame cap)
ProgressCallback = Callable[[int, int, int, int], None]


class Engine:
    """A loaded model.  Build with ``Engine.load(settings)``."""

    def __init__(self, tts: Any, model: ResolvedModel, settings: Settings, load_seconds: float,
                 patches: "upstream.PatchReport | None" = None) -> None:
        self._tts = tts
        self.model = model
        self.settings = settings
        self.load_seconds = load_seconds
        self._lock = threading.Lock()
        self.patches = patches
        self.frame_loop: Any = None  # engine.batcher.FrameLoop once enable_batching() ran
        self._guard_slot = GuardSlot()
        # the LeanTalker installed by upstream.install, under the per-call guard
        self.talker_loop = upstream.wrap_talker_generate(tts.model.talker, guarded(self._guard_slot))
        self._frame_tap = streaming.FrameTap(self.talker_loop)
        talker_config = tts.model.config.talker_config
        self._eos_id = int(talker_config.codec_eos_token_id)
        # Silences transformers' "Setting pad_token_id to eos_token_id" notice on every call.
        tts.model.talker.generation_config.pad_token_id = self._eos_id

    # -- loading -------------------------------------------------------------------------
    @classmethod
    def load(cls, settings: Settings, model_id: str | None = None) -> "Engine":
        """Resolve, pre-check memory (falling back if configured), and load on the CPU."""
        from qtts.engine.loading import check_decoder_precision

        resolved = resolve_model(model_id or settings.model_id)
        check_decoder_precision(settings.decoder_precision)
        if settings.memory_check:
            estimate = memory.estimate(resolved.path, settings.precision, settings.memory_limit_bytes,
                                       settings.batch_size)
            if not estimate.fits:
                fallback = settings.fallback_model_id
                if fallback and expand_alias(fallback) != resolved.model_id:
                    log.warning("%s %s; loading the fallback %s", resolved.model_id, estimate.describe(), fallback)
                    return cls.load(settings.replace(fallback_model_id=""), fallback)
                raise MemoryShortage(
                    f"not enough memory for {resolved.model_id} in {settings.precision}: {estimate.describe()}",
                    hint=f"use --model-id {FALLBACK_MODEL_ID}, or --precision int4 (the least memory), --batch-size 1, "
                    "or set QTTS_FALLBACK_MODEL_ID=0.6b to fall back automatically",
                )
        return cls._load_resolved(resolved, settings)

    @classmethod
    def _load_resolved(cls, resolved: ResolvedModel, settings: Settings) -> "Engine":
        from qtts.engine.loading import load_model

        tts, patches, seconds = load_model(resolved, settings)
        return cls(tts, resolved, settings, seconds, patches)

    def enable_batching(self, max_batch: int) -> None:
        """Generate through one continuous-batching loop (``generation.batcher``) from now on:
        concurrent calls (a server's requests, a worker's jobs) share each frame's weight
        reads.  Without it, one call generates at a time."""
        from qtts.engine.generation.batcher import FrameLoop

        if self.frame_loop is None:
            self.frame_loop = FrameLoop(self.talker_loop, max_batch, self.settings.memory_limit_bytes)

    # -- facts -----------------------------------------------------------------------------
    @property
    def family(self) -> str:
        return self.model.family

    @property
    def sample_rate(self) -> int:
        return audio_mod.SAMPLE_RATE

    @property
    def languages(self) -> list[str]:
        return sorted(str(lang) for lang in self._tts.model.get_supported_languages())

    def check_language(self, language: str) -> str:
        return check_language(language, self.languages)

    @property
    def speakers(self) -> tuple[str, ...]:
        """A CustomVoice model's preset speakers (empty for the other kinds)."""
        return self.model.speakers

    def check_voice(self, voice: Voice) -> None:
        """Refuse a voice this model cannot speak with (``model_kinds``)."""
        if isinstance(voice, VoicePrompt):
            check_fits(self.model, cloned=True, speaker=None, instruct=None)
            if voice.family != self.family:
                raise BadInput(f"this voice prompt was made for models of family {voice.family}, not {self.family}",
                               hint="re-derive it from the reference audio (the voice library does this itself)")
        elif isinstance(voice, SpeakerVoice):
            check_fits(self.model, cloned=False, speaker=voice.speaker, instruct=voice.instruct)
        elif isinstance(voice, DesignedVoice):
            check_fits(self.model, cloned=False, speaker=None, instruct=voice.instruct)
        else:
            raise TypeError(f"not a voice: {type(voice).__name__}")

    # -- voice prompts ---------------------------------------------------------------------
    def create_prompt(self, reference: audio_mod.Audio, ref_text: str | None, x_vector_only: bool) -> VoicePrompt:
        """Derive a prompt from a prepared 24 kHz reference (see ``audio.prepare_reference``)."""
        if reference.sample_rate != audio_mod.SAMPLE_RATE:
            raise ValueError("reference must be resampled to 24 kHz first")
        check_fits(self.model, cloned=True, speaker=None, instruct=None)
        samples = np.ascontiguousarray(reference.samples, dtype=np.float32)
        with self._lock:
            if x_vector_only:
                # Upstream create_voice_clone_prompt runs the speech-tokenizer encode even in
                # x-vector-only mode and then discards the codes; extract the embedding alone.
                embedding = self._tts.model.extract_speaker_embedding(audio=samples, sr=audio_mod.SAMPLE_RATE)
                return VoicePrompt(self.family, True, embedding.detach().float().cpu())
            if not ref_text or not ref_text.strip():
                raise BadInput("the reference text is required to clone in ICL mode",
                               hint="pass --ref-text with the words spoken in the clip, or use --x-vector-only")
            (item,) = self._tts.create_voice_clone_prompt(
                ref_audio=(samples, audio_mod.SAMPLE_RATE), ref_text=ref_text.strip(), x_vector_only_mode=False)
        return VoicePrompt(self.family, False, item.ref_spk_embedding.detach().float().cpu(),
                           item.ref_code.detach().cpu(), ref_text.strip())

    # -- synthesis ---------------------------------------------------------------------------
    def synthesize(
        self,
        text: str,
        prompt: Voice,
        options: SynthesisOptions = SynthesisOptions(),
        on_chunk: Callable[[ChunkAudio], None] | None = None,
        on_progress: ProgressCallback | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> SynthesisResult:
        """Synthesize all chunks and join them with short silences."""
        started = time.perf_counter()
        chunks = []
        for chunk in self.synthesize_chunks(text, prompt, options, on_progress, should_cancel):
            chunks.append(chunk)
            if on_chunk is not None:
                on_chunk(chunk)
        samples = audio_mod.join([c.samples for c in chunks], options.gap_s, self.sample_rate)
        return SynthesisResult(audio_mod.Audio(samples, self.sample_rate), chunks, time.perf_counter() - started)

    def split(self, text: str, options: SynthesisOptions) -> list[str]:
        if len(text) > self.settings.max_text_chars:
            raise TooLarge(f"the text has {len(text)} characters; the limit is {self.settings.max_text_chars}",
                           hint="split it into several requests, or raise QTTS_MAX_TEXT_CHARS")
        chunks = split_text(text, options.split_max_chars, options.pack_sentences, options.language)
        if not chunks:
            raise BadInput("the text has nothing to speak (it is empty, or only punctuation, symbols or emoji)",
                           hint="pass some words to speak")
        return chunks

    def synthesize_chunks(
        self,
        text: str,
        prompt: Voice,
        options: SynthesisOptions = SynthesisOptions(),
        on_progress: ProgressCallback | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> Iterator[ChunkAudio]:
        """Yield each chunk's audio in order, as soon as its batch is generated."""
        language, pieces, spoken, deadline, base_seed = self._plan(text, prompt, options)
        owner = object()  # this request, for the batcher's fairness
        size = max(1, options.batch_size)
        for first in range(0, len(pieces), size):
            started = time.perf_counter()
            group = list(range(first, min(first + size, len(pieces))))
            caps = [_frame_cap(spoken[i], options) for i in group]

            def attempt(indices: list[int], seed: int) -> list[Any]:
                def progress(frames: int) -> None:
                    if on_progress is not None:
                        on_progress(indices[0], len(pieces), frames, max(caps[i - first] for i in indices))

                guard = GenerationGuard(deadline, should_cancel, progress)
                codes = self._generate_codes([spoken[i] for i in indices], language, prompt, options, seed,
                                             max(caps[i - first] for i in indices) + 1, guard, owner=owner)
                if guard.cancelled:
                    raise Cancelled("synthesis was cancelled", hint="")
                if guard.timed_out:
                    raise _timeout(indices[0], pieces, options)
                return [c[:caps[i - first]] for c, i in zip(codes, indices)]

            codes = attempt(group, base_seed + first)
            retried = [False] * len(group)
            if options.retry_runaway:
                for row, index in enumerate(group):
                    if self._is_runaway(codes[row], caps[row], options.max_frames is not None):
                        log.warning("chunk %d/%d looks like runaway generation; retrying once with another seed",
                                    index + 1, len(pieces))
                        codes[row] = attempt([index], base_seed + index + _RETRY_SEED_OFFSET)[0]
                        retried[row] = True
            with self._lock, streaming.DECODING:
                waves = calls.decode(self._tts, codes, prompt)
                memory.trim_heap()
            elapsed = (time.perf_counter() - started) / len(group)
            for row, index in enumerate(group):
                runaway = retried[row] and self._is_runaway(codes[row], caps[row], options.max_frames is not None)
                yield ChunkAudio(index, len(pieces), pieces[index], waves[row], len(codes[row]), elapsed,
                                 retried[row], runaway, spoken[index] if spoken[index] != pieces[index] else None)

    def stream(
        self,
        text: str,
        prompt: Voice,
        options: SynthesisOptions = SynthesisOptions(),
        should_cancel: Callable[[], bool] | None = None,
    ) -> Iterator[np.ndarray]:
        """Yield audio as frame groups are decoded, while generation goes on (one chunk at a
        time, no batching; output already played cannot be regenerated, so no runaway retry)."""
        language, pieces, spoken, deadline, base_seed = self._plan(text, prompt, options)
        owner = object()
        stop = threading.Event()  # the consumer stopped reading

        def cancelled() -> bool:
            return stop.is_set() or (should_cancel is not None and should_cancel())

        def work(emit: Callable[[np.ndarray], None]) -> None:
            try:
                speak_all(emit)
            finally:
                memory.trim_heap()  # the decoder's freed temporaries (codec.stream keeps them between groups)

        def speak_all(emit: Callable[[np.ndarray], None]) -> None:
            for index, piece in enumerate(spoken):
                cap = _frame_cap(piece, options)
                decoder = streaming.FrameDecoder(self._tts, prompt, self._eos_id, emit)
                guard = GenerationGuard(deadline, cancelled)
                codes = self._generate_codes([piece], language, prompt, options, base_seed + index, cap + 1, guard,
                                             on_frame=decoder.on_frame, owner=owner)[0]
                if guard.cancelled:
                    raise Cancelled("synthesis was cancelled", hint="")
                if guard.timed_out:
                    raise _timeout(index, pieces, options)
                with self._lock:
                    decoder.flush(limit=min(len(codes), cap))
                if index + 1 < len(pieces):
                    emit(np.zeros(int(options.gap_s * self.sample_rate), dtype=np.float32))

        return streaming.run_streaming(work, stop)

    def _plan(self, text: str, prompt: Voice, options: SynthesisOptions) -> "_Plan":
        """Check the voice and language, split the text into chunks, and what the model is
        given for each (numbers as words with ``read_numbers``)."""
        self.check_voice(prompt)
        language = self.check_language(options.language)
        pieces = self.split(text, options)
        spoken = [spoken_numbers(p, language) or p for p in pieces] if options.read_numbers else pieces
        deadline = time.monotonic() + options.timeout_s if options.timeout_s > 0 else None
        base_seed = options.seed if options.seed is not None else int(time.time_ns() % 2**31)
        return _Plan(language, pieces, spoken, deadline, base_seed)

    @staticmethod
    def _is_runaway(codes: Any, cap: int, user_cap: bool = False) -> bool:
        """Output that loops, or that ran to the guard's own cap.  A cap the caller set
        (``max_frames``) bounds the time they asked for: reaching it is not a runaway."""
        return (len(codes) >= cap and not user_cap) or looks_like_loop(codes[:, 0].tolist() if len(codes) else [])

    def _generate_codes(self, texts: list[str], language: str, prompt: Voice, options: SynthesisOptions,
                        seed: int, max_new_tokens: int, guard: GenerationGuard,
                        on_frame: Callable[[Any], None] | None = None, owner: Any = None) -> list[Any]:
        """Codes per text; ``on_frame`` gets the first text's frames as they are made."""
        import torch

        if self.frame_loop is not None:
            return self._generate_batched(texts, language, prompt, options, seed, max_new_tokens, guard, on_frame,
                                          owner)
        with self._lock:
            torch.manual_seed(seed)
            self._guard_slot.active = guard
            self._frame_tap.active = streaming.Listener(on_frame) if on_frame is not None else None
            try:
                return calls.generate(self._tts, texts, language, prompt, max_new_tokens=max_new_tokens,
                                           **options.sampling_kwargs())
            except MemoryError as exc:
                raise MemoryShortage("ran out of memory during synthesis",
                                     hint="lower --split-max-chars, or use --model-id 0.6b") from exc
            except RuntimeError:
                # Stopped before the first frame: upstream then fails to stack an empty list.
                if guard.timed_out or guard.cancelled:
                    return [torch.zeros((0, 16), dtype=torch.long) for _ in texts]
                raise
            finally:
                self._guard_slot.active = None
                self._frame_tap.active = None

    def _generate_batched(self, texts: list[str], language: str, prompt: Voice, options: SynthesisOptions,
                          seed: int, max_new_tokens: int, guard: GenerationGuard,
                          on_frame: Callable[[Any], None] | None, owner: Any) -> list[Any]:
        """Each text a stream of the continuous batcher (seeded ``seed + row``); returns
        when all have ended.  Frames are handed to ``on_frame`` in this thread."""
        from qtts.engine.generation.batcher import StreamRequest

        with self._lock:  # upstream's input building (and the talker's swapped generate)
            captured = [calls.talker_request(self._tts, text, language, prompt, max_new_tokens=max_new_tokens,
                                                  **options.sampling_kwargs()) for text in texts]
        guards = [GenerationGuard(guard.deadline, guard.should_cancel, guard.on_frame if row == 0 else None)
                  for row in range(len(texts))]
        streams = [self.frame_loop.submit(StreamRequest(c["inputs_embeds"], c["trailing_text_hidden"],
                                                        c["tts_pad_embed"], c, seed + row, owner, guards[row]))
                   for row, c in enumerate(captured)]
        try:
            if on_frame is not None:
                for codes in streams[0].frames():
                    on_frame(codes)
            codes = [stream.result() for stream in streams]
        except MemoryError as exc:
            raise MemoryShortage("ran out of memory during synthesis",
                                 hint="lower QTTS_MAX_BATCH or --split-max-chars, or use --model-id 0.6b") from exc
        finally:
            for row_guard in guards:  # a stream still running when another failed stops at its next frame
                row_guard.should_cancel = _always
        guard.cancelled = any(g.cancelled for g in guards)
        guard.timed_out = any(g.timed_out for g in guards)
        return codes


def _always() -> bool:
    return True


def _frame_cap(text: str, options: SynthesisOptions) -> int:
    """Runaway guard: at most twice the generous speech-length estimate, plus 3 s."""
    return options.max_frames or min(MAX_FRAMES_PER_CHUNK, math.ceil((2 * estimate_seconds(text) + 3) * FRAME_RATE))


def _timeout(index: int, pieces: list[str], options: SynthesisOptions) -> SynthesisTimeout:
    return SynthesisTimeout(
        f"chunk {index + 1}/{len(pieces)} ({_preview(pieces[index])}) did not finish within {options.timeout_s:g} s",
        hint="raise --timeout, lower --split-max-chars, or use the faster --model-id 0.6b")


def _preview(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")
