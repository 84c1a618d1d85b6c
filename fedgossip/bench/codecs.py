"""Encode+decode throughput of every compressor, beside a plain memory copy of the same buffer.

Everything runs on one thread (``torch.set_num_threads(1)``; the numba kernels
are single-threaded by design), because during training a rank's other cores
belong to its local steps. The reference is ``np.copyto`` of the same float32
vector into a preallocated buffer, timed in the same run: a codec reads its
input at least once and writes something, so a copy is the speed of light for
it on this machine, and the figure that matters is the ratio to it, not the GB/s.

Targets (fraction of the copy's GB/s) are checked at every size, but they are
meant against a memory-bound copy, that is the large size (10M values, 40 MB):
at 1M values (4 MB) the copy runs from cache and is several times faster, so
the same codec reaches a smaller fraction of it there.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from fedgossip.compress.base import COMPRESSORS, Compressor
from fedgossip.errors import ConfigError, FedGossipError
from fedgossip.specs import bind, format_spec, parse_spec

__all__ = ["DEFAULT_COMPRESSORS", "DEFAULT_SIZES", "TARGETS", "NAIVE", "bench_codecs"]

DEFAULT_COMPRESSORS = (
    "none",
    "fp16",
    "bf16",
    "qsgd:bits=9",
    "qsgd:bits=5",
    "uniform:bits=8,rounding=nearest",
    "uniform:bits=8,rounding=stochastic",
    "uniform:bits=4",
    "sign",
    "topk:ratio=0.01",
    "randk:ratio=0.01",
)
DEFAULT_SIZES = (1_000_000, 10_000_000)

# Minimum encode+decode GB/s as a fraction of the copy's, for the configurations the fused kernels
# were written for. Matched on the canonical spec, so ``uniform:bits=8`` (nearest is its default)
# has the target too, while ``uniform:bits=8,block=256`` has none.
TARGETS = {
    "uniform:bits=8,rounding=nearest": 0.25,
    "sign": 0.25,
    "qsgd:bits=9": 0.10,
    "uniform:bits=8,rounding=stochastic": 0.10,
}

NAIVE = "torch-naive uniform-8"
"""Name of the reference row: per-block 8-bit min–max quantization written as plain torch ops."""

_NAIVE_BLOCK = 1024

Progress = Callable[[str], None]
"""Called with a short description before each measurement starts."""


def bench_codecs(
    specs: Sequence[str] = DEFAULT_COMPRESSORS,
    sizes: Sequence[int] = DEFAULT_SIZES,
    repeats: int = 5,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Time encode and decode of every compressor in ``specs`` on ``sizes`` float32 values.

    Each figure is the best of ``repeats`` runs after one untimed warm-up (the
    first call compiles the numba kernels). Encoding uses a distinct key per
    repeat; decoding writes into a preallocated tensor, as the gossip loop does.

    Parameters
    ----------
    specs
        Compressor specs such as ``uniform:bits=8``; all are built before anything
        is timed, so a bad spec fails at once (every bad spec named in one error).
    sizes
        Vector lengths; one standard normal vector per size, seeded by ``seed``.
    repeats
        Timed runs per figure; the minimum is kept (the least disturbed run).
    progress
        Optional callback told what is about to be measured (the CLI prints it).

    Returns
    -------
    dict
        ``copy``: the reference per size (``size``, ``seconds``, ``gbps``).
        ``rows``: one per compressor and size, then the naive torch row of that
        size, each with ``encode_s``, ``decode_s``, ``gbps`` (4·size bytes over
        their sum), ``copy_gbps``, ``ratio_to_copy``, ``payload_bytes`` (checked
        against ``nbytes``), ``compression_ratio`` (4·size / payload bytes),
        ``rel_error`` (‖decoded − x‖ / ‖x‖), ``target_ratio_to_copy`` and
        ``target_met`` (``None`` where no target applies).
        ``machine``: CPU model and library versions; ``single_threaded``.
    """
    _check(sizes, repeats)
    compressors = _build(specs)
    notify = progress or (lambda _description: None)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # restored below: the caller's torch keeps its own setting
    try:
        copies, rows = [], []
        for size in sizes:
            x = torch.from_numpy(np.random.default_rng([seed, size]).standard_normal(size, dtype=np.float32))
            notify(f"copy, {size:,} values")
            copy = _time_copy(x.numpy(), repeats)
            copies.append(copy)
            # One key for the warm-up and one per repeat, so no two timed encodes draw the same numbers.
            keys = np.random.default_rng([seed, size, 1]).integers(2**63, size=repeats + 1, dtype=np.uint64)
            for spec, compressor in compressors:
                notify(f"{spec}, {size:,} values")
                rows.append(_time_compressor(spec, compressor, x, keys, repeats, copy))
            notify(f"{NAIVE}, {size:,} values")
            rows.append(_time_naive(x, repeats, copy))
        measured_threads = torch.get_num_threads()  # 1 unless something reset it while we ran
    finally:
        torch.set_num_threads(threads)
    return {
        "benchmark": "codecs",
        "unit": "GB/s of float32 input (4·n bytes) through encode then decode",
        "sizes": list(sizes),
        "repeats": repeats,
        "seed": seed,
        "threads": measured_threads,
        "single_threaded": measured_threads == 1,
        "reference": "np.copyto into a preallocated buffer",
        "copy": copies,
        "targets": {
            "ratio_to_copy": dict(TARGETS),
            "meant_at": "the largest size, where the copy is memory-bound; smaller sizes copy from cache",
        },
        "rows": rows,
        "machine": machine_info(),
    }


