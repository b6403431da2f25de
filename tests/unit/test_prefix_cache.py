"""engine.prefix_cache: which rows of a new prompt a kept prompt shares."""

import torch

from qtts.engine.generation.prefix_cache import MIN_REUSE, PrefixCache


def _prompt(rows, seed=0):
    return torch.randn(rows, 8, generator=torch.Generator().manual_seed(seed))


def _kv(rows, fill):
    return torch.full((2, 1, rows, 4), float(fill)), torch.full((2, 1, rows, 4), float(fill) + 0.5)


def test_the_longest_shared_prefix_is_found_and_the_last_row_is_never_reused():
    cache = PrefixCache()
    first = _prompt(20)
    cache.remember(first, *_kv(20, 1))
    other = _prompt(30, seed=1)
    cache.remember(other, *_kv(30, 2))
    new = torch.cat([first[:12], _prompt(10, seed=2)])
    shared, entry = cache.match(new)
    assert shared == 12 and torch.equal(entry.inputs, first) and float(entry.keys[0, 0, 0, 0]) == 1
    shared, entry = cache.match(first)  # the same prompt again: all rows but the last
    assert shared == 19 and torch.equal(entry.inputs, first)
    longer = torch.cat([other, _prompt(5, seed=3)])
    assert cache.match(longer)[0] == 30
    one_off = first.clone()
    one_off[3, 5] += 1e-6  # rows are compared exactly
    assert cache.match(one_off)[0] == 0  # 3 < MIN_REUSE
    assert MIN_REUSE > 3


def test_entries_are_copies_and_the_least_recently_used_goes_first():
    cache = PrefixCache(entries=2)
    prompts = [_prompt(10, seed=i) for i in range(3)]
    keys, values = _kv(10, 7)
    cache.remember(prompts[0], keys, values)
    keys.fill_(0)  # the caller's cache is reused for the next prompt
    assert float(cache.match(prompts[0])[1].keys.max()) == 7
    cache.remember(prompts[1], *_kv(10, 1))
    cache.match(prompts[0])  # used: now the most recent
    cache.remember(prompts[2], *_kv(10, 2))
    assert len(cache) == 2
    assert cache.match(prompts[0])[0] == 9 and cache.match(prompts[2])[0] == 9
    assert cache.match(prompts[1]) == (0, None)
    cache.clear()
    assert cache.match(prompts[0]) == (0, None)
