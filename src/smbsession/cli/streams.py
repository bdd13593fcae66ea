"""PowerShell's message streams on stderr: errors, warnings, verbose and debug lines.

Output (the sessions) goes to stdout; everything a person should read about the run goes
to stderr, each line tagged as PowerShell tags it (``WARNING:``, ``VERBOSE:``, ``DEBUG:``;
an error starts with the command's name). ``-ErrorAction`` decides what a non-terminating
error does (:data:`.params.ERROR_ACTIONS`).
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing costs a listing start-up time
if TYPE_CHECKING:
    from typing import TextIO


class Streams:
    """The stderr streams of one command run."""

    def __init__(
        self,
        command: str,
        verbose: bool = False,
        debug: bool = False,
        error_action: str = "Continue",
        out: TextIO | None = None,
        flush_first: TextIO | None = None,
    ) -> None:
        """``out`` is where the messages go (stderr); ``flush_first`` is flushed before
        each message (stdout), so that a message follows the output printed before it."""
        self.command = command
        self.show_verbose = verbose
        self.show_debug = debug
        self.error_action = error_action
        self.out = out or sys.stderr
        self.flush_first = flush_first
        #: How many non-terminating errors and warnings were reported (shown or not).
        self.errors = 0
        self.warnings = 0

    def _write(self, text: str) -> None:
        if self.flush_first is not None:
            self.flush_first.flush()
        self.out.write(text + "\n")
        self.out.flush()

    def error(self, message: str) -> bool:
        """Report a non-terminating error; return True when ``-ErrorAction Stop`` says
        the command must stop now."""
        self.errors += 1
        if self.error_action not in ("SilentlyContinue", "Ignore"):
            self._write(f"{self.command}: {message}")
        return self.error_action == "Stop"

    def warning(self, message: str) -> None:
        """Report something that was skipped while the rest was delivered."""
        self.warnings += 1
        self._write(f"WARNING: {message}")

    def verbose(self, message: str) -> None:
        """Say what the command does (shown with ``-Verbose``)."""
        if self.show_verbose:
            self._write(f"VERBOSE: {message}")

    def debug(self, message: str) -> None:
        """Say how the command bound its input (shown with ``-Debug``)."""
        if self.show_debug:
            self._write(f"DEBUG: {message}")
