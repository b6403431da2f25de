"""Continuous batching (engine.batcher) through real qwen_tts on the tiny checkpoint: streams
that join and leave at different frames get the codes they get alone; cancellation, a
failing stream and fairness."""

import threading

import pytest
import torch

from qtts.engine.generation.batcher import FrameLoop, StreamRequest
from qtts.engine.generation.guard import GenerationGuard
from qtts.engine.upstream import calls as generation
from qtts.settings import Settings

TEXTS = ["Hello world.", "A second, longer sentence to speak now.", "Third."]
CAPS = [9, 16, 12]  # max_new_tokens: the streams leave at different frames
GREEDY = {"do_sample": False, "subtalker_dosample": False}


def _engine(tiny_model, precision):
    from qtts.engine.core import Engine

    return Engine.load(Settings.resolve({"model_id": str(tiny_model), "precision": precision}, environ={}))


@pytest.fixture(scope="module", params=["fp32", "int8"])
def engine(request, tiny_model):
    return _engine(tiny_model, request.param)


def _prompt(engine, seconds=3.0):
    from qtts import audio as audio_mod
    from qtts.doctor import smoke_reference

    reference = audio_mod.prepare_reference(smoke_reference(seconds), 30)
    return engine.create_prompt(reference, "Hello there, this is a test.", False)


def _alone(engine, prompt, text, cap, language="English"):
    return generation.generate(engine._tts, [text], language, prompt, max_new_tokens=cap, **GREEDY)[0]


def _request(engine, prompt, text, cap, seed=0, owner=None, guard=None):
    captured = generation.talker_request(engine._tts, text, "English", prompt, max_new_tokens=cap, **GREEDY)
    return StreamRequest(captured["inputs_embeds"], captured["trailing_text_hidden"], captured["tts_pad_embed"],
                         captured, seed, owner, guard)


def _take(stream, count):
    frames = stream.frames()
    for _ in range(count):
        next(frames)


def test_streams_joining_and_leaving_at_different_frames_get_their_codes_alone(engine):
    prompt = _prompt(engine)
    alone = [_alone(engine, prompt, text, cap) for text, cap in zip(TEXTS, CAPS)]
    assert all(len(codes) >= 3 for codes in alone)
    loop = FrameLoop(engine.talker_loop, max_batch=8)
    if engine.settings.precision == "int8":
        from qtts.engine import kernels

        assert loop.batch_invariant == (kernels.load() is not None)  # batched rows where they are exact
    first = loop.submit(_request(engine, prompt, TEXTS[0], CAPS[0]))
    _take(first, 2)  # the second joins at frame 3, the third at frame 5 of the first
    second = loop.submit(_request(engine, prompt, TEXTS[1], CAPS[1]))
    _take(second, 2)
    third = loop.submit(_request(engine, prompt, TEXTS[2], CAPS[2]))
    got = [first.result(), second.result(), third.result()]
    for ours, expected in zip(got, alone):
        assert torch.equal(ours, expected)
    assert loop.frames_run < sum(len(c) for c in alone)  # frames were shared
    loop.close()


