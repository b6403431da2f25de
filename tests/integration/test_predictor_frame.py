"""The native code-predictor frame (kernels/predictor_frame.h, engine.native_stack.build_frame)
against the lean Python loop it replaces, on the tiny checkpoint's real qwen_tts modules, and
its sampling against transformers' order as code_predictor._sample applies it."""

import pytest
import torch

from qtts.engine import kernels
from qtts.engine.generation.code_predictor import Sampling, _sample, predict_frame
from qtts.engine.weights import quant

pytestmark = pytest.mark.skipif(kernels.load() is None, reason="qtts's native kernel cannot be built here")

SETTINGS = [  # (top_k, top_p, temperature)
    (50, 1.0, 1.0), (5, 1.0, 1.0), (0, 0.8, 1.0), (10, 0.7, 0.6), (0, 1.0, 1.7), (3, 0.95, 0.9)]


def _allowed_probabilities(logits: torch.Tensor, top_k: int, top_p: float, temperature: float) -> torch.Tensor:
    """The distribution _sample draws from (its filtering, then softmax)."""
    seen = {}
    real = torch.multinomial

    def capture(probs, num_samples, generator=None):
        seen["probs"] = probs
        return real(probs, num_samples, generator=generator)

    torch.multinomial = capture
    try:
        _sample(logits[None].clone(), True, top_k, top_p, temperature)
    finally:
        torch.multinomial = real
    return seen["probs"][0].double()


@pytest.mark.parametrize("top_k, top_p, temperature", SETTINGS)
def test_native_sampling_draws_from_the_same_distribution(top_k, top_p, temperature):
    """Evenly spaced uniforms through the native sampler give each code a share equal to its
    probability under _sample's filtering (within one draw in 20000), and only allowed codes."""
    kernel = kernels.load()
    logits = torch.randn(64, generator=torch.Generator().manual_seed(top_k * 7 + int(top_p * 10))) * 3
    expected = _allowed_probabilities(logits, top_k, top_p, temperature)
    draws = 20000
    counts = torch.zeros(64, dtype=torch.float64)
    for i in range(draws):
        counts[kernel.sample(logits, True, top_k, top_p, temperature, (i + 0.5) / draws)] += 1
    assert torch.all(counts[expected == 0] == 0)
    assert torch.allclose(counts / draws, expected, atol=1.5 / draws + 1e-5)


def test_native_sampling_greedy_and_invalid_logits():
    kernel = kernels.load()
    logits = torch.tensor([0.5, 2.0, 2.0, -1.0])
    assert kernel.sample(logits, False, 50, 1.0, 1.0, 0.99) == 1  # the first of equals, as argmax
    # top-k keeps every logit equal to the k-th largest (transformers' threshold): both 2.0s
    assert [kernel.sample(logits, True, 1, 1.0, 1.0, u) for u in (0.2, 0.99)] == [1, 2]
    assert kernel.sample(torch.tensor([0.0, float("nan"), 1.0]), False, 50, 1.0, 1.0, 0.5) == 1
    with pytest.raises(RuntimeError, match="probability tensor"):
        kernel.sample(torch.tensor([0.0, float("nan"), 1.0]), True, 0, 1.0, 1.0, 0.5)


@pytest.fixture()
def predictor(tiny_engine):
    predictor = tiny_engine._tts.model.talker.code_predictor
    assert tiny_engine.patches.patches["native code-predictor frame"] == 1
    frame = predictor.__dict__["_qtts_frame"]
    assert frame is not None
    yield predictor
    predictor.__dict__["_qtts_frame"] = frame


@pytest.fixture(scope="module")
def projected_predictor(tiny_engine):
    """The real code-predictor class narrower than its talker (as at 1.7B: 1024 against 2048),
    so that an input projection with a bias runs first; random weights, int8 and fused as the
    fast path makes them."""
    import copy

    from qtts.engine.generation import native_stack
    from qtts.engine.generation.layers import fuse_projections
    from qtts.engine.weights.quant import Quantizer

    talker = tiny_engine._tts.model.talker
    config, talker_config = copy.deepcopy(talker.code_predictor.config), copy.deepcopy(talker.config)
    talker_config.hidden_size = 2 * config.hidden_size
    torch.manual_seed(0)
    model = type(talker.code_predictor)(config, talker_config).eval()
    with torch.no_grad():
        model.small_to_mtp_projection.bias.uniform_(-0.5, 0.5)
    kernel = kernels.load()
    Quantizer("int8", kernel=kernel).module(model)
    fuse_projections(model.model.layers)
    stack = native_stack.build(model.model, kernel, torch.float32)
    model.__dict__["_qtts_native"] = stack
    model.__dict__["_qtts_frame"] = native_stack.build_frame(model, stack, kernel)
    assert model.__dict__["_qtts_frame"] is not None
    return model


