"""The precisions qtts runs the talker and code predictor in: one table, read by the
settings (valid names), the loader (dtype, low-bit or not), the memory pre-check (peak
factors) and ``qtts doctor`` (what it means)."""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3


@dataclass(frozen=True)
class Precision:
    name: str
    low_bit: bool  # linears replaced by qtts's low-bit ones (engine.quant)
    load_dtype: str  # the checkpoint is loaded in this torch dtype
    # Memory pre-check: peak RSS = peak_factor x weight bytes (at bytes_per_param) + fixed_gib,
    # fitted to the peaks 'qtts bench' measured on the full-size random checkpoints:
    # fp32 1.7B 11.6-12.1 GB for 7.7 GB of weights; bf16 (memory-mapped) 4.8 GB for 3.9 GB;
    # int8 (quantized linear by linear, pages released) 1.7B 3.88-4.05 GB, 0.6B 3.06 GB;
    # int4 2.98-3.05 GB (1.7B) and 2.95 GB (0.6B): fixed costs dominate the low-bit paths.
    bytes_per_param: int
    peak_factor: float
    fixed_gib: float
    summary: str

    @property
    def fixed_bytes(self) -> int:
        return int(self.fixed_gib * GIB)


PRECISIONS: dict[str, Precision] = {p.name: p for p in (
    Precision("int4", True, "bfloat16", 2, 0.25, 2.3, "int4 weights (torch's int4pack kernel): fastest on some CPUs, "
              "least faithful"),
    Precision("int8", True, "bfloat16", 2, 0.5, 2.0, "int8 weights on qtts's kernel: the faithful default"),
    Precision("bf16", False, "bfloat16", 2, 1.25, 0.6, "bf16 weights and activations"),
    Precision("fp32", False, "float32", 4, 1.5, 0.6,
              "fp32 everywhere: upstream's numbers exactly, slowest and largest"),
)}
NAMES = tuple(PRECISIONS)


def precision(name: str) -> Precision:
    return PRECISIONS[name]
