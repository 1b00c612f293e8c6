"""A project-local PostgreSQL server for the Dagster instance: create, start, stop.

    python deploy/postgres.py start [--dir .postgres] [--port 55432]
    python deploy/postgres.py stop [--dir .postgres]
    python deploy/postgres.py env [--port 55432]     # the TRADEGAP_PG_* settings, as exports

Uses Debian's server binaries (`apt-get install postgresql`: /usr/lib/postgresql/<v>/bin).
The data folder is created on first start with a superuser and a database named by
`TRADEGAP_PG_USER` and `TRADEGAP_PG_DB` (both `tradegap`), password `TRADEGAP_PG_PASSWORD`
(`tradegap`). The server listens on 127.0.0.1 at the given port and on a socket inside the
data folder, nowhere else. As root, initdb and the server run as the `postgres` user
(initdb refuses root), which owns the data folder and must be able to reach it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULTS = {"TRADEGAP_PG_HOST": "127.0.0.1", "TRADEGAP_PG_USER": "tradegap",
            "TRADEGAP_PG_PASSWORD": "tradegap", "TRADEGAP_PG_DB": "tradegap"}
SERVER_USER = "postgres"


class SetupError(RuntimeError):
    """The server cannot be set up here; the message says what to do."""


def settings(port: int) -> dict[str, str]:
    """The connection settings `deploy/dagster.yaml` reads, environment first."""
    values = {name: os.environ.get(name, default) for name, default in DEFAULTS.items()}
    return {**values, "TRADEGAP_PG_PORT": str(port)}


def binaries() -> Path:
    """The newest installed server's bin folder."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0)
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise SetupError("PostgreSQL server not installed: apt-get install postgresql")


def as_server_user(command: list[str]) -> list[str]:
    """`command` run as the `postgres` user when we are root (initdb refuses root)."""
    return ["runuser", "-u", SERVER_USER, "--", *command] if os.geteuid() == 0 else command


def run(command: list[str], **options) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, **options)
    if done.returncode != 0:
        raise SetupError(f"{Path(command[0]).name} failed ({done.returncode}): "
                         f"{(done.stderr or done.stdout).strip()[-800:]}")
    return done


def initialize(folder: Path, values: dict[str, str]) -> None:
    """initdb into `folder` with a password-protected superuser for TCP connections."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    if os.geteuid() == 0:
        shutil.chown(folder, SERVER_USER, SERVER_USER)
        reach = subprocess.run(["runuser", "-u", SERVER_USER, "--", "test", "-w", str(folder)])
        if reach.returncode != 0:
            raise SetupError(f"the {SERVER_USER} user cannot reach {folder}: choose a data "
                             "folder under a world-traversable path (PG_DIR=/tmp/...)")
    with tempfile.NamedTemporaryFile("w", prefix="tradegap-pw", delete=False) as secret:
        secret.write(values["TRADEGAP_PG_PASSWORD"] + "\n")
    if os.geteuid() == 0:
        shutil.chown(secret.name, SERVER_USER, SERVER_USER)
    try:
        run(as_server_user([str(binaries() / "initdb"), "-D", str(folder), "-U",
                            values["TRADEGAP_PG_USER"], f"--pwfile={secret.name}",
                            "--auth-local=trust", "--auth-host=scram-sha-256",
                            "--encoding=UTF8", "--locale=C"]))
    finally:
        Path(secret.name).unlink(missing_ok=True)


def is_running(folder: Path) -> bool:
    status = subprocess.run(as_server_user([str(binaries() / "pg_ctl"), "-D", str(folder),
                                            "status"]), capture_output=True)
    return status.returncode == 0


def start(folder: Path, port: int) -> dict[str, str]:
    """Create (first time) and start the server; create the database; its settings."""
    values = settings(port)
    folder = folder.resolve()
    if not (folder / "PG_VERSION").is_file():
        initialize(folder, values)
    if not is_running(folder):
        options = f"-k {folder} -p {port} -c listen_addresses=127.0.0.1"
        run(as_server_user([str(binaries() / "pg_ctl"), "-D", str(folder), "-l",
                            str(folder / "server.log"), "-o", options, "-w", "-t", "60",
                            "start"]))
    psql = [str(binaries() / "psql"), "-h", str(folder), "-p", str(port), "-U",
            values["TRADEGAP_PG_USER"], "-d", "postgres", "-tAc"]
    database = values["TRADEGAP_PG_DB"]
    exists = run(as_server_user([*psql, f"SELECT 1 FROM pg_database WHERE datname = "
                                        f"'{database}'"]))
    if exists.stdout.strip() != "1":
        run(as_server_user([*psql, f'CREATE DATABASE "{database}"']))
    return values


def stop(folder: Path) -> None:
    folder = folder.resolve()
    if (folder / "PG_VERSION").is_file() and is_running(folder):
        run(as_server_user([str(binaries() / "pg_ctl"), "-D", str(folder), "-m", "fast",
                            "-w", "stop"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("start", "stop", "env"))
    parser.add_argument("--dir", default=".postgres", type=Path, help="data folder")
    parser.add_argument("--port", default=55432, type=int, help="TCP port on 127.0.0.1")
    args = parser.parse_args(argv)
    try:
        if args.action == "start":
            values = start(args.dir, args.port)
            print(f"postgres: running on 127.0.0.1:{args.port}, data in {args.dir.resolve()}, "
                  f"database {values['TRADEGAP_PG_DB']}")
        elif args.action == "stop":
            stop(args.dir)
            print(f"postgres: stopped ({args.dir.resolve()})")
        else:
            print("\n".join(f"export {name}={value}"
                            for name, value in settings(args.port).items()))
    except SetupError as error:
        print(f"postgres: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
