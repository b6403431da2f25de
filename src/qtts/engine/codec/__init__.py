"""The codec: the 12 Hz speech tokenizer's decoder, from codes to a 24 kHz waveform.

``decoder`` makes its parts faster (bit-identical SnakeBeta, transposed convolutions
rebuilt); ``stream`` carries its state from one group of frames to the next, so that new
frames are decoded without decoding the reference or the earlier groups again.
"""
