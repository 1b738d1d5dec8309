"""Progress of a copy: a live status line on a terminal, plain log lines otherwise, or nothing.

Counters are updated from many copy threads. A terminal gets one line redrawn five times a second
(images, bytes, rate, ETA, the images in flight); a pipe or file gets a line at every tenth of the
images. With `verbose` (-v) each finished image gets its own line too; a failed image always does.
Quiet mode (-q) prints nothing here: the caller prints errors and the final summary.
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
                 live: bool | None = None, verbose: int = 0) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.verbose = verbose
        self.in_flight: dict[str, None] = {}  # images started and not finished, in start order
        self._reported_tenth = 0
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

    def __enter__(self) -> Progress:
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

    def finished(self) -> int:
        return self.images_done + self.images_present + self.images_failed

    def eta(self) -> float | None:
        """Seconds left, from the pace of the images finished so far (None before the first)."""
        done = self.finished()
        if not done or done >= self.total_images:
            return None
        return (time.monotonic() - self.start) / done * (self.total_images - done)

    def status_line(self) -> str:
        done = self.finished()
        failed = f", {self.images_failed} failed" if self.images_failed else ""
        text = (f"images {done}/{self.total_images} ({self.images_present} already present{failed})  "
                f"{human_bytes(self.bytes)}  {human_bytes(self.rate())}/s")
        eta = self.eta()
        if eta is not None:
            text += f"  ETA {_duration(eta)}"
        with self._lock:
            flying = list(self.in_flight)
        if flying:
            text += f"  in flight {len(flying)}: {_short(flying[0])}" + (" …" if len(flying) > 1 else "")
        return text

    def image_started(self, source: str) -> None:
        with self._lock:
            self.in_flight[source] = None

    def image_finished(self, source: str, destination: str, status: str, detail: str = "") -> None:
        with self._lock:
            self.in_flight.pop(source, None)
            if status == "copied":
                self.images_done += 1
            elif status == "present":
                self.images_present += 1
            else:
                self.images_failed += 1
            tenth = self.finished() * 10 // max(1, self.total_images)
            milestone = tenth > self._reported_tenth
            self._reported_tenth = max(tenth, self._reported_tenth)
        if self.quiet:
            return
        if self.verbose or status == "failed":
            word = {"copied": "copied", "present": "skipped (already present)", "failed": "FAILED"}[status]
            self.message(f"{word}: {source} -> {destination}{(': ' + detail) if detail else ''}")
        if milestone and not self.live and not self.verbose:
            self.message(self.status_line())

    def message(self, text: str) -> None:
        if not self.quiet:
            self.stream.write(("\r\033[K" if self.live else "") + text + "\n")
            self.stream.flush()

    def _render_loop(self) -> None:
        while not self._stop.wait(0.2):
            self.stream.write("\r\033[K" + self.status_line())
            self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _short(reference: str, width: int = 48) -> str:
    """The tail of a long reference (the repository name is what a person recognises)."""
    name = reference.rsplit("@", 1)[0]
    return name if len(name) <= width else "…" + name[-(width - 1):]
