"""Continuous batching: one generation loop per model, whose streams join and leave at frame
boundaries.

On a CPU a frame costs reading the weights: the talker's once and the code predictor's 15
times.  ``FrameLoop`` reads them once per frame for every active stream (a chunk of some
request).  The streams admitted at one frame boundary are prefilled together (their prompt
rows side by side in each matrix product, attention per stream on its own KV cache; alone
where rows are not exact per row; a long prompt ``PREFILL_SLICE_ROWS`` rows per frame
boundary) and join at the next frame; a stream leaves when it ends
(end of speech, its frame cap, its guard's timeout or cancellation) and its codes go back to
the caller, who decodes them.

Each frame: every stream samples its next first code from its own logits (its own
processors, settings and random generator); the code predictor runs once for all streams;
the talker's step runs once for all of them, except attention, which each stream does on
its own cache (the streams have different lengths; no padding).  The modules, arithmetic
and order are ``generation.talker.LeanTalker``'s, so a stream's codes do not depend on its
neighbours where every per-frame matrix product is exact per row: qtts's int8 kernel sums
integers exactly.  fp32 and bf16 matrix products are not (a row's bits depend on how many
rows share the call), so on those paths each stream's frame is computed on its own, in turn:
greedy codes are then identical to a stream generated alone (tested), at no batching gain.

Fairness: a free place goes to the waiting stream whose request has the fewest streams
running, then whose request got a place the longest ago (then the earliest), so a long
book's chunks take turns with a one-line request.  The batch grows only while the memory
pre-check says the KV caches fit.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

import torch

from qtts.engine.generation.code_predictor import Sampling
from qtts.engine.generation.layers import attend_cached
from qtts.engine.generation.talker import LeanTalker, _CacheRows, _KVCache, _process
from qtts.engine.weights.quant import many_rows

log = logging.getLogger(__name__)

HEADROOM_BYTES = 512 * 1024**2  # kept free beside the KV caches (the decoder's activations)
# Longer prompts are prefilled this many rows per frame boundary.  1.7B on the 2-core Xeon, a
# prompt of 40, 80, 159 or 320 rows: 0.31, 0.52, 0.90, 1.87 s, so slices of 128 add ~7% to a
# 320-row prompt and hold the running streams up ~0.8 s at a time instead of 1.9 s.
PREFILL_SLICE_ROWS = 128


@dataclass
class StreamRequest:
    """One chunk to generate: the talker's inputs as upstream builds them for this text
    (``upstream.calls.talker_inputs``), and who asked."""

    inputs_embeds: torch.Tensor  # (1, L, H)
    trailing_text_hidden: torch.Tensor  # (1, T, H)
    tts_pad_embed: torch.Tensor  # (1, 1, H)
    settings: dict[str, Any]  # the talker's generation arguments (max_new_tokens, sampling, eos …)
    seed: int
    owner: Any = None  # the request this chunk belongs to (fairness)
    guard: Any = None  # a GenerationGuard: deadline, cancellation, progress


class Stream:
    """A submitted chunk: ``frames()`` yields its frames as they are made; ``result()`` waits
    for its codes (frames x 16, up to its end) or raises its error."""

    def __init__(self, request: StreamRequest, order: int, loop: "FrameLoop") -> None:
        self.request = request
        self.order = order
        s = request.settings
        self.max_new_tokens = int(s["max_new_tokens"])
        self.min_new_tokens = int(s.get("min_new_tokens", 0))
        self.eos = int(s["eos_token_id"])
        self.suppress = torch.tensor(sorted(s.get("suppress_tokens") or []), dtype=torch.long)
        self.generator = torch.Generator().manual_seed(int(request.seed))
        self.length = int(request.inputs_embeds.shape[1])
        self.cache_bytes = loop.cache_bytes(self.length + self.max_new_tokens + 1)
        self.cache: _KVCache | None = None
        self.prompt: Any = None  # its prompt while being prefilled slice by slice (LeanTalker.start_prompt)
        self.logits: torch.Tensor | None = None
        self.past_hidden: torch.Tensor | None = None
        self.tokens: list[int] = []
        self.codes: list[torch.Tensor] = []
        self.step = 0
        self.error: BaseException | None = None
        self._new_frames: queue.Queue = queue.Queue()
        self._done = threading.Event()

    # -- the caller's side ------------------------------------------------------------------
    def frames(self) -> Any:
        """Each frame's 16 codes as it is made, until the stream ends (in the caller's thread)."""
        while True:
            item = self._new_frames.get()
            if item is None:
                return
            yield item

    def result(self) -> torch.Tensor:
        self._done.wait()
        if self.error is not None:
            raise self.error
        return torch.stack(self.codes) if self.codes else torch.zeros((0, 16), dtype=torch.long)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    # -- the loop's side ----------------------------------------------------------------------
    def sampling(self, prefix: str = "") -> Sampling:
        """The talker's sampling (``prefix`` "subtalker_": the code predictor's), with this
        stream's own random generator."""
        s = self.request.settings
        return Sampling(s.get("subtalker_dosample" if prefix else "do_sample", True), s.get(prefix + "top_k", 50),
                        s.get(prefix + "top_p", 1.0), s.get(prefix + "temperature", 1.0), self.generator)

    def finish(self, error: BaseException | None = None) -> None:
        self.error = error
        self.cache = None  # the memory goes back now, not when the caller collects the codes
        self._done.set()
        self._new_frames.put(None)

    def add_frame(self, codes: torch.Tensor) -> None:
        self.codes.append(codes)
        self._new_frames.put(codes)