def test_streams_admitted_together_are_prefilled_together_with_their_bits_alone(engine, monkeypatch):
    """Prompts prefilled in one pass (their rows side by side in each product) give each
    prompt's logits and hidden state bit for bit as its own prefill; streams submitted at
    once share that pass and get their codes alone.  Where products are not exact per row
    (fp32), they are prefilled one by one."""
    from qtts.engine.generation.talker import _KVCache
    from qtts.engine.weights import quant

    loop_talker = engine.talker_loop
    prompt = _prompt(engine)
    requests = [_request(engine, prompt, text, cap) for text, cap in zip(TEXTS, CAPS)]
    loop = FrameLoop(loop_talker, max_batch=8)
    shared = loop.batch_invariant and loop_talker.native is not None
    assert shared == (engine.settings.precision == "int8" and loop_talker.native is not None)

    def cache(request):
        length = request.inputs_embeds.shape[1]
        return _KVCache(loop_talker.talker.model, 1, length, 4, loop_talker.dtype)

    if shared:
        # and a prompt longer than a pass holds: it goes alone, its products on the bf16 GEMM
        # where the CPU has native bf16, and still gets its own prefill's bits
        long_request = _request(engine, _prompt(engine, seconds=14.0), TEXTS[0], 4)  # the reference is the prompt
        if loop.exact_rows < quant.ALL_ROWS:
            assert long_request.inputs_embeds.shape[1] >= loop.exact_rows
        prompts = [*requests, long_request]
        mask = [torch.ones((1, r.inputs_embeds.shape[1]), dtype=torch.bool) for r in prompts]
        with torch.inference_mode():
            alone = []
            for request, m in zip(prompts, mask):
                loop_talker.prefixes.clear()  # each computes its whole prompt
                logits, hidden, _ = loop_talker.prefill(request.inputs_embeds, m, cache(request))
                alone.append((logits, hidden))
            loop_talker.prefixes.clear()
            caches = [cache(r) for r in prompts]
            together = loop_talker.prefill_many([r.inputs_embeds for r in prompts], caches, loop.exact_rows)
        assert len(together) == len(prompts)
        for (logits, hidden), (logits_alone, hidden_alone) in zip(together, alone):
            assert torch.equal(logits, logits_alone) and torch.equal(hidden, hidden_alone)
        assert len(loop_talker.prefixes) == len(prompts)  # each prompt remembered, as prefill does

    expected = [_alone(engine, prompt, text, cap) for text, cap in zip(TEXTS, CAPS)]
    passes = []
    real = loop_talker.prefill_slices
    monkeypatch.setattr(loop_talker, "prefill_slices", lambda segments, *a: passes.append(len(segments)) or real(
        segments, *a))
    with loop._lock:  # the loop's thread waits: all three are admitted at one frame boundary
        streams = [loop.submit(r) for r in requests]
    for stream, codes in zip(streams, expected):
        assert torch.equal(stream.result(), codes)
    assert passes == ([3] if shared else [])
    loop.close()


def test_a_long_prompt_is_prefilled_in_slices_between_the_running_streams_frames(engine, monkeypatch):
    """A prompt longer than a slice holds the running streams up for one slice per frame;
    how it is sliced depends on its length only, so its codes are those it gets alone."""
    from qtts.engine.generation import batcher

    loop_talker = engine.talker_loop
    sliced = FrameLoop(loop_talker, max_batch=8).batch_invariant and loop_talker.native is not None
    assert sliced == (engine.settings.precision == "int8" and loop_talker.native is not None)
    monkeypatch.setattr(batcher, "PREFILL_SLICE_ROWS", 64)
    long_request = _request(engine, _prompt(engine, seconds=14.0), TEXTS[1], 6)
    assert long_request.inputs_embeds.shape[1] > 2 * batcher.PREFILL_SLICE_ROWS  # three slices

    def run(with_running: bool) -> tuple[torch.Tensor, list[int]]:
        if loop_talker.prefixes is not None:
            loop_talker.prefixes.clear()  # the whole prompt computed each time
        loop = FrameLoop(loop_talker, max_batch=8)
        at_slices, queues = [], []
        real = loop_talker.prefill_slices
        monkeypatch.setattr(loop_talker, "prefill_slices", lambda segments, *a: at_slices.append(loop.frames_run)
                            or queues.append(loop.stats()["prefill_queue"]) or real(segments, *a))
        if with_running:
            running = loop.submit(_request(engine, _prompt(engine), TEXTS[0], 40, seed=1))
            _take(running, 2)
        codes = loop.submit(long_request).result()
        loop.close()
        if sliced:  # GET /v1/batch shows the long prompt waiting while each of its slices runs
            assert queues[-3:] == [1, 1, 1]
        return codes, at_slices

    alone, _ = run(False)
    together, at_slices = run(True)
    assert torch.equal(together, alone)
    if sliced:
        assert len(at_slices) >= 3 and at_slices[-1] > at_slices[-2]  # frames ran between the slices
    else:  # fp32: rows are not exact per row, so each prompt is computed whole, on its own
        assert at_slices == []


