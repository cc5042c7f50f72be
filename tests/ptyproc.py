"""cardctl in a real pseudo-terminal, for the tests of what a person at a terminal sees and types:
questions before irreversible actions, hidden PIN prompts, Ctrl-C.

``pty.fork`` makes the child a session leader with the terminal as its controlling terminal, so
``getpass`` opens /dev/tty as it does at a counter PC, ``isatty()`` is true, and a Ctrl-C byte
(``\\x03``) written to the terminal is turned by the line discipline into SIGINT.
"""

from __future__ import annotations

import os
import pty
import re
import select
import time
from dataclasses import dataclass, field

from realproc import TIMEOUT, cardctl_command

CTRL_C = "\x03"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass
class Terminal:
    """One cardctl process on a terminal: ``expect`` text, ``send`` keys, then ``finish``."""

    pid: int
    fd: int
    seen: str = ""
    code: int | None = field(default=None)

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        if not data:
            return False
        self.seen += _ANSI.sub("", data.decode("utf-8", "replace")).replace("\r\n", "\n")
        return True

    def expect(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            if time.monotonic() > deadline or not self._read(0.1):
                if text in self.seen:
                    return
                raise AssertionError(f"{text!r} never appeared on the terminal; it showed:\n{self.seen}")

    def send(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def finish(self) -> tuple[int, str]:
        deadline = time.monotonic() + TIMEOUT
        while self._read(0.1):
            if time.monotonic() > deadline:
                os.kill(self.pid, 9)
                raise AssertionError(f"cardctl did not finish; the terminal showed:\n{self.seen}")
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        self.code = os.waitstatus_to_exitcode(status)
        return self.code, self.seen


def at_terminal(env: dict, *args: str) -> Terminal:
    """``cardctl ARGS`` with a terminal as standard input, output and error."""
    env = {**env, "TERM": "dumb", "NO_COLOR": "1"}
    command = [*cardctl_command(), *args]
    pid, fd = pty.fork()
    if pid == 0:  # the child: nothing of pytest's may run here
        try:
            os.execvpe(command[0], command, env)
        finally:
            os._exit(127)
    return Terminal(pid, fd)