class FrameLoop:
    """The generation loop of one model (a daemon thread, started on first use)."""

    def __init__(self, talker_loop: LeanTalker, max_batch: int, memory_limit_bytes: int = 0) -> None:
        self.talker_loop = talker_loop
        self.max_batch = max(1, max_batch)
        self.memory_limit_bytes = memory_limit_bytes
        self.batch_invariant = _batch_invariant(talker_loop.talker)
        self.exact_rows = _exact_rows(talker_loop.talker)  # rows per call that stay on the int8 kernel
        self._waiting: list[Stream] = []
        self._active: list[Stream] = []
        self._order = itertools.count()
        self._admissions = itertools.count()
        self._last_admitted: dict[int, int] = {}  # id(owner) -> when it last got a place
        self._lock = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._to_prefill = 0  # admitted streams whose prompt is not computed yet
        self.frames_run = 0

    def submit(self, request: StreamRequest) -> Stream:
        stream = Stream(request, next(self._order), self)
        with self._lock:
            if self._closed:
                raise RuntimeError("the generation loop is closed")
            self._waiting.append(stream)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="qtts-frame-loop", daemon=True)
                self._thread.start()
            self._lock.notify()
        return stream

    def stats(self) -> dict[str, int]:
        """Streams generating, waiting for a place, admitted and waiting for their prompt (or
        its next slices) to be computed between frames, and frame groups being decoded."""
        from qtts.engine.generation.streaming import DECODING

        with self._lock:
            return {"active": len(self._active), "waiting": len(self._waiting), "max_batch": self.max_batch,
                    "prefill_queue": self._to_prefill, "decode_queue": DECODING.value}

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify()

    def cache_bytes(self, positions: int) -> int:
        model = self.talker_loop.talker.model
        attention = model.layers[0].self_attn
        element = torch.empty((), dtype=self.talker_loop.dtype).element_size()
        return 2 * len(model.layers) * model.config.num_key_value_heads * attention.head_dim * element * positions

    # -- the loop ---------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._closed and not self._waiting and not self._active:
                    self._lock.wait()
                if self._closed:
                    for stream in self._waiting + self._active:
                        stream.finish(RuntimeError("the generation loop was closed"))
                    return
                admitted = self._admit()
                self._to_prefill = len(admitted) + sum(1 for s in self._active if s.prompt is not None)
            self._prefill_all(admitted)
            active = [s for s in self._active if not s.done and s.logits is not None]  # prompts computed
            if active:
                try:
                    self._frame(active)
                except Exception as exc:  # the whole batch's computation failed (e.g. memory)
                    log.exception("a frame of %d streams failed", len(active))
                    for stream in active:
                        stream.finish(exc)
            with self._lock:
                self._active = [s for s in self._active if not s.done]

    def _admit(self) -> list[Stream]:
        """Move waiting streams into the batch: fairest first, while places and memory last.
        Cancelled or timed-out waiting streams end here.  Called with the lock held."""
        from qtts.engine import memory

        for stream in list(self._waiting):
            guard = stream.request.guard
            if guard is not None and guard.should_stop():
                self._waiting.remove(stream)
                stream.finish()
        admitted: list[Stream] = []
        free = memory.available_bytes(self.memory_limit_bytes) - HEADROOM_BYTES
        while self._waiting and len(self._active) < self.max_batch:
            running: dict[int, int] = {}
            for stream in self._active:
                running[id(stream.request.owner)] = running.get(id(stream.request.owner), 0) + 1
            stream = min(self._waiting, key=lambda s: (running.get(id(s.request.owner), 0),
                                                       self._last_admitted.get(id(s.request.owner), -1), s.order))
            if self._active and stream.cache_bytes > free:
                break  # waits, in order, for a stream to leave
            free -= stream.cache_bytes
            self._last_admitted[id(stream.request.owner)] = next(self._admissions)
            if len(self._last_admitted) > 4096:  # forget the oldest requests
                for key in sorted(self._last_admitted, key=self._last_admitted.get)[:2048]:
                    del self._last_admitted[key]
            self._waiting.remove(stream)
            self._active.append(stream)
            admitted.append(stream)
        return admitted

    def _prefill_all(self, admitted: list[Stream]) -> None:
        """Where each row's bits are its own (qtts's int8 kernel), the next slice of every
        prompt not yet computed, the ones admitted now included, in shared passes
        (``LeanTalker.prefill_slices``): a long prompt holds the running streams up for one
        slice per frame, not for its whole length.  Elsewhere each admitted prompt whole, one
        by one."""
        loop = self.talker_loop
        if not (self.batch_invariant and loop.native is not None):
            for stream in admitted:
                self._prefill(stream)
                with self._lock:
                    self._to_prefill -= 1
            return
        for stream in [s for s in self._active if s.prompt is not None]:
            guard = stream.request.guard
            if guard is not None and guard.should_stop():  # cancelled or timed out between slices
                stream.prompt = None
                stream.finish()
        pending = [s for s in self._active if s.prompt is not None and not s.done] + admitted
        if not pending:
            return
        try:
            with torch.inference_mode():
                for stream in admitted:
                    stream.cache = _KVCache(loop.talker.model, 1, stream.length, stream.max_new_tokens, loop.dtype)
                    stream.prompt = loop.start_prompt(stream.request.inputs_embeds, stream.cache)
                loop.prefill_slices([s.prompt for s in pending], self.exact_rows, PREFILL_SLICE_ROWS)
                for stream in pending:
                    if stream.prompt.finished:
                        stream.logits, stream.past_hidden = loop.finish_prompt(stream.prompt)
                        stream.prompt = None
        except Exception:  # one of them is bad: each on its own, whole, so that only that one fails
            log.warning("a shared prefill of %d streams failed; prefilling them one by one", len(pending))
            for stream in pending:
                stream.prompt = None
                self._prefill(stream)
        with self._lock:
            self._to_prefill = sum(1 for s in self._active if s.prompt is not None)

    def _prefill(self, stream: Stream) -> None:
        request = stream.request
        try:
            loop = self.talker_loop
            stream.cache = _KVCache(loop.talker.model, 1, stream.length, stream.max_new_tokens, loop.dtype)
            mask = torch.ones((1, stream.length), dtype=torch.bool)
            with torch.inference_mode():
                stream.logits, stream.past_hidden, _ = loop.prefill(request.inputs_embeds, mask, stream.cache)
        except Exception as exc:  # this stream's input failed; the others go on
            log.exception("prefill failed")
            stream.finish(exc)

    @torch.inference_mode()
    def _frame(self, streams: list[Stream]) -> None:
        """One frame for every active stream (each already has its next logits)."""
        going: list[Stream] = []
        tokens = []
        for stream in streams:
            history = torch.tensor([stream.tokens], dtype=torch.long).reshape(1, -1)
            s = stream.request.settings
            scores = _process(stream.logits, history, s.get("repetition_penalty", 1.0), stream.min_new_tokens,
                              stream.eos, stream.suppress)
            token = stream.sampling().draw(scores)
            stream.tokens.append(int(token))
            history = torch.tensor([stream.tokens], dtype=torch.long)
            guard = stream.request.guard
            stop = int(token) == stream.eos or len(stream.tokens) >= stream.max_new_tokens
            if guard is not None and bool(guard(history, scores).any()):
                stop = True
            if stop:
                stream.finish()
            else:
                going.append(stream)
                tokens.append(token)
        if not going:
            return
        # Rows go together only where each row's bits are its own: through the int8 kernel,
        # and below the row count from which Int8Linear switches to a bf16 GEMM.
        size = self.exact_rows - 1 if self.batch_invariant else 1
        groups = [going[i:i + size] for i in range(0, len(going), size)]
        at = 0
        for group in groups:
            self._advance(group, torch.cat(tokens[at:at + len(group)]))
            at += len(group)
        self.frames_run += 1

    def _advance(self, streams: list[Stream], token: torch.Tensor) -> None:
        """The code predictor and the talker's step for ``streams``, as one batch."""
        loop = self.talker_loop

        past_hidden = torch.cat([s.past_hidden for s in streams])
        codec_ids, inputs = loop.predict(past_hidden, token, [s.sampling("subtalker_") for s in streams])
        texts = []
        for i, stream in enumerate(streams):
            stream.add_frame(codec_ids[i])
            trailing = stream.request.trailing_text_hidden
            text = (trailing[:, stream.step].unsqueeze(1) if stream.step < trailing.shape[1]
                    else stream.request.tts_pad_embed)
            texts.append(text.to(loop.dtype))
        inputs = inputs + torch.cat(texts)
        starts = [stream.length + stream.step for stream in streams]
        positions = torch.tensor(starts, dtype=torch.long)[:, None]
        for stream, start in zip(streams, starts):
            stream.cache.reserve(start + 1)
        if loop.native is not None:
            rows = _CacheRows.join([stream.cache.rows(start) for stream, start in zip(streams, starts)])
            self._finish_step(streams, loop.native_step(inputs, positions, rows, [0] * len(streams)))
            return
        layers = loop.talker.model.layers

        def attention_of(index: int) -> dict:
            attention = layers[index].self_attn

            def attend(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
                out = []
                for i, (stream, start) in enumerate(zip(streams, starts)):
                    keys, values = stream.cache.store(index, start, key[i:i + 1], value[i:i + 1])
                    out.append(attend_cached(attention, query[i:i + 1], keys, values, None))
                return torch.cat(out)

            return {"attend": attend}

        self._finish_step(streams, loop.layers(inputs, positions, attention_of))

    def _finish_step(self, streams: list[Stream], hidden: torch.Tensor) -> None:
        logits, past_hidden = self.talker_loop.head(hidden)
        for i, stream in enumerate(streams):
            stream.logits, stream.past_hidden = logits[i:i + 1], past_hidden[i:i + 1]
            stream.step += 1


def _exact_rows(talker: torch.nn.Module) -> int:
    """One more than the rows a call can hold and stay on qtts's exact kernel."""
    from qtts.engine.weights.quant import Int8Linear

    kernels = {m.kernel for m in talker.modules() if isinstance(m, Int8Linear) and m.kernel is not None}
    return min((many_rows(kernel) for kernel in kernels), default=1)


def _batch_invariant(talker: torch.nn.Module) -> bool:
    """Whether every matrix product of a frame is exact per row (qtts's int8 kernel), so
    that rows computed together get the bits they would get alone."""
    from qtts.engine.weights.quant import Int8Linear

    modules = [talker.model, talker.codec_head, talker.code_predictor]
    linears = [m for part in modules for m in part.modules()
               if isinstance(m, (torch.nn.Linear, Int8Linear)) or type(m).__name__.endswith("Linear")]
    return bool(linears) and all(isinstance(m, Int8Linear) and m.kernel is not None for m in linears)
