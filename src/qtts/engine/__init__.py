"""The engine: loads a Qwen3-TTS model on the CPU and turns text into audio.  It knows
nothing of the CLI, the HTTP app or the queue; they call ``core.Engine`` (one model) or
``holder.Engines`` (the models a process serves).

Its jobs, a folder or module each, from the top down:

- ``core``, ``holder``: the engine as the adapters see it (chunks, voices, retries, streams).
- ``loading``: resolve a model, check memory, load it through upstream, install the fast path.
- ``upstream/``: the one door to qwen_tts's and transformers' internals (import, patches, calls).
- ``generation/``: the talker and code-predictor loops, their native steps, the continuous
  batcher, streaming, the runaway guard and the prefix cache.
- ``codec/``: the speech tokenizer's decoder, faster and carrying its state between groups.
- ``weights/``: low-bit linears (int8, int4) and the quantized-weight cache.
- ``kernels/``: qtts's own C++ kernels (int8 matrix products, native steps, SnakeBeta).
- ``prompts``, ``memory``: the voice types and memory checks every part shares.
"""

import os

# torch's OpenMP threads (libgomp) spin for a while after each parallel region; on a few cores
# they take the CPU from qtts's own thread pool when its loops run right after torch's or beside
# them (the decoder's convolutions between torch's ops, the generation loop beside a decoding
# stream).  Measured on the 2-core Xeon, a 16-frame decoder group with the AMX convolutions:
# 0.441 s spinning (17% of the samples in libgomp), 0.332 s with OMP_WAIT_POLICY=PASSIVE; the
# 1- and 8-row frames within noise either way.  Set before torch loads (every torch import of
# qtts is inside this package), unless the user chose a policy.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
