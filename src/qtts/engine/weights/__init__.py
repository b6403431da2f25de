"""Weights: how the talker's and code predictor's linears are stored and read.

``quant`` has the low-bit linears (int8 on qtts's kernel or torch's, int4) and the
quantizer that swaps them in; ``cache`` keeps the quantized weights on disk, so that a
second load maps them instead of quantizing again.
"""
