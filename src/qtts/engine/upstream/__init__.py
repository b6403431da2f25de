"""The one door to qwen_tts's and transformers' internals: everything qtts replaces, wraps
or calls that is not their public API goes through this package, checked against the
pinned versions.

- ``imports``: importing qwen_tts quietly, the pinned versions and their check.
- ``patches``: the CPU fast path installed on a loaded model, each patch counted.
- ``calls``: upstream's inputs built its way, its ``generate``, the new-frames-only decode.
"""

from qtts.engine.upstream.imports import (
    ALLOW_UNTESTED_ENV,
    PATCHED_AGAINST,
    PINNED,
    check_versions,
    import_qwen_tts,
    import_seconds,
    installed_versions,
    torchaudio_status,
)
from qtts.engine.upstream.patches import (
    PatchReport,
    activation_dtype,
    fp32_where_bf16_is_emulated,
    install,
    speed_up_decoder,
    wrap_talker_generate,
)

__all__ = ["ALLOW_UNTESTED_ENV", "PATCHED_AGAINST", "PINNED", "PatchReport", "activation_dtype", "check_versions",
           "fp32_where_bf16_is_emulated", "import_qwen_tts", "import_seconds", "install", "installed_versions",
           "speed_up_decoder", "torchaudio_status", "wrap_talker_generate"]
