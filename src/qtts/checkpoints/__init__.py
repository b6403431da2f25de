"""Test checkpoints: tiny or full-size models built with the real qwen_tts classes and
random weights (``qtts models build-random``), from the published configs.
"""
