"""A private sshd on loopback for tests and benchmarks of SSH targets.

It lets root in with one key made for it, on a free port of 127.0.0.1, and writes a
known_hosts line for its host key; nothing outside its directory is touched (but
``/run/sshd``, which sshd insists on).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from smbsession.lab import free_port

SSHD = Path("/usr/sbin/sshd")


class LabSshd:
    """An sshd on 127.0.0.1 that lets root in with one key made for it.

    ``base`` (an empty directory) receives its host key, the client key
    (``client_key``), ``known_hosts`` and its configuration; :meth:`options` gives the
    asyncssh options that use exactly those.
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", ""]
        subprocess.run([*keygen, "-f", str(base / "host_key")], check=True)
        subprocess.run([*keygen, "-f", str(base / "client_key")], check=True)
        shutil.copyfile(base / "client_key.pub", base / "authorized_keys")
        host_pub = (base / "host_key.pub").read_text().split()
        (base / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        (base / "empty_known_hosts").write_text("")
        (base / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {base}/host_key\n"
            f"AuthorizedKeysFile {base}/authorized_keys\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            f"StrictModes no\nPidFile {base}/sshd.pid\nMaxStartups 200\nMaxSessions 200\n"
        )
        Path("/run/sshd").mkdir(exist_ok=True)
        self.proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(base / "sshd_config")],
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        self.proc.kill()
        raise RuntimeError(f"sshd did not start on port {self.port}")

    def options(self, known_hosts: str = "known_hosts") -> dict[str, object]:
        """asyncssh options trusting this sshd (``known_hosts`` names the file in
        ``base`` to trust) and offering only the client key."""
        return {"known_hosts": str(self.base / known_hosts),
                "client_keys": [str(self.base / "client_key")], "agent_path": None,
                "config": []}

    def stop(self) -> None:
        """Stop this sshd."""
        self.proc.terminate()
        self.proc.wait(10)


@contextlib.contextmanager
def running_sshd() -> Iterator[LabSshd]:
    """A :class:`LabSshd` in a directory of its own, stopped and removed at the end.

    Raises RuntimeError when openssh-server is not installed (``make test`` installs
    it): a test that needs it fails rather than being skipped."""
    if not SSHD.exists():
        raise RuntimeError("openssh-server is not installed (make test installs it)")
    base = Path(tempfile.mkdtemp(prefix="smbsession-sshd-"))
    try:
        server = LabSshd(base)
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def trusting_home(sshd: LabSshd, home: Path) -> dict[str, str]:
    """Make ``home`` a HOME whose ``~/.ssh`` trusts ``sshd`` and holds its client key, as
    OpenSSH's would; return the environment that uses it (no agent)."""
    dot = home / ".ssh"
    dot.mkdir(mode=0o700)
    shutil.copyfile(sshd.base / "known_hosts", dot / "known_hosts")
    shutil.copyfile(sshd.base / "client_key", dot / "id_ed25519")
    (dot / "id_ed25519").chmod(0o600)
    return {"HOME": str(home), "SSH_AUTH_SOCK": ""}
