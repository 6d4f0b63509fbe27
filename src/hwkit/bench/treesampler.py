"""CPU time and memory of a whole process tree, sampled with psutil while it runs.

``resource.getrusage(RUSAGE_CHILDREN)`` counts only descendants that were waited for, and the fork
engine's submissions are children of multiprocessing's forkserver, which lives on. So the tree under
a root process is sampled every ``interval`` seconds: CPU is the sum over every process seen of its
last user + system time (a process's CPU after its last sample, at most ``interval`` of it, is
missed), and memory is PSS (proportional set size: pages shared after a fork are split between the
processes sharing them, so the preloaded libraries are not counted once per submission).

Memory is also tracked per *unit*: the subtree of each child of a unit parent. With
``units="children"`` the unit parent is the root (one ``otter run`` process and its kernel per
unit); with ``units="forkserver"`` it is the root's forkserver child (one forked submission
process and the processes it forks per unit).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import psutil

MB = 2**20
Key = tuple[int, float]  # (pid, create time): a pid reused by a new process is a new key


@dataclass
class TreeUsage:
    """What one sampled run used."""

    cpu_seconds: float  # user + system CPU of the tree while sampled (the sampler's own thread excluded)
    unit_peaks_mb: list[float]  # peak PSS of each unit's subtree, in the order units appeared
    peak_total_mb: float  # peak PSS of the whole tree (root included only if include_root)
    samples: int


class TreeSampler:
    """Context manager sampling the tree under ``root`` in a background thread."""

    def __init__(self, root: int, *, units: str = "children", include_root: bool = True, interval: float = 0.05):
        if units not in ("children", "forkserver"):
            raise ValueError(f"units must be 'children' or 'forkserver', not {units!r}")
        self.root = psutil.Process(root)
        self.units, self.include_root, self.interval = units, include_root, interval
        self._start_cpu: dict[Key, float] = {}
        self._cpu: dict[Key, float] = {}
        self._unit_peaks: dict[Key, float] = {}
        self._peak_total, self._samples, self._thread_cpu = 0.0, 0, 0.0
        self._forkserver: dict[Key, bool] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tree-sampler", daemon=True)

    def __enter__(self) -> "TreeSampler":
        self._sample()
        self._start_cpu = dict(self._cpu)  # only CPU spent from now on counts
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()
        self._thread_cpu = time.thread_time()

    def usage(self) -> TreeUsage:
        """What was measured between entering and leaving the context."""
        cpu = sum(t - self._start_cpu.get(k, 0.0) for k, t in self._cpu.items())
        root_key = (self.root.pid, self.root.create_time())
        if not self.include_root:
            cpu -= self._cpu.get(root_key, 0.0) - self._start_cpu.get(root_key, 0.0)
        else:
            cpu -= self._thread_cpu
        return TreeUsage(cpu, [p / MB for p in self._unit_peaks.values()], self._peak_total / MB, self._samples)

    def _is_forkserver(self, proc: psutil.Process, key: Key) -> bool:
        if key not in self._forkserver:
            try:
                self._forkserver[key] = "multiprocessing.forkserver" in " ".join(proc.cmdline())
            except psutil.Error:
                return False
        return self._forkserver[key]

    def _sample(self) -> None:
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        parent: dict[int, int] = {}
        pss: dict[int, float] = {}
        keys: dict[int, Key] = {}
        by_pid = {proc.pid: proc for proc in procs}
        for proc in procs:
            key = (proc.pid, proc.create_time())
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    parent[proc.pid] = proc.ppid()
            except psutil.Error:
                continue
            keys[proc.pid] = key
            self._cpu[key] = max(self._cpu.get(key, 0.0), times.user + times.system)
            try:
                pss[proc.pid] = float(proc.memory_full_info().pss)
            except psutil.Error:  # exited (or a zombie) since it was listed
                pss[proc.pid] = 0.0
        self._samples += 1
        if self.units == "children":
            unit_parents = {self.root.pid}
        else:
            unit_parents = {pid for pid, ppid in parent.items()
                            if ppid == self.root.pid and self._is_forkserver(by_pid[pid], keys[pid])}
        per_unit: dict[Key, float] = {}
        for pid in pss:
            node = pid
            while node in parent and parent[node] not in unit_parents and node != self.root.pid:
                node = parent[node]
            if node in parent and parent[node] in unit_parents and node in keys:
                per_unit[keys[node]] = per_unit.get(keys[node], 0.0) + pss[pid]
        for key, value in per_unit.items():
            self._unit_peaks[key] = max(self._unit_peaks.get(key, 0.0), value)
        total = sum(v for pid, v in pss.items() if self.include_root or pid != self.root.pid)
        self._peak_total = max(self._peak_total, total)
