"""A lean generation loop for the talker: the same submodules and sampling, none of the glue.

Upstream runs the talker through transformers' ``generate()``: every frame goes through
``Qwen3TTSTalkerForConditionalGeneration.forward`` and ``Qwen3TTSTalkerModel.forward`` (a
fresh causal mask, 3-D rotary positions, a growing ``DynamicCache``), the logits processors
and stopping criteria as objects, and the output collects every layer's hidden states.
``LeanTalker`` is a drop-in for ``talker.generate`` as ``Qwen3TTSForConditionalGeneration
.generate`` calls it.  It calls the same modules in the same order (each layer's norms,
projections, the rotary embedding (see ``_layers``), the attention call transformers makes,
the MLP, the final norm, ``codec_head``, the code predictor (``code_predictor.predict_frame``)), on a KV cache
allocated once, and applies transformers' processors in transformers' order: repetition
penalty, minimum length, suppressed tokens, then temperature, top-k and top-p.  Under
greedy decoding with fp32 weights its codes are identical to upstream's (tested).

Activations stay in fp32 on CPUs without native bf16 (emulated bf16 is slower there, and
the int8 kernel takes fp32 as it is); elsewhere they keep the model's dtype.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from qtts.engine.generation.code_predictor import Sampling, _sample, predict_frame
from qtts.engine.generation.layers import attend_cached, decoder_layer, signed_sin
from qtts.engine.generation.prefix_cache import PrefixCache

INITIAL_CAPACITY = 256  # positions beyond the prompt allocated at first; doubled when reached


@dataclass
class StepTimes:
    """Where the last call's time went (read by ``qtts bench``)."""

    prefill_s: float = 0.0
    prefill_reused: int = 0  # prompt positions taken from an earlier prompt (engine.prefix_cache)
    talker_s: float = 0.0
    code_predictor_s: float = 0.0
    steps: int = 0


@dataclass
class _Output:
    sequences: torch.Tensor
    hidden_states: tuple = field(default_factory=tuple)