def _inputs(predictor, batch: int, seed: int) -> torch.Tensor:
    width = predictor.get_input_embeddings()[0].embedding_dim
    return torch.randn(batch, 2, width, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("which", ["tiny", "projected"])
def test_frame_matches_the_python_loop_teacher_forced(request, which):
    """Greedy native codes are the argmax of the native logits; the Python loop forced to the
    same codes gives the same logits (to float rounding) and the same embedding sum; with and
    without an input projection."""
    predictor = request.getfixturevalue("predictor" if which == "tiny" else "projected_predictor")
    if which == "projected":
        assert isinstance(predictor.small_to_mtp_projection, quant.Int8Linear)
        assert predictor.small_to_mtp_projection.bias is not None
    inputs = _inputs(predictor, 3, 0)
    native = predict_frame(predictor, inputs, [Sampling(do_sample=False)] * 3, keep_logits=True)
    steps = len(predictor.lm_head)
    assert native.codes.shape == (3, steps) and native.logits.shape[:2] == (3, steps)
    assert torch.equal(native.codes, native.logits.argmax(-1))
    frame = predictor.__dict__.pop("_qtts_frame")
    try:
        python = predict_frame(predictor, inputs, [Sampling(do_sample=False)] * 3, forced=native.codes,
                               keep_logits=True)
    finally:
        predictor.__dict__["_qtts_frame"] = frame
    cosine = torch.nn.functional.cosine_similarity(native.logits, python.logits, dim=-1)
    assert float(cosine.min()) > 0.9999
    assert torch.allclose(native.logits, python.logits, atol=1e-3, rtol=1e-3)
    assert torch.allclose(native.summed, python.summed, atol=1e-4)
    assert native.summed.shape == (3, 1, inputs.shape[2])


def test_frame_forced_codes_are_taken(predictor):
    inputs = _inputs(predictor, 2, 1)
    vocab = predictor.lm_head[0].out_features
    forced = torch.randint(0, vocab, (2, len(predictor.lm_head)), generator=torch.Generator().manual_seed(2))
    out = predict_frame(predictor, inputs, [Sampling()] * 2, forced=forced)
    assert torch.equal(out.codes, forced) and out.logits is None
    with pytest.raises(RuntimeError, match="outside the embedding"):
        predict_frame(predictor, inputs, [Sampling()] * 2, forced=forced + vocab * 10)


def test_frame_sampling_follows_each_rows_generator(predictor):
    """Rows with their own generators: the same seed gives the same codes whatever the other
    rows are; a row's codes do not depend on its neighbours."""
    inputs = _inputs(predictor, 2, 3)

    def rows(*seeds):
        return [Sampling(top_k=20, temperature=0.9, generator=torch.Generator().manual_seed(s)) for s in seeds]

    first = predict_frame(predictor, inputs, rows(5, 6)).codes
    again = predict_frame(predictor, inputs, rows(5, 7)).codes
    assert torch.equal(first[0], again[0])
    other = predict_frame(predictor, inputs, rows(8, 6)).codes
    assert torch.equal(first[1], other[1])
    assert not torch.equal(first, predict_frame(predictor, inputs, rows(9, 10)).codes)


def test_synthesis_runs_every_frame_through_the_native_frame(tiny_engine, predictor):
    from qtts import audio as audio_mod
    from qtts.doctor import smoke_reference
    from qtts.engine.upstream import calls as generation

    frame = predictor.__dict__["_qtts_frame"]
    calls = []

    class Counting:
        def run(self, *args):
            calls.append(args[0].shape[0])
            return frame.run(*args)

    predictor.__dict__["_qtts_frame"] = Counting()
    reference = audio_mod.prepare_reference(smoke_reference(3.0), 30)
    prompt = tiny_engine.create_prompt(reference, "Hello there, this is a test.", False)
    codes = generation.generate(tiny_engine._tts, ["Hello world, again."], "English", prompt, max_new_tokens=8)[0]
    assert len(calls) >= len(codes) - 1 >= 1


def test_build_frame_refuses_what_it_cannot_run(tiny_engine, predictor):
    from qtts.engine.generation import native_stack

    kernel, stack = kernels.load(), predictor.__dict__["_qtts_native"]
    assert native_stack.build_frame(predictor, stack, kernel) is not None
    assert native_stack.build_frame(predictor, None, kernel) is None
    head = predictor.lm_head[0]
    head.bias = torch.nn.Parameter(torch.zeros(head.out_features), requires_grad=False)
    try:
        assert native_stack.build_frame(predictor, stack, kernel) is None
    finally:
        head.bias = None


def test_build_frame_refuses_a_projection_off_the_kernel(projected_predictor):
    from qtts.engine.generation import native_stack

    kernel, stack = kernels.load(), projected_predictor.__dict__["_qtts_native"]
    original = projected_predictor.small_to_mtp_projection
    projected_predictor.small_to_mtp_projection = torch.nn.Linear(original.in_features, original.out_features)
    try:
        assert native_stack.build_frame(projected_predictor, stack, kernel) is None
    finally:
        projected_predictor.small_to_mtp_projection = original
    assert native_stack.build_frame(projected_predictor, stack, kernel) is not None