def machine_info() -> dict[str, Any]:
    """Return the CPU and the library versions the figures depend on."""
    return {
        "cpu": _cpu_model(),
        "processor": platform.processor(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "numba": _version("numba"),
    }


def _check(sizes: Sequence[int], repeats: int) -> None:
    problems = [f"size {size!r} is not a positive integer" for size in sizes if not _positive_int(size)]
    if not sizes:
        problems.append("no sizes given")
    if not _positive_int(repeats):
        problems.append(f"repeats must be at least 1, got {repeats!r}")
    if problems:
        raise ConfigError("; ".join(problems))


def _positive_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0


def _build(specs: Sequence[str]) -> list[tuple[str, Compressor]]:
    """Build every compressor, collecting every bad spec into one error."""
    built, problems = [], []
    for spec in specs:
        try:
            built.append((spec, COMPRESSORS.create(spec)))
        except FedGossipError as exc:
            problems.append(str(exc))
    if not specs:
        problems.append("no compressors given")
    if problems:
        raise ConfigError("; ".join(problems))
    return built


def _time_copy(x: np.ndarray, repeats: int) -> dict[str, Any]:
    destination = np.empty_like(x)
    np.copyto(destination, x)  # untimed: the first write faults the pages in
    seconds, _ = _best_of(repeats, lambda _repeat: np.copyto(destination, x))
    return {"size": x.size, "seconds": seconds, "gbps": _gbps(x.size, seconds)}


def _time_compressor(
    spec: str,
    compressor: Compressor,
    x: torch.Tensor,
    keys: np.ndarray,
    repeats: int,
    copy: dict[str, Any],
) -> dict[str, Any]:
    size = x.numel()
    out = torch.empty(size, dtype=torch.float32)
    warm = compressor.encode(x, int(keys[0]))  # untimed: the first call compiles the kernels
    payload, expected = int(warm.payload.nbytes), compressor.nbytes(size)
    if payload != expected:  # a broken compressor, not a user error: keep the traceback
        raise RuntimeError(f"{spec} made {payload} payload bytes for {size:,} values; nbytes says {expected}")
    compressor.decode(warm, out=out)
    encode_s, packet = _best_of(repeats, lambda repeat: compressor.encode(x, int(keys[repeat + 1])))
    decode_s, _ = _best_of(repeats, lambda _repeat: compressor.decode(packet, out=out))
    error = _relative_error(out, x)
    return _row(spec, compressor.spec, size, encode_s, decode_s, payload, error, copy, _target(compressor))


def _time_naive(x: torch.Tensor, repeats: int, copy: dict[str, Any]) -> dict[str, Any]:
    size = x.numel()
    out = torch.empty(size, dtype=torch.float32)
    _naive_decode(_naive_encode(x), out)  # untimed, as for the compressors
    encode_s, encoded = _best_of(repeats, lambda _repeat: _naive_encode(x))
    decode_s, _ = _best_of(repeats, lambda _repeat: _naive_decode(encoded, out))
    payload = sum(part.numel() * part.element_size() for part in encoded)
    return _row(NAIVE, NAIVE, size, encode_s, decode_s, payload, _relative_error(out, x), copy, None)


def _row(
    spec: str,
    canonical: str,
    size: int,
    encode_s: float,
    decode_s: float,
    payload: int,
    error: float,
    copy: dict[str, Any],
    target: float | None,
) -> dict[str, Any]:
    gbps = _gbps(size, encode_s + decode_s)
    ratio = gbps / copy["gbps"]
    return {
        "compressor": spec,
        "canonical": canonical,
        "size": size,
        "encode_s": encode_s,
        "decode_s": decode_s,
        "encode_gbps": _gbps(size, encode_s),
        "decode_gbps": _gbps(size, decode_s),
        "gbps": gbps,
        "copy_gbps": copy["gbps"],
        "ratio_to_copy": ratio,
        "payload_bytes": payload,
        "compression_ratio": 4 * size / payload,
        "rel_error": error,
        "target_ratio_to_copy": target,
        "target_met": None if target is None else ratio >= target,
    }


def _target(compressor: Compressor) -> float | None:
    """Return the target that applies to ``compressor``'s canonical spec, if any."""
    for spec, fraction in TARGETS.items():
        parsed = parse_spec(spec)
        if parsed.name == compressor.name:
            canonical = format_spec(parsed.name, bind(parsed, type(compressor).params))
            if canonical == compressor.spec:
                return fraction
    return None


def _naive_encode(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Quantize per block of 1024 to 8 bits between the block's min and max, one torch op per pass.

    The reference the fused kernels are compared with: each op reads (and most
    write) the whole vector, where a fused kernel reads it once. A last partial
    block is quantized on its own, like the kernels do, rather than padded.
    """
    full = x.numel() // _NAIVE_BLOCK * _NAIVE_BLOCK
    parts = [x[:full].view(-1, _NAIVE_BLOCK)] if full else []
    if full < x.numel():
        parts.append(x[full:].view(1, -1))
    codes, lows, scales = [], [], []
    for blocks in parts:
        low = blocks.amin(dim=1, keepdim=True)
        scale = (blocks.amax(dim=1, keepdim=True) - low) / 255
        scale.masked_fill_(scale == 0, 1.0)  # a constant block: any scale decodes it exactly
        shifted = blocks.sub(low)
        codes.append(shifted.div_(scale).round_().to(torch.uint8).view(-1))
        lows.append(low.view(-1))
        scales.append(scale.view(-1))
    return torch.cat(codes), torch.cat(lows), torch.cat(scales)


def _naive_decode(encoded: tuple[torch.Tensor, ...], out: torch.Tensor) -> torch.Tensor:
    """Dequantize ``_naive_encode``'s output into ``out``: to float, multiply, add."""
    codes, lows, scales = encoded
    full = codes.numel() // _NAIVE_BLOCK * _NAIVE_BLOCK
    blocks = full // _NAIVE_BLOCK
    spans = [(0, full, _NAIVE_BLOCK, slice(0, blocks))] if full else []
    if full < codes.numel():
        spans.append((full, codes.numel(), codes.numel() - full, slice(blocks, blocks + 1)))
    for start, stop, width, rows in spans:
        values = codes[start:stop].view(-1, width).to(torch.float32).mul_(scales[rows].view(-1, 1))
        torch.add(values, lows[rows].view(-1, 1), out=out[start:stop].view(-1, width))
    return out


def _best_of(repeats: int, call: Callable[[int], Any]) -> tuple[float, Any]:
    """Return the shortest time of ``call(repeat)`` over ``repeats`` runs, and what its last run returned."""
    best, kept = float("inf"), None
    for repeat in range(repeats):
        start = time.perf_counter()
        result = call(repeat)
        best = min(best, time.perf_counter() - start)
        # ``kept`` still holds the previous result while the clock runs, so freeing a large
        # payload is never timed as part of encoding the next one.
        kept = result
    return best, kept


def _gbps(size: int, seconds: float) -> float:
    return 4 * size / seconds / 1e9


def _relative_error(decoded: torch.Tensor, x: torch.Tensor) -> float:
    """Return ‖decoded − x‖ / ‖x‖, accumulated in float64 so 10M terms do not lose digits."""
    reference = x.numpy().astype(np.float64)
    return float(np.linalg.norm(decoded.numpy().astype(np.float64) - reference) / np.linalg.norm(reference))


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux, or /proc unreadable: platform.processor() is all there is
    return platform.processor() or None


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None
