"""Which Samba release wrote the databases: the version of the running smbd.

The smbXsrv record layouts change between Samba releases, so the reader must know the
release of the smbd that writes them. We ask that very binary (``/proc/<pid>/exe``,
inside its own root when smbd runs in a chroot) for ``--version`` once, and remember the
answer per binary (device, inode, mtime) in the user's cache directory, so that later
listings spend no process start on it. The cache is a text file, one ``key version``
line per binary.
"""

from __future__ import annotations

import os

from .server import foreign_root


def _cache_path() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "smbsession", "smbd-versions")


def _read_cache() -> dict[str, str]:
    try:
        with open(_cache_path(), encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, ValueError):
        return {}
    cache = {}
    for line in text.splitlines():
        key, _, version = line.partition(" ")
        if key and version and " " not in version:
            cache[key] = version
    return cache


def _write_cache(cache: dict[str, str]) -> None:
    path = _cache_path()
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.writelines(f"{key} {version}\n" for key, version in cache.items())
        os.replace(tmp, path)
    except OSError:
        pass  # a cache we cannot write only costs the next listing a process start


def _ask(pid: int) -> str | None:
    import subprocess

    exe = os.readlink(f"/proc/{pid}/exe")
    root = foreign_root(pid)
    if root is None:
        cmd = [exe, "--version"]
    else:
        # /proc/<pid>/exe names the binary as we see it; inside its root it is shorter.
        prefix = os.readlink(root).rstrip("/")
        inside = exe[len(prefix):] if prefix and exe.startswith(prefix + "/") else exe
        cmd = ["chroot", root, inside, "--version"]
    import re

    out = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False).stdout
    m = re.search(r"Version\s+(\d+\.\d+\.\d+\S*)", out)
    return m.group(1) if m else None


def smbd_version(pid: int) -> str | None:
    """Return the Samba version of the running smbd ``pid`` (``"4.17.12-Debian"``).

    Returns None when it cannot be told (the process is gone, or its binary does not
    answer ``--version``).
    """
    try:
        st = os.stat(f"/proc/{pid}/exe")
    except OSError:
        return None
    key = f"{st.st_dev}:{st.st_ino}:{st.st_mtime_ns}"
    cache = _read_cache()
    if key in cache:
        return cache[key]
    import subprocess

    try:
        version = _ask(pid)
    except (OSError, subprocess.SubprocessError):
        return None
    if version:
        cache[key] = version
        _write_cache(cache)
    return version
