"""Background jobs (``-AsJob``): a command that runs on after the shell that started it.

A job is a row in a SQLite database in the user's state directory
(``$XDG_STATE_HOME/smbsession/jobs.sqlite``; for root ``/var/lib/smbsession/jobs.sqlite``),
written in WAL mode so a crash leaves it readable. Starting a job stores its command line
and starts a detached process (its own session, no terminal) that runs the command and
stores its output (NDJSON rows), its error lines and its exit code. Jobs stay until
removed. Only command lines are stored: smbsession never takes a password on the command
line, so none can reach the store.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..errors import InvalidParameter, SmbSessionError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    command TEXT NOT NULL,
    argv TEXT NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    finished REAL,
    pid INTEGER,
    output TEXT,
    errors TEXT,
    exit_code INTEGER,
    received INTEGER NOT NULL DEFAULT 0
)
"""


def store_path() -> Path:
    """Where the jobs live (see the module's description)."""
    if os.environ.get("XDG_STATE_HOME"):
        return Path(os.environ["XDG_STATE_HOME"]) / "smbsession" / "jobs.sqlite"
    if os.geteuid() == 0:
        return Path("/var/lib/smbsession/jobs.sqlite")
    return Path.home() / ".local" / "state" / "smbsession" / "jobs.sqlite"


@contextlib.contextmanager
def _db() -> Iterator[sqlite3.Connection]:
    path = store_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(_SCHEMA)
        conn.row_factory = sqlite3.Row
        with conn:
            yield conn
    finally:
        conn.close()
    os.chmod(path, 0o600)


def start(command: str, argv: Sequence[str], password: str | None = None) -> dict:
    """Store a job for ``argv`` (a Get-SmbSession command line without -AsJob), start it
    in the background, and return its row. ``password`` (for smb:// targets) reaches the
    job through a pipe, never the store, its argv or its environment."""
    with _db() as db:
        cur = db.execute("INSERT INTO jobs (command, argv, state, created) VALUES (?, ?, ?, ?)",
                         (command, json.dumps(list(argv)), "Running", time.time()))
        job_id = int(cur.lastrowid or 0)
    proc = subprocess.Popen(
        [sys.executable, "-m", "smbsession.cli.jobs", str(job_id)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    with contextlib.suppress(BrokenPipeError), proc.stdin as pipe:  # type: ignore[union-attr]
        pipe.write((password or "").encode())
    with _db() as db:
        db.execute("UPDATE jobs SET pid = ? WHERE id = ?", (proc.pid, job_id))
    return get(job_id)


def get(job_id: int) -> dict:
    """The job's row as a dict; :class:`InvalidParameter` when there is no such job."""
    with _db() as db:
        row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise InvalidParameter(f"-Id: there is no job {job_id} (smbsession job list shows them)")
    return _refresh(dict(row))


def _refresh(row: dict) -> dict:
    """A job whose process died without finishing is Failed."""
    if row["state"] == "Running" and row["pid"] and not os.path.exists(f"/proc/{row['pid']}"):
        time.sleep(0.2)  # it may be writing its result right now
        with _db() as db:
            fresh = dict(db.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone())
            if fresh["state"] == "Running":
                db.execute("UPDATE jobs SET state = 'Failed', finished = ?, errors = ? "
                           "WHERE id = ?", (time.time(), json.dumps(["the job's process died"]),
                                            row["id"]))
                fresh["state"] = "Failed"
        return fresh
    return row


def list_jobs() -> list[dict]:
    """Every stored job, oldest first."""
    with _db() as db:
        rows = [dict(r) for r in db.execute("SELECT * FROM jobs ORDER BY id")]
    return [_refresh(r) for r in rows]


def wait(job_id: int, timeout: float = 3600.0) -> dict:
    """Wait until the job is no longer Running (at most ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    row = get(job_id)
    while row["state"] == "Running" and time.monotonic() < deadline:
        time.sleep(0.1)
        row = get(job_id)
    return row


def receive(job_id: int) -> tuple[list[dict], list[str], dict]:
    """The job's rows and error lines (and its row); marks its data as received."""
    row = get(job_id)
    rows = [json.loads(line) for line in (row["output"] or "").splitlines() if line.strip()]
    with _db() as db:
        db.execute("UPDATE jobs SET received = 1 WHERE id = ?", (job_id,))
    return rows, json.loads(row["errors"] or "[]"), row


def remove(job_id: int) -> None:
    """Delete a job and its results (a running job is stopped first)."""
    row = get(job_id)
    if row["state"] == "Running" and row["pid"]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(row["pid"], 15)
    with _db() as db:
        db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))


def run(job_id: int) -> int:
    """The job's own process: run the stored command, store what it printed."""
    from .get import run_get

    row = get(job_id)
    argv = [*json.loads(row["argv"]), "-Format", "NDJson"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = run_get(argv, "Get-SmbSession", in_job=True)
        except Exception as exc:  # stored as the job's error: the job must end Failed, not hang
            from .errors import exit_code, message

            if isinstance(exc, SmbSessionError):
                print(message(exc, "Get-SmbSession"), file=sys.stderr)
            else:
                print(f"Get-SmbSession: {type(exc).__name__}: {exc}", file=sys.stderr)
            code = exit_code(exc)
    state = "Completed" if code == 0 else "Failed"
    with _db() as db:
        db.execute("UPDATE jobs SET state = ?, finished = ?, output = ?, errors = ?, "
                   "exit_code = ? WHERE id = ?",
                   (state, time.time(), out.getvalue(),
                    json.dumps(err.getvalue().splitlines()), code, job_id))
    return 0


def table(rows: Sequence[dict]) -> str:
    """The jobs as PowerShell prints them: Id, Name, State, HasMoreData, Command."""
    lines = [f"{'Id':<6}{'Name':<12}{'State':<12}{'HasMoreData':<13}Command",
             f"{'--':<6}{'----':<12}{'-----':<12}{'-----------':<13}-------"]
    for r in rows:
        more = "True" if r["state"] != "Running" and r["output"] and not r["received"] else (
            "True" if r["state"] == "Running" else "False")
        lines.append(f"{r['id']:<6}{'Job' + str(r['id']):<12}{r['state']:<12}{more:<13}"
                     f"{r['command']}")
    return "\n".join(lines) + "\n"


def _take_password() -> None:
    """Read the password :func:`start` sent on stdin into this process's environment
    (where :mod:`smbsession.cli.password` looks; /proc shows only the environment a
    process started with), then make stdin empty: the command has no pipeline input."""
    secret = sys.stdin.buffer.read().decode()
    if secret:
        from .password import PASSWORD_VARIABLE

        os.environ[PASSWORD_VARIABLE] = secret
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)


if __name__ == "__main__":
    _take_password()
    sys.exit(run(int(sys.argv[1])))
