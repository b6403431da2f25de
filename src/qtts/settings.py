"""All configuration in one place: CLI flag > ``QTTS_*`` environment > config file > default.

The config file is TOML at ``$QTTS_CONFIG`` or ``<home>/config.toml`` with the same keys as
the fields below (``model_id = "0.6b"``).  Nothing is read at import time: call
``Settings.resolve(...)`` in an entry point and pass the object down.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from qtts import precision
from qtts.errors import BadInput

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

DEFAULT_MODEL_ID = "Qwen/Qwen3-TTS-12Hz-1.7B-Base"
FALLBACK_MODEL_ID = "Qwen/Qwen3-TTS-12Hz-0.6B-Base"
PRECISIONS = precision.NAMES
ATTENTION = ("sdpa", "eager")
MAX_SEED = 2**32 - 1  # seeds are 0..MAX_SEED: what every random generator involved accepts


# The range of every numeric setting, checked for each source (flag, QTTS_* variable, config
# file, HTTP field) before the sources are merged, so that a bad value is refused with its
# source's name.  (low, high, low_open): low < value if low_open, else low <= value; every
# value must be finite.
LIMITS: dict[str, tuple[float, float, bool]] = {
    "cpu_threads": (0, 512, False),  # 0: one per core
    "memory_limit_bytes": (0, 2**50, False),  # 0: measure
    "timeout_s": (0, 7 * 86400, False),  # 0: none
    "split_max_chars": (20, 2000, False),
    "batch_size": (1, 16, False),
    "max_batch": (1, 64, False),
    "max_text_chars": (1, 10_000_000, False),
    "max_reference_s": (1, 600, False),
    "port": (1, 65535, False),
    "job_lease_s": (0, 86400, True),
    "job_max_attempts": (1, 100, False),
    "max_upload_bytes": (1, 2**34, False),
    "engine_idle_s": (0, 7 * 86400, True),
}


ZERO_MEANS = {"cpu_threads": "one per core", "memory_limit_bytes": "measure the RAM", "timeout_s": "no limit"}


def describe_limit(name: str) -> str:
    low, high, low_open = LIMITS[name]
    number = (lambda v: f"{v:g}") if isinstance(low, float) or isinstance(high, float) else str
    return f"more than {number(low)} and at most {number(high)}" if low_open else f"{number(low)}-{number(high)}"


def default_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "qtts"


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=default_home)
    model_id: str = DEFAULT_MODEL_ID
    # 'qtts serve' and 'qtts worker' also serve these (comma-separated; each loaded on first use).
    more_model_ids: str = ""
    # Loaded instead when the memory pre-check says the chosen model does not fit ("" = never).
    fallback_model_id: str = ""
    # int8: weight-only int8 talker and code predictor, bf16 elsewhere: the fastest path whose
    # logits stay within our fidelity bar (README); int4 is faster still but was not faithful
    # in our measurements; fp32 reproduces upstream's codes exactly.
    precision: str = "int8"
    decoder_precision: str = "fp32"  # bf16 decodes ~2.5x faster but was not faithful (SNR ~10 dB)
    # int8 matrix-vector products on qtts's native kernel for this CPU (AVX-512 VNNI, AVX2 or
    # aarch64 dot product) where it builds (engine.kernels), and with it the native decoder
    # steps; off = torch's int8 kernel and the Python layers everywhere.
    int8_kernel: bool = True
    attn_implementation: str = "sdpa"  # measured 13% faster than eager on CPU (issue #2)
    cpu_threads: int = 0  # 0 = torch's default (one per core)
    low_cpu_mem_usage: bool = True
    # Keep the quantized weights in <home>/weights after the first load (engine.weight_cache).
    weight_cache: bool = True
    memory_check: bool = True
    # Treat this many bytes as the available RAM, for all of a process's models (testing, or to
    # keep headroom); 0 = measure.
    memory_limit_bytes: int = 0
    offline: bool = False
    timeout_s: float = 0.0  # per request; 0 = none
    split_max_chars: int = 200
    # Chunks of one request generated together: 1.7B int8 throughput RTF 2.44 at 4 vs 5.46 at 1
    # (qtts bench), for ~2 GB more peak memory.  Streaming always generates one chunk at a time.
    batch_size: int = 4
    # A server's or worker's continuous batching: at most this many chunks (of any requests)
    # generated together, and as many jobs run at once (engine.batcher; qtts bench --concurrency).
    max_batch: int = 8
    max_text_chars: int = 20_000
    max_reference_s: float = 30.0
    language: str = "Auto"
    # Service
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str = ""
    queue_url: str = ""  # "" = embedded SQLite; redis://… or postgresql://… to share work across machines
    artifacts_dir: str = ""  # job audio; "" = <home>/jobs (use a shared path when distributed)
    job_lease_s: float = 30.0  # a job whose worker stops renewing this lease is run again
    job_max_attempts: int = 3  # runs of a job whose worker keeps dying; then it fails (worker_died)
    job_retention: str = "7d"  # finished jobs and their audio are deleted this long after (s, m, h, d; "0" = never)
    max_upload_bytes: int = 20 * 1024 * 1024
    server_url: str = ""  # where 'qtts queue' and 'qtts batch --via-queue' send work; "" = http://host:port
    embedded_worker: bool = True  # 'qtts serve' runs jobs itself
    cors_origins: str = ""  # comma-separated; "" = CORS off
    # The resident engine (qtts.resident): commands that load a model send their work to a
    # background qtts process of this user and home that keeps the models loaded; off = load
    # in the calling process every time (--no-engine, QTTS_ENGINE=off).
    engine: bool = True
    engine_idle_s: float = 600.0  # the resident engine exits after this long without a request

    @property
    def job_retention_s(self) -> float:
        """``job_retention`` in seconds (0 = keep forever)."""
        return parse_duration(self.job_retention, "job_retention")

    @property
    def served_model_ids(self) -> tuple[str, ...]:
        """The models a server or worker takes requests for; the first is the default."""
        extra = [m.strip() for m in self.more_model_ids.split(",") if m.strip()]
        return tuple(dict.fromkeys([self.model_id, *extra]))

    @property
    def voices_dir(self) -> Path:
        return self.home / "voices"

    @property
    def client_url(self) -> str:
        return (self.server_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def artifacts_path(self) -> Path:
        return Path(self.artifacts_dir).expanduser() if self.artifacts_dir else self.home / "jobs"

    @classmethod
    def resolve(
        cls,
        flags: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        config_file: Path | None = None,
    ) -> "Settings":
        """Merge the four sources; ``flags`` values of ``None`` mean "not given"."""
        environ = os.environ if environ is None else environ
        flags = {k: v for k, v in (flags or {}).items() if v is not None}
        env_values = {
            f.name: environ[f"QTTS_{f.name.upper()}"]
            for f in fields(cls)
            if f"QTTS_{f.name.upper()}" in environ
        }
        home = Path(flags.get("home") or env_values.get("home") or default_home()).expanduser()
        path = config_file or (Path(environ["QTTS_CONFIG"]) if environ.get("QTTS_CONFIG") else home / "config.toml")
        file_values = _read_config_file(path)

        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(file_values) - set(known))
        if unknown:
            raise BadInput(f"unknown setting(s) in {path}: {', '.join(unknown)}",
                           hint=f"valid keys: {', '.join(sorted(known))}")
        merged: dict[str, Any] = {}
        for values, source in ((file_values, f"{path}: "), (env_values, "QTTS_"), (flags, "--")):
            for name, value in values.items():
                if name in known and name != "home":
                    merged[name] = _coerce(name, known[name], value, _source_name(source, name))
        values = {**merged, "home": home}
        settings = cls(**values)
        settings.validate()
        return settings

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)

    def validate(self) -> None:
        if self.precision not in PRECISIONS:
            raise BadInput(f"unknown precision {self.precision!r}", hint=f"choose one of {', '.join(PRECISIONS)}")
        if self.decoder_precision not in ("fp32", "bf16"):
            raise BadInput(f"unknown decoder precision {self.decoder_precision!r}", hint="choose fp32 or bf16")
        if self.attn_implementation not in ATTENTION:
            raise BadInput(f"unknown attention implementation {self.attn_implementation!r}",
                           hint=f"choose one of {', '.join(ATTENTION)}")
        if self.split_max_chars < 20:
            raise BadInput("split_max_chars must be at least 20", hint="the CPU default is 200")
        if self.max_batch < 1:
            raise BadInput("max_batch must be at least 1", hint="QTTS_MAX_BATCH=1 generates one chunk at a time")
        if self.job_max_attempts < 1:
            raise BadInput("job_max_attempts must be at least 1", hint="the default is 3")
        self.job_retention_s  # noqa: B018 (validates the duration)
        if not 0 < self.engine_idle_s < float("inf"):
            raise BadInput(f"engine_idle_s must be a positive number of seconds, not {self.engine_idle_s}",
                           hint="e.g. QTTS_ENGINE_IDLE_S=600; QTTS_ENGINE=off runs without the resident engine")
        if self.cpu_threads < 0:
            raise BadInput("cpu_threads must be 0 (auto) or a positive number", hint="e.g. --cpu-threads 2")


def parse_duration(value: str, name: str = "duration") -> float:
    """'90' or '90s', '15m', '12h', '7d' -> seconds."""
    text = str(value).strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        seconds = -1
    if not seconds >= 0 or seconds == float("inf"):
        raise BadInput(f"{name} {value!r} is not a duration", hint="e.g. 3600, 90m, 12h or 7d (0 = never)")
    return seconds


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    if not path.is_file():
        raise BadInput(f"the config file {path} is not a file", hint="point QTTS_CONFIG at a TOML file, or remove it")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"config file {path} is not valid TOML: {exc}", hint="fix or remove the file") from exc


def _source_name(source: str, name: str) -> str:
    if source == "QTTS_":
        return f"QTTS_{name.upper()}"
    if source == "--":
        return f"--{name.replace('_', '-')}"
    return f"{source}{name}"


def check_number(name: str, value: float, source: str) -> None:
    """A numeric setting within ``LIMITS`` (and finite), or bad input naming its source."""
    if name not in LIMITS:
        return
    low, high, low_open = LIMITS[name]
    inside = math.isfinite(value) and (value > low if low_open else value >= low) and value <= high
    if not inside:
        zero = f" (0: {ZERO_MEANS[name]})" if name in ZERO_MEANS else ""
        raise BadInput(f"{source}={value}: {name} must be {describe_limit(name)}{zero}", hint=f"fix {source}")


def _coerce(name: str, spec: dataclasses.Field, value: Any, source: str | None = None) -> Any:
    source = source or name
    kind = spec.type if isinstance(spec.type, str) else getattr(spec.type, "__name__", "str")
    if kind in ("int", "float") and not isinstance(value, bool):
        number = _number(name, kind, value, source)
        check_number(name, number, source)
        return number
    try:
        if kind == "Path":
            return Path(value).expanduser()
        if kind == "bool":
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                return lowered in ("1", "true", "yes", "on")
            return bool(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"setting {name} has an invalid value {value!r} ({source})",
                       hint=f"expected a {kind} (flag --{name.replace('_', '-')} or QTTS_{name.upper()})") from exc


def _number(name: str, kind: str, value: Any, source: str) -> float:
    try:
        number = float(value) if kind == "float" else int(str(value).strip()) if isinstance(value, str) else value
        if kind == "int" and (not isinstance(number, int) or isinstance(number, bool)):
            if isinstance(number, float) and number.is_integer():
                number = int(number)
            else:
                raise ValueError(value)
        return number
    except (TypeError, ValueError, OverflowError) as exc:
        raise BadInput(f"setting {name} has an invalid value {value!r} ({source})",
                       hint=f"expected a whole number ({kind}) for {source}" if kind == "int" else
                       f"expected a number for {source}") from exc
