"""Low-bit weight-only linears for the CPU.

Every per-frame cost of Qwen3-TTS on a CPU is weight traffic: one talker step reads all
28 layers' weights, and the code predictor reads its 5 layers 15 times per frame.  Storing
the weights of the big linears in int8 or int4 cuts those bytes 4-8x.  ``Int8Linear``
multiplies with qtts's kernel for this CPU's ISA (``engine.kernels``: AVX-512 VNNI, AVX2 or
aarch64 dot product) or, where none is available, torch's ``_weight_int8pack_mm``; the
prefill (many rows) goes through a bf16 GEMM on an exact copy of the codes where the CPU
has native bf16, else through the same kernel.  ``Int4Linear`` uses torch's
``_weight_int4pack_mm_for_cpu`` (the kernel torchao uses on CPU).  Measured on an AMD EPYC
(AVX2), one 6144x2048 matrix-vector product with weights out of cache: qtts int8 1.0-1.3
ms, torch int8 1.5-1.7 ms (docs/performance.md has the rest).

The modules are drop-in ``nn.Linear`` replacements installed on a loaded model's instances
(``upstream.install``); qwen_tts's classes are not modified.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from qtts.engine.kernels import K_MULTIPLE
from qtts.engine.memory import trim_heap

INT4_GROUP = 128
MANY_ROWS = 24  # from here on, a bf16 GEMM beats the int8 matrix-vector kernel (measured)
# With AMX tiles (the kernel's avx512vnni-amx variant) the exact kernel stays ahead much longer:
# a 12288x2048 weight on the 2-core Xeon, kernel / bf16 GEMM path: 27 rows 2.6 / 10.7 ms,
# 67 rows 5.6 / 12.2, 150 rows 11.7 / 14.4, 300 rows 24.6 / 18.9.
MANY_ROWS_AMX = 160
ALL_ROWS = 1 << 30


@functools.cache
def many_rows(kernel: Any) -> int:
    """Rows from which ``Int8Linear`` takes the bf16 GEMM (where the CPU has native bf16)
    instead of qtts's exact kernel: below it, each row's bits are its own."""
    if not fast_bf16_gemm():
        return ALL_ROWS  # no native bf16: every row stays on the kernel (torch's without one)
    variant = kernel.variant() if kernel is not None else ""
    return MANY_ROWS_AMX if variant.endswith("-amx") else MANY_ROWS


class Scratch:
    """One bf16 buffer shared by all the int8 linears of a model, for the prefill GEMM: a
    fresh 25 MB tensor per linear costs more in page faults than the copy itself (measured
    4.2 ms against 1.3 ms for a 6144x2048 weight)."""

    def __init__(self) -> None:
        self._buffer = torch.empty(0, dtype=torch.bfloat16)

    def as_bf16(self, weight: torch.Tensor) -> torch.Tensor:
        if self._buffer.numel() < weight.numel():
            self._buffer = torch.empty(weight.numel(), dtype=torch.bfloat16)
        return self._buffer[:weight.numel()].view(weight.shape).copy_(weight)


class Int8Linear(nn.Module):
    """Symmetric per-output-channel int8 weights.

    With qtts's kernel (``engine.kernels``) the codes are kept only in the kernel's packed
    layout (``weight_packed``); without it, row-major for torch's kernel (``weight_int8``)."""

    def __init__(self, linear: nn.Linear, scratch: Scratch | None = None, kernel: Any = None) -> None:
        super().__init__()
        self.scratch = scratch or Scratch()
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp(min=1e-8) / 127.0
        codes = torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8)
        self.register_buffer("scale", scale.to(torch.bfloat16))
        self.kernel = kernel if kernel is not None and linear.in_features % K_MULTIPLE == 0 else None
        if self.kernel is not None:
            self.register_buffer("weight_packed", self.kernel.pack(codes))
            self.register_buffer("row_sums", codes.sum(dim=1, dtype=torch.int32))
            self.register_buffer("scale_fp32", self.scale.float())
        else:
            self.register_buffer("weight_int8", codes)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().to(torch.bfloat16),
                                                                  requires_grad=False)
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def codes(self) -> torch.Tensor:
        """The (out, in) int8 codes, as a view where possible (the packed layout is permuted)."""
        if self.kernel is None:
            return self.weight_int8
        width = self.kernel.pack_width()
        blocks = self.weight_packed.view(-1, self.in_features // width, 8, width)
        return blocks.permute(0, 2, 1, 3).reshape(-1, self.in_features)[:self.out_features]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        rows = x.reshape(-1, shape[-1])
        limit = many_rows(self.kernel)
        if self.kernel is not None and rows.shape[0] < limit and x.dtype == torch.float32:
            # The common case of a generation step, with as little around the kernel as possible.
            out = self.kernel.int8_gemv(rows, self.weight_packed, self.row_sums, self.scale_fp32)
            if self.bias is not None:
                out = out + self.bias
            return out.view(*shape[:-1], self.out_features)
        if rows.shape[0] >= limit and fast_bf16_gemm():
            rows = rows.to(torch.bfloat16).contiguous()
            # Prefill on CPUs with native bf16: a matrix-vector kernel slows down linearly with
            # rows; an exact bf16 copy of the int8 codes (|q| <= 127) goes through oneDNN's
            # bf16 GEMM (AMX where the CPU has it), and the scale is applied afterwards.
            out = torch.nn.functional.linear(rows, self.scratch.as_bf16(self.codes())) * self.scale
        elif self.kernel is not None:
            # Generation steps, and the prefill elsewhere (measured 13 ms for 70 rows of a
            # 6144x2048 weight on AVX2, against 35 ms for torch's int8 and 37 ms for fp32).
            out = self.kernel.int8_gemv(rows if rows.dtype == torch.bfloat16 else rows.float(), self.weight_packed,
                                        self.row_sums, self.scale_fp32)
        else:
            out = torch._weight_int8pack_mm(rows.to(torch.bfloat16).contiguous(), self.weight_int8, self.scale)
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*shape[:-1], self.out_features).to(x.dtype)


