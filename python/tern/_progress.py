"""Progress bars for long calls: tqdm when it is installed, a plain one on stderr otherwise."""

from __future__ import annotations

import sys
import time

# `show=None` (automatic) shows a bar only on a terminal, for more than one batch, once the work
# has taken this long: the rule the `tern` command follows.
AUTO_DELAY_S = 0.5


class _Plain:
    """A one-line bar on stderr: [#########           ] 30/100  12.5/s"""

    WIDTH = 30

    def __init__(self, total: int, desc: str, delay: float):
        self.total, self.desc, self.delay = total, desc, delay
        self.done, self.shown = 0, False
        self.start = time.monotonic()

    def update(self, n: int) -> None:
        self.done += n
        secs = time.monotonic() - self.start
        if secs < self.delay:
            return
        filled = self.WIDTH * self.done // max(self.total, 1)
        rate = self.done / secs if secs > 0 else 0.0
        sys.stderr.write(f"\r{self.desc}: [{'#' * filled}{' ' * (self.WIDTH - filled)}] "
                         f"{self.done}/{self.total}  {rate:.1f}/s ")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()
        self.shown = False


class _Null:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, show: bool | None, desc: str):
    """A bar with update(n) and close(). show: True always, False never, None automatic."""
    if show is False or (show is None and (total <= 1 or not _stderr_is_terminal())):
        return _Null()
    delay = AUTO_DELAY_S if show is None else 0.0
    try:
        from tqdm import tqdm
    except ImportError:
        return _Plain(total, desc, delay)
    return tqdm(total=total, desc=desc, unit="input", delay=delay, file=sys.stderr)


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
