"""Run a function inside another process's network namespace, leaving ours untouched.

A socket belongs to the network namespace of the thread that created it, and the kernel's
``sock_diag`` lists only the sockets of that namespace: to see the TCP connections of an
smbd in a container (or in ``ip netns``), the netlink socket must be opened inside the
smbd's namespace. :class:`NetNamespace` does that in a short-lived thread: the thread
enters ``/proc/<pid>/ns/net`` with ``setns(2)``, runs the function and ends, so the
calling thread and the rest of the process stay where they were (a network namespace is a
per-thread attribute). When the target's namespace is the caller's own, the function runs
directly.

Entering another namespace needs ``CAP_SYS_ADMIN`` (root); without it
:class:`NamespaceError` says which namespace could not be entered and why. Standard
library only (``os.setns`` on Python 3.12+, else libc's ``setns`` through ctypes).
"""

from __future__ import annotations

import errno
import os

from .errors import NamespaceError

TYPE_CHECKING = False  # a listing in its own namespace imports neither typing nor threads
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    T = TypeVar("T")

__all__ = ["NamespaceError", "NetNamespace", "call_in_netns", "same_netns"]

#: ``CLONE_NEWNET`` from ``linux/sched.h``: the namespace type ``setns`` must match.
CLONE_NEWNET = 0x40000000


def _setns(fd: int, nstype: int) -> None:
    setns = getattr(os, "setns", None)
    if setns is not None:  # Python 3.12+
        setns(fd, nstype)
        return
    import ctypes
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.setns(fd, nstype) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _ns_id(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino)


def same_netns(pid: int) -> bool:
    """True when process ``pid`` lives in the calling thread's network namespace.

    Raises :class:`NamespaceError` when ``pid``'s namespace cannot be looked at."""
    path = f"/proc/{pid}/ns/net"
    try:
        theirs = _ns_id(path)
    except OSError as exc:
        raise NamespaceError(pid, path, exc.strerror or str(exc), exc.errno) from None
    return theirs == _ns_id("/proc/thread-self/ns/net")


class NetNamespace:
    """The network namespace of process ``pid`` (``/proc/<pid>/ns/net``)."""

    def __init__(self, pid: int) -> None:
        self.pid = int(pid)
        self.path = f"/proc/{self.pid}/ns/net"

    def __repr__(self) -> str:
        return f"NetNamespace(pid={self.pid})"

    def label(self) -> str:
        """The namespace as the kernel names it (``net:[4026532301]``), or the path."""
        try:
            return os.readlink(self.path)
        except OSError:
            return self.path

    def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Return ``func(*args, **kwargs)`` run inside this namespace.

        Exceptions of ``func`` propagate unchanged. Raises :class:`NamespaceError` when the
        namespace cannot be entered (the process is gone, or the caller lacks
        ``CAP_SYS_ADMIN``: not root, or a container without that capability).
        """
        if same_netns(self.pid):
            return func(*args, **kwargs)
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise NamespaceError(self.pid, self.path, exc.strerror or str(exc),
                                 exc.errno) from None
        import threading

        outcome: dict[str, Any] = {}

        def worker() -> None:
            try:
                _setns(fd, CLONE_NEWNET)
            except OSError as exc:
                outcome["enter"] = exc
                return
            try:
                outcome["value"] = func(*args, **kwargs)
            except BaseException as exc:  # handed to the caller's thread
                outcome["error"] = exc

        try:
            thread = threading.Thread(target=worker, name=f"netns-{self.pid}", daemon=True)
            thread.start()
            thread.join()
        finally:
            os.close(fd)
        if "enter" in outcome:
            failed: OSError = outcome["enter"]
            reason = failed.strerror or str(failed)
            if failed.errno == errno.EPERM:
                reason += " (entering a namespace needs root: CAP_SYS_ADMIN)"
            raise NamespaceError(self.pid, self.path, reason, failed.errno)
        if "error" in outcome:
            raise outcome["error"]
        value: T = outcome["value"]
        return value


def call_in_netns(pid: int, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Shorthand for ``NetNamespace(pid).call(func, *args, **kwargs)``."""
    return NetNamespace(pid).call(func, *args, **kwargs)
