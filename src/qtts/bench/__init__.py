"""The bench: ``qtts bench`` measures the machine (bandwidth, GEMM), upstream against qtts
per path, fidelity, concurrency and the real CLI, and writes ``docs/bench/<machine>.json``.
"""
