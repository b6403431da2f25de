from qtts.engine.generation.guard import looks_like_loop


def test_stuck_single_code_is_a_loop():
    assert looks_like_loop([5] * 60)


def test_short_period_repetition_is_a_loop():
    assert looks_like_loop([1, 2, 3, 4, 5] * 12)


def test_varied_codes_are_not_a_loop():
    import random

    rng = random.Random(0)
    assert not looks_like_loop([rng.randrange(2048) for _ in range(200)])


def test_too_short_to_judge():
    assert not looks_like_loop([7] * 10)