def test_a_cancelled_stream_leaves_at_the_next_frame_and_a_failing_one_fails_alone(engine):
    prompt = _prompt(engine)
    expected = _alone(engine, prompt, TEXTS[1], CAPS[1])
    loop = FrameLoop(engine.talker_loop, max_batch=8)
    stop = threading.Event()
    guard = GenerationGuard(should_cancel=stop.is_set)
    doomed = loop.submit(_request(engine, prompt, TEXTS[0], 200, guard=guard))
    broken = _request(engine, prompt, TEXTS[2], CAPS[2])
    broken.inputs_embeds = broken.inputs_embeds[..., :7]  # the wrong width: its prefill fails
    failing = loop.submit(broken)
    healthy = loop.submit(_request(engine, prompt, TEXTS[1], CAPS[1]))
    _take(doomed, 3)
    stop.set()
    made = len(doomed.codes)  # frames made when the cancel came (this thread may lag the loop)
    cancelled = doomed.result()
    assert guard.cancelled and 3 <= made <= len(cancelled) <= made + 2
    with pytest.raises(RuntimeError):
        failing.result()
    assert torch.equal(healthy.result(), expected)
    loop.close()


def test_a_long_request_does_not_starve_a_short_one(tiny_model):
    engine = _engine(tiny_model, "int8")
    prompt = _prompt(engine)
    loop = FrameLoop(engine.talker_loop, max_batch=1)
    book, line = object(), object()
    finished = []
    # Built before any is submitted: the first chapter may finish before a request is built.
    requests = [_request(engine, prompt, TEXTS[0], 6, owner=book) for _ in range(3)]
    line_request = _request(engine, prompt, TEXTS[2], 6, owner=line)
    chapters = [loop.submit(request) for request in requests]
    short = loop.submit(line_request)
    for stream, name in [(chapters[0], "c1"), (chapters[1], "c2"), (chapters[2], "c3"), (short, "line")]:
        threading.Thread(target=lambda s=stream, n=name: (s.result(), finished.append(n))).start()
    for stream in chapters + [short]:
        stream.result()
    # One place: the first chapter runs; then the line (its request has none running) before
    # the book's other chapters.
    assert finished.index("line") <= 1
    loop.close()


def test_concurrent_requests_through_the_engine_match_sequential_ones(tiny_model):
    from qtts.engine.core import SynthesisOptions

    engine = _engine(tiny_model, "int8")
    prompt = _prompt(engine)
    options = SynthesisOptions(language="English", seed=1, max_frames=10, do_sample=False, retry_runaway=False)
    texts = ["One request here.", "Another request. With two sentences.", "A third."]
    engine.enable_batching(max_batch=4)
    sequential = [engine.synthesize(text, prompt, options).audio.samples for text in texts]
    results = [None] * len(texts)

    def run(index):
        results[index] = engine.synthesize(texts[index], prompt, options).audio.samples

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for ours, expected in zip(results, sequential):
        assert ours is not None and (ours == expected).all()
    streamed = list(engine.stream(texts[0], prompt, options))
    assert sum(len(piece) for piece in streamed) == len(sequential[0])


def test_jobs_run_together_and_one_can_be_cancelled_mid_run(service_url, library_voice):
    import httpx

    from tests.integration.servers import wait_until

    long_text = " ".join(f"Sentence number {i} of this job." for i in range(6))
    ids = [httpx.post(f"{service_url}/v1/jobs", json={"input": long_text, "voice": library_voice, "seed": i,
                                                      "split_max_chars": 40, "max_frames": 30}).json()["id"]
           for i in range(3)]
    seen = []

    def together():
        seen.append(httpx.get(f"{service_url}/v1/batch").json()["active"])
        return max(seen) >= 2
    wait_until(together, timeout=60, interval=0.05, what="two jobs' chunks in one batch")
    victim = ids[1]
    wait_until(lambda: httpx.get(f"{service_url}/v1/jobs/{victim}").json()["status"] == "running", timeout=60,
               what="the job to run")
    assert httpx.delete(f"{service_url}/v1/jobs/{victim}").status_code == 200

    def final(job_id):
        job = httpx.get(f"{service_url}/v1/jobs/{job_id}").json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None
    outcomes = {job_id: wait_until(lambda j=job_id: final(j), timeout=120, what=job_id)["status"] for job_id in ids}
    assert outcomes == {ids[0]: "succeeded", victim: "cancelled", ids[2]: "succeeded"}
    idle = httpx.get(f"{service_url}/v1/batch").json()  # the queues the scheduler works from, now empty
    assert {k: idle[k] for k in ("active", "waiting", "prefill_queue", "decode_queue")} == {
        "active": 0, "waiting": 0, "prefill_queue": 0, "decode_queue": 0}