def fuse(linears: list[Int8Linear]) -> Int8Linear | None:
    """One ``Int8Linear`` computing several that share their input (q/k/v, gate/up), with
    their outputs side by side: one kernel call instead of several.  Exact: each output row
    keeps its codes and scale, and the input is quantized once either way.  The originals
    become views of the fused buffers (no extra memory).  None when they cannot be fused."""
    first = linears[0]
    if not all(isinstance(m, Int8Linear) and m.kernel is not None and m.kernel is first.kernel for m in linears):
        return None
    if any(m.in_features != first.in_features or m.out_features % 8 for m in linears):
        return None
    if any((m.bias is None) != (first.bias is None) for m in linears):
        return None
    fused = Int8Linear.__new__(Int8Linear)
    nn.Module.__init__(fused)
    fused.scratch, fused.kernel = first.scratch, first.kernel
    fused.in_features, fused.out_features = first.in_features, sum(m.out_features for m in linears)
    for name in ("weight_packed", "row_sums", "scale_fp32", "scale"):
        fused.register_buffer(name, torch.cat([getattr(m, name) for m in linears]))
    fused.bias = None if first.bias is None else nn.Parameter(torch.cat([m.bias for m in linears]), requires_grad=False)
    offsets = {"weight_packed": 0, "rows": 0}
    for m in linears:
        size, rows = m.weight_packed.numel(), m.out_features
        start, row = offsets["weight_packed"], offsets["rows"]
        m.weight_packed = fused.weight_packed[start:start + size]
        for name in ("row_sums", "scale_fp32", "scale"):
            setattr(m, name, getattr(fused, name)[row:row + rows])
        if m.bias is not None:
            m.bias = nn.Parameter(fused.bias[row:row + rows], requires_grad=False)
        offsets["weight_packed"], offsets["rows"] = start + size, row + rows
    return fused


def restore(cls: type[nn.Module], linear: nn.Linear, tensors: dict[str, torch.Tensor], **attributes: Any) -> nn.Module:
    """A low-bit linear of class ``cls`` rebuilt from its saved tensors (``saved_tensors``),
    without reading ``linear``'s weight (only its shape)."""
    module = cls.__new__(cls)
    nn.Module.__init__(module)
    for name, value in attributes.items():
        setattr(module, name, value)
    module.in_features, module.out_features = linear.in_features, linear.out_features
    for name, tensor in tensors.items():
        if name == "bias":
            continue
        module.register_buffer(name, tensor)
    bias = tensors.get("bias")
    module.bias = None if bias is None else nn.Parameter(bias, requires_grad=False)
    return module


def saved_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every low-bit linear's buffers (and bias) under ``module path.buffer``, for the weight cache."""
    out = {}
    for path, module in model.named_modules():
        if isinstance(module, (Int8Linear, Int4Linear)):
            for name, buffer in module._buffers.items():
                out[f"{path}.{name}"] = buffer
            if module.bias is not None:
                out[f"{path}.bias"] = module.bias.detach()
    return out


class Int4Linear(nn.Module):
    """Asymmetric int4 weights in groups of ``INT4_GROUP`` along the input dimension."""

    def __init__(self, linear: nn.Linear, group: int = INT4_GROUP) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        out_features, in_features = weight.shape
        grouped = weight.reshape(out_features, in_features // group, group)
        low = grouped.amin(dim=-1, keepdim=True)
        step = (grouped.amax(dim=-1, keepdim=True) - low).clamp(min=1e-8) / 15.0
        codes = torch.round((grouped - low) / step).clamp(0, 15).to(torch.int32).reshape(out_features, in_features)
        self.register_buffer("weight_int4", torch._convert_weight_to_int4pack_for_cpu(codes, 1))
        # The kernel computes w = (q - 8) * scale + zero, so zero is the value at code 8.
        zeros = low + 8 * step
        self.register_buffer("scales_and_zeros",
                             torch.stack([step.squeeze(-1).t(), zeros.squeeze(-1).t()],
                                         dim=-1).contiguous().to(torch.bfloat16))
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().to(torch.bfloat16),
                                                                  requires_grad=False)
        self.group = group
        self.in_features, self.out_features = in_features, out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        out = torch._weight_int4pack_mm_for_cpu(x.reshape(-1, shape[-1]).to(torch.bfloat16).contiguous(),
                                                self.weight_int4,
                                                self.group, self.scales_and_zeros)
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*shape[:-1], self.out_features).to(x.dtype)


