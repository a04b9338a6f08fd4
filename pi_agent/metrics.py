"""Process load as the seed printed it per frame: PID, memory %, CPU %."""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class ProcessUsage:
    pid: int
    memory_percent: float  # resident memory as % of physical RAM
    rss_mb: float
    cpu_percent: float  # since the previous sample; 100 = one full core


class ProcessMetrics:
    def __init__(self, pid: int | None = None) -> None:
        self._process = psutil.Process(pid or os.getpid())
        self._process.cpu_percent(None)  # primes the counter: the first real sample then covers a real interval

    def sample(self) -> ProcessUsage:
        with self._process.oneshot():
            return ProcessUsage(
                pid=self._process.pid,
                memory_percent=self._process.memory_percent(),
                rss_mb=self._process.memory_info().rss / 2**20,
                cpu_percent=self._process.cpu_percent(None),
            )