class LeanTalker:
    """Installed as ``talker.generate``; ``frame_listener`` (if set) gets each new frame's 16
    codes of the first row as soon as they are made (streaming)."""

    def __init__(self, talker: nn.Module, activation_dtype: torch.dtype, native: Any = None) -> None:
        self.talker = talker
        self.dtype = activation_dtype
        # engine.native_stack's step over the talker's layers, or None (Python layers)
        self.native = native if activation_dtype == torch.float32 else None
        # Prompts' keys and values, reused by prompts that begin the same way: only where rows
        # are computed independently (the native path's int8 kernel; see engine.prefix_cache).
        self.prefixes = PrefixCache() if self.native is not None else None
        self.frame_listener: Callable[[torch.Tensor], None] | None = None
        self.times = StepTimes()

    @torch.inference_mode()
    def __call__(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, trailing_text_hidden: torch.Tensor,
                 tts_pad_embed: torch.Tensor, max_new_tokens: int, min_new_tokens: int = 0, do_sample: bool = True,
                 top_k: int = 50, top_p: float = 1.0, temperature: float = 1.0, subtalker_dosample: bool = True,
                 subtalker_top_k: int = 50, subtalker_top_p: float = 1.0, subtalker_temperature: float = 1.0,
                 eos_token_id: int | None = None, repetition_penalty: float = 1.0,
                 suppress_tokens: list[int] | None = None, stopping_criteria: Any = None, **_: Any) -> _Output:
        talker, model = self.talker, self.talker.model
        eos = int(eos_token_id if eos_token_id is not None else talker.config.codec_eos_token_id)
        pad = talker.generation_config.pad_token_id
        pad = eos if pad is None else int(pad)
        self.times = times = StepTimes()

        batch, length, _ = inputs_embeds.shape
        mask = attention_mask.bool()
        pads = (~mask).sum(dim=1)
        # Rows padded on the left (upstream's batches) attend from their first real position.
        begins = pads.tolist() if all(not bool(row[:pad].any()) for row, pad in zip(mask, pads.tolist())) else None
        cache = _KVCache(model, batch, length, max_new_tokens, self.dtype)
        suppress = torch.tensor(sorted(suppress_tokens or []), dtype=torch.long)

        started = time.perf_counter()
        logits, past_hidden, hidden = self.prefill(inputs_embeds, mask, cache)
        times.prefill_s = time.perf_counter() - started
        recorded = [((hidden,), None)]

        tokens = torch.empty((batch, 0), dtype=torch.long)
        unfinished = torch.ones(batch, dtype=torch.bool)
        trailing = trailing_text_hidden.to(self.dtype)
        pad_embed = tts_pad_embed.to(self.dtype)
        sub_sampling = Sampling(subtalker_dosample, subtalker_top_k, subtalker_top_p, subtalker_temperature)
        step = 0
        while True:
            scores = _process(logits, tokens, repetition_penalty, min_new_tokens, eos, suppress)
            token = _sample(scores, do_sample, top_k, top_p, temperature)
            token = torch.where(unfinished, token, torch.full_like(token, pad))
            tokens = torch.cat([tokens, token[:, None]], dim=1)
            stop = (token == eos) | (tokens.shape[1] >= max_new_tokens)
            if stopping_criteria is not None:
                stop = stop | stopping_criteria(tokens, scores)
            unfinished = unfinished & ~stop
            if not bool(unfinished.any()):
                break

            started = time.perf_counter()
            codec_ids, inputs = self.predict(past_hidden, token, [sub_sampling] * batch)
            times.code_predictor_s += time.perf_counter() - started
            if self.frame_listener is not None:
                self.frame_listener(codec_ids[0])

            started = time.perf_counter()
            inputs = inputs + (trailing[:, step].unsqueeze(1) if step < trailing.shape[1] else pad_embed)
            position = length + step - pads
            if self.native is not None and begins is not None:
                hidden = self.native_step(inputs, position[:, None], cache.rows(length + step), begins)
            else:
                hidden = self._layers(inputs, position[:, None], cache, length + step, self._step_mask(mask, step))
            logits, past_hidden = self.head(hidden)
            recorded.append(((hidden,), codec_ids))
            times.talker_s += time.perf_counter() - started
            times.steps += 1
            step += 1
        return _Output(tokens, tuple(recorded))

    # -- the pieces of a frame, shared with the continuous batcher (engine.batcher) ----------
    def prefill(self, inputs_embeds: torch.Tensor, mask: torch.Tensor,
                cache: "_KVCache") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The prompt through the talker: (last position's fp32 logits, its hidden, the new
        positions' hidden).  A single unpadded prompt starts from the keys and values of the
        positions it shares with a recent prompt (``prefixes``)."""
        inputs = inputs_embeds.to(self.dtype)
        single = self.prefixes is not None and inputs.shape[0] == 1 and bool(mask.all())
        shared, prefix = self.prefixes.match(inputs[0]) if single else (0, None)
        self.times.prefill_reused = shared
        if prefix is not None:
            cache.keys[:, 0, :, :shared] = prefix.keys[:, :, :shared]
            cache.values[:, 0, :, :shared] = prefix.values[:, :, :shared]
            length = inputs.shape[1]
            positions = torch.arange(shared, length)[None]
            # new position i sees every position up to shared + i (bottom-right causal)
            allowed = torch.ones(length - shared, length, dtype=torch.bool).tril(diagonal=shared)[None, None]
            hidden = self._layers(inputs[:, shared:], positions, cache, shared, allowed)
        else:
            positions = (mask.long().cumsum(-1) - 1).masked_fill(~mask, 1)
            hidden = self._layers(inputs, positions, cache, 0, self._prefill_mask(mask))
        if single and not (prefix is not None and len(prefix.inputs) == inputs.shape[1] == shared + 1):
            self.prefixes.remember(inputs[0], cache.keys[:, 0, :, :inputs.shape[1]], cache.values[:, 0, :,
                                                                                                  :inputs.shape[1]])
        logits, last = self._prompt_head(hidden)
        return logits, last, hidden

    def _prompt_head(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A prompt's (fp32 logits, hidden) of its last position from its new positions' hidden
        states: the head runs on every one, as upstream (same GEMM shape: same bits)."""
        logits = self.talker.codec_head(hidden)
        return logits[:, -1, :].to(copy=True, dtype=torch.float32), hidden[:, -1:, :]

    def prefill_many(self, prompts: list[torch.Tensor], caches: list["_KVCache"],
                     row_limit: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Several unpadded prompts (each (1, L, H)) through the talker, their new rows side by
        side in each matrix product, fewer than ``row_limit`` rows per pass (a prompt with more
        goes alone); attention per prompt on its own cache.  Each prompt's (logits, hidden) are
        the bits ``prefill`` gives it with the same reused prefix, where every product below
        ``row_limit`` rows is exact per row (qtts's int8 kernel): the caller's guarantee."""
        segments = [self.start_prompt(prompt, cache) for prompt, cache in zip(prompts, caches)]
        self.prefill_slices(segments, row_limit)
        return [self.finish_prompt(segment) for segment in segments]

    def start_prompt(self, prompt: torch.Tensor, cache: "_KVCache") -> "_Segment":
        """A prompt ((1, L, H), unpadded) to prefill with ``prefill_slices``: its first rows'
        keys and values from a recent prompt that began the same way, where there is one."""
        inputs = prompt.to(self.dtype)
        shared, prefix = self.prefixes.match(inputs[0]) if self.prefixes is not None else (0, None)
        if prefix is not None:
            cache.keys[:, 0, :, :shared] = prefix.keys[:, :, :shared]
            cache.values[:, 0, :, :shared] = prefix.values[:, :, :shared]
        cache.reserve(inputs.shape[1])
        return _Segment(inputs, shared, cache, prefix, shared)

    def prefill_slices(self, segments: list["_Segment"], row_limit: int, slice_rows: int | None = None) -> None:
        """The next ``slice_rows`` rows of each unfinished prompt (all the rest without it), in
        shared passes of fewer than ``row_limit`` rows (a slice with more goes alone).  A
        slice's rows attend to every position before them, as a reused prefix's continuation
        does: how a prompt is sliced depends on its length and reused prefix only, not on the
        prompts beside it, so its bits do not either."""
        for segment in segments:
            segment.end = segment.inputs.shape[1] if slice_rows is None else min(segment.inputs.shape[1],
                                                                                  segment.done + slice_rows)
        passes: list[list[_Segment]] = [[]]
        for segment in (s for s in segments if not s.finished):
            if passes[-1] and sum(s.end - s.done for s in passes[-1]) + segment.end - segment.done >= row_limit:
                passes.append([])
            passes[-1].append(segment)
        for group in passes:
            if group:
                self._prefill_pass(group)

    def finish_prompt(self, segment: "_Segment") -> tuple[torch.Tensor, torch.Tensor]:
        """A prefilled prompt's (fp32 logits, hidden) of its last position; its keys and values
        kept for prompts that begin the same way (as ``prefill``)."""
        length = segment.inputs.shape[1]
        same = segment.prefix is not None and len(segment.prefix.inputs) == length == segment.shared + 1
        if self.prefixes is not None and not same:
            self.prefixes.remember(segment.inputs[0], segment.cache.keys[:, 0, :, :length],
                                   segment.cache.values[:, 0, :, :length])
        return self._prompt_head(torch.cat(segment.hidden, dim=1))

    def _prefill_pass(self, segments: list["_Segment"]) -> None:
        layers = self.talker.model.layers
        hidden = torch.cat([s.inputs[:, s.done:s.end] for s in segments], dim=1)
        positions = torch.cat([torch.arange(s.done, s.end) for s in segments])[None]

        def attention_of(index: int) -> dict:
            attention = layers[index].self_attn

            def attend(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
                out, at = [], 0
                for s in segments:
                    rows = slice(at, at + s.end - s.done)
                    keys, values = s.cache.store(index, s.done, key[:, :, rows], value[:, :, rows])
                    # as prefill: new position i sees every position up to done + i
                    mask = (torch.ones(s.end - s.done, s.end, dtype=torch.bool).tril(diagonal=s.done)[None, None]
                            if s.done else None)
                    out.append(attend_cached(attention, query[:, :, rows], keys, values, mask))
                    at += s.end - s.done
                return torch.cat(out, dim=2)

            return {"attend": attend}

        hidden = self.layers(hidden, positions, attention_of)
        at = 0
        for s in segments:
            s.hidden.append(hidden[:, at:at + s.end - s.done])
            at += s.end - s.done
            s.done = s.end

    def head(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A step's (fp32 logits, hidden) from its last hidden state."""
        logits = self.talker.codec_head(hidden)
        return logits[:, -1, :].to(copy=True, dtype=torch.float32), hidden[:, -1:, :]

    def predict(self, past_hidden: torch.Tensor, token: torch.Tensor,
                rows: list[Sampling]) -> tuple[torch.Tensor, torch.Tensor]:
        """The code predictor's 15 codes after ``token``, row ``b`` sampled by ``rows[b]``:
        (the frame's 16 codes, the next talker input before its text part)."""
        last_id_hidden = self.talker.get_input_embeddings()(token[:, None]).to(self.dtype)
        frame = predict_frame(self.talker.code_predictor, torch.cat((past_hidden, last_id_hidden), dim=1), rows)
        return torch.cat((token[:, None], frame.codes), dim=-1), frame.summed

    def _layers(self, hidden: torch.Tensor, positions: torch.Tensor, cache: "_KVCache", start: int,
                mask: torch.Tensor | None) -> torch.Tensor:
        """``Qwen3TTSTalkerModel.forward`` for new positions ``start..`` (last hidden, normed)."""
        cache.reserve(start + hidden.shape[1])

        def store_in(index: int) -> Any:
            return lambda key, value: cache.store(index, start, key, value)

        return self.layers(hidden, positions, lambda index: {"store": store_in(index), "mask": mask})

    def native_step(self, hidden: torch.Tensor, positions: torch.Tensor, rows: "_CacheRows",
                    begins: list[int]) -> torch.Tensor:
        """One position per row through the talker's layers and final norm in one native call
        (``generation.native_stack``); row ``b`` attends to its cache from ``begins[b]``."""
        cos, sin = self._rotary(hidden, positions)
        return self.native.step(hidden, cos, sin, rows.keys, rows.values, begins, rows.starts)

    def _rotary(self, hidden: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and [-sin, sin] of ``positions`` (batch, span), each (batch, span, head_dim).
        Text positions are the same in all three of the multimodal rotary's sections, so
        upstream's section merge (apply_multimodal_rotary_pos_emb) yields the first section's
        tables exactly; they are computed once per step, not once per layer."""
        cos, sin = self.talker.model.rotary_emb(hidden, positions[None].expand(3, -1, -1))
        return cos[0], signed_sin(sin[0])

    def layers(self, hidden: torch.Tensor, positions: torch.Tensor, attention_of: Callable[[int],
                                                                                           dict]) -> torch.Tensor:
        """The talker's layers and final norm; ``attention_of(layer index)`` gives the layer's
        ``store`` and ``mask``, or its ``attend`` (``layers.decoder_layer``)."""
        model = self.talker.model
        cos, sin = self._rotary(hidden, positions)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        for index, layer in enumerate(model.layers):
            attention = attention_of(index)
            hidden = decoder_layer(layer, hidden, cos, sin, attention.get("store"), attention.get("mask"),
                                   attention.get("attend"))
        return model.norm(hidden)

    @staticmethod
    def _prefill_mask(mask: torch.Tensor) -> torch.Tensor | None:
        """Causal and padding mask for a left-padded batch (None when nothing is padded); a
        padding position attends to itself so that its (unused) output stays finite."""
        if bool(mask.all()):
            return None
        length = mask.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool).tril()
        allowed = causal[None] & mask[:, None, :]
        allowed |= torch.eye(length, dtype=torch.bool)[None]
        return allowed[:, None]

    @staticmethod
    def _step_mask(mask: torch.Tensor, step: int) -> torch.Tensor | None:
        if bool(mask.all()):
            return None
        width = mask.shape[1] + step + 1
        allowed = torch.ones(mask.shape[0], width, dtype=torch.bool)
        allowed[:, :mask.shape[1]] = mask
        return allowed[:, None, None, :]


def _process(scores: torch.Tensor, tokens: torch.Tensor, penalty: float, min_new_tokens: int, eos: int,
             suppress: torch.Tensor) -> torch.Tensor:
    """transformers' logits processors for these settings, in its order."""
    if penalty and penalty != 1.0 and tokens.shape[1]:
        taken = torch.gather(scores, 1, tokens)
        taken = torch.where(taken < 0, taken * penalty, taken / penalty)
        scores = scores.scatter(1, tokens, taken)
    if tokens.shape[1] < min_new_tokens:
        scores[:, eos] = -float("inf")
    if suppress.numel():
        scores[:, suppress] = -float("inf")
    return scores


@dataclass(eq=False)
class _Segment:
    """A prompt being prefilled (``LeanTalker.start_prompt``): its rows, how many lead rows
    were reused, how many are in its cache so far."""

    inputs: torch.Tensor  # (1, L, H)
    shared: int
    cache: "_KVCache"
    prefix: Any  # the PrefixCache entry its first ``shared`` rows came from, or None
    done: int  # rows whose keys and values are in the cache
    end: int = 0  # the end of the slice being computed
    hidden: list[torch.Tensor] = field(default_factory=list)  # the new rows' hidden states, slice by slice

    @property
    def finished(self) -> bool:
        return self.done == self.inputs.shape[1]


@dataclass
class _CacheRows:
    """Per row: its cache's keys and values, (layers, heads, capacity, dim), and where the new
    position goes (the arguments of a native step)."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    starts: list[int]

    @staticmethod
    def join(parts: list["_CacheRows"]) -> "_CacheRows":
        """The rows of several caches (the batcher's streams) as one batch."""
        return _CacheRows([k for p in parts for k in p.keys], [v for p in parts for v in p.values],
                          [s for p in parts for s in p.starts])


class _KVCache:
    """Keys and values of every talker layer, allocated once and grown by doubling."""

    def __init__(self, model: nn.Module, batch: int, prompt: int, max_new_tokens: int, dtype: torch.dtype) -> None:
        first = model.layers[0].self_attn
        self.layers = len(model.layers)
        self.shape = (batch, model.config.num_key_value_heads, first.head_dim)
        self.limit = prompt + max_new_tokens + 1
        self.dtype = dtype
        self.keys = self.values = torch.empty(0)
        self.capacity = 0
        self.used = 0
        self.reserve(min(self.limit, prompt + INITIAL_CAPACITY))

    def reserve(self, length: int) -> None:
        if length <= self.capacity:
            return
        capacity = min(max(length, 2 * self.capacity), max(self.limit, length))
        batch, heads, dim = self.shape
        keys = torch.empty((self.layers, batch, heads, capacity, dim), dtype=self.dtype)
        values = torch.empty_like(keys)
        if self.capacity:
            keys[:, :, :, :self.used] = self.keys[:, :, :, :self.used]
            values[:, :, :, :self.used] = self.values[:, :, :, :self.used]
        self.keys, self.values, self.capacity = keys, values, capacity

    def rows(self, start: int) -> "_CacheRows":
        """Each row's keys and values for a native step writing position ``start``."""
        self.reserve(start + 1)
        self.used = max(self.used, start + 1)
        batch = self.shape[0]
        return _CacheRows([self.keys[:, b] for b in range(batch)], [self.values[:, b] for b in range(batch)],
                          [start] * batch)

    def store(self, layer: int, start: int, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor,
                                                                                             torch.Tensor]:
        end = start + key.shape[2]
        self.keys[layer, :, :, start:end] = key
        self.values[layer, :, :, start:end] = value
        self.used = max(self.used, end)
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]
