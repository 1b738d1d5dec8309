"""Progress of a copy: a live status line on a terminal, plain log lines otherwise, or nothing.

Counters are updated from many copy threads; a terminal gets one line redrawn five times a second
(bytes, images, rate), a pipe or file gets one line per finished image, quiet mode prints nothing.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


class Progress:
    def __init__(self, total_images: int, *, stream: TextIO | None = None, quiet: bool = False,
                 live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.live = (not quiet) and (self.stream.isatty() if live is None else live)
        self.total_images = total_images
        self.images_done = 0
        self.images_present = 0
        self.images_failed = 0
        self.bytes = 0
        self.blobs = {"copied": 0, "mounted": 0, "present": 0}
        self.start = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "Progress":
        if self.live:
            self._thread = threading.Thread(target=self._render_loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
            self.stream.write("\r" + self.status_line() + "\n")
            self.stream.flush()

    def add_bytes(self, n: int) -> None:
        with self._lock:
            self.bytes += n

    def blob(self, outcome: str) -> None:
        with self._lock:
            self.blobs[outcome] = self.blobs.get(outcome, 0) + 1

    def rate(self) -> float:
        elapsed = max(1e-6, time.monotonic() - self.start)
        return self.bytes / elapsed

    def status_line(self) -> str:
        done = self.images_done + self.images_present + self.images_failed
        failed = f", {self.images_failed} failed" if self.images_failed else ""
        return (f"images {done}/{self.total_images} ({self.images_present} already present{failed})  "
                f"{human_bytes(self.bytes)}  {human_bytes(self.rate())}/s")

    def image_finished(self, source: str, destination: str, status: str, detail: str = "") -> None:
        with self._lock:
            if status == "copied":
                self.images_done += 1
            elif status == "present":
                self.images_present += 1
            else:
                self.images_failed += 1
        if self.quiet:
            return
        if not self.live:
            word = {"copied": "copied", "present": "skipped (already present)", "failed": "FAILED"}[status]
            self.stream.write(f"{word}: {source} -> {destination}{(': ' + detail) if detail else ''}\n")
            self.stream.flush()

    def message(self, text: str) -> None:
        if not self.quiet:
            self.stream.write(("\r\033[K" if self.live else "") + text + "\n")
            self.stream.flush()

    def _render_loop(self) -> None:
        while not self._stop.wait(0.2):
            self.stream.write("\r\033[K" + self.status_line())
            self.stream.flush()