@functools.cache
def fast_bf16_gemm() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (AVX512-BF16 or AMX); elsewhere
    oneDNN emulates bf16 and the int8 kernel stays faster."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


@dataclass
class Quantizer:
    """Replaces ``nn.Linear`` modules by low-bit ones; one per model, so that its int8
    linears share a prefill buffer and the kernel choice."""

    scheme: str
    kernel: Any = None  # qtts's int8 kernel module (engine.kernels.load()), if available
    min_in_features: int = K_MULTIPLE  # every linear of the real talker and predictor is far wider
    scratch: Scratch = field(default_factory=Scratch)
    mapped: list[tuple[int, int]] = field(default_factory=lambda: safetensors_mappings())
    # Tensors saved by an earlier load (engine.weight_cache): linears found here are rebuilt
    # from them instead of being quantized again.
    cached: dict[str, torch.Tensor] | None = None
    restored: int = 0
    _by_module: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for key, tensor in (self.cached or {}).items():  # "talker.model.layers.0.mlp.up_proj.scale"
            module, _, name = key.rpartition(".")
            self._by_module.setdefault(module, {})[name] = tensor

    def module(self, module: nn.Module, prefix: str = "") -> int:
        """Replace every eligible ``nn.Linear`` under ``module`` (named ``prefix``) in place;
        return how many."""
        count = 0
        for name, child in list(module.named_children()):
            path = f"{prefix}.{name}" if prefix else name
            if isinstance(child, nn.Linear):
                replacement = self.linear(child, path)
                if replacement is not child:
                    setattr(module, name, replacement)
                    count += 1
            else:
                count += self.module(child, path)
        return count

    def linear(self, linear: nn.Linear, path: str = "") -> nn.Module:
        """The quantized replacement of ``linear``, or ``linear`` itself when it is too small
        to pay off or its shape does not fit the kernel."""
        if linear.in_features < self.min_in_features or not _fits(linear, self.scheme):
            return linear
        saved = self._by_module.get(path) if path else None
        if saved:
            self.restored += 1
            if self.scheme == "int8":
                return restore(Int8Linear, linear, saved, scratch=self.scratch, kernel=self.kernel)
            return restore(Int4Linear, linear, saved, group=INT4_GROUP)
        if self.scheme == "int8":
            replacement: nn.Module = Int8Linear(linear, self.scratch, self.kernel)
        else:
            replacement = Int4Linear(linear)
        release_pages(linear.weight, self.mapped)
        trim_heap()
        return replacement


def release_pages(tensor: torch.Tensor, mapped: list[tuple[int, int]] | None = None) -> None:
    """Drop the resident pages of a weight we will never read again.

    A bf16 checkpoint is loaded as a memory map of its safetensors file: reading a weight to
    quantize it pulls its pages in, and they would stay resident (and counted in RSS) until
    the whole file is unmapped.  ``madvise(MADV_DONTNEED)`` on the replaced weight's pages
    gives them back at once, so quantizing holds about one layer of bf16 weights at a time.
    Only done for memory that lies in a mapped ``.safetensors`` file (read-only, clean)."""
    import ctypes
    import mmap

    regions = safetensors_mappings() if mapped is None else mapped
    start = tensor.data_ptr()
    end = start + tensor.untyped_storage().nbytes()
    if not any(low <= start and end <= high for low, high in regions):
        return
    page = mmap.PAGESIZE
    aligned_start = (start + page - 1) // page * page
    aligned_end = end // page * page
    if aligned_end > aligned_start:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise(ctypes.c_void_p(aligned_start), ctypes.c_size_t(aligned_end - aligned_start), 4)  # MADV_DONTNEED


def safetensors_mappings() -> list[tuple[int, int]]:
    """Address ranges of this process's memory maps of .safetensors files (Linux)."""
    regions = []
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            for line in maps:
                fields = line.split()
                if len(fields) >= 6 and fields[-1].endswith(".safetensors"):
                    low, high = (int(x, 16) for x in fields[0].split("-"))
                    regions.append((low, high))
    except OSError:
        pass
    return regions


def _fits(linear: nn.Linear, scheme: str) -> bool:
    if scheme == "int4":
        return linear.in_features % INT4_GROUP == 0 and linear.out_features % 8 == 0
    return True
