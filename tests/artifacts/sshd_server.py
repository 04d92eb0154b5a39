"""Debian's OpenSSH server (`/usr/sbin/sshd -D`) on a loopback port, for the SFTP store.

Everything is throwaway and lives in one temporary directory: the server's config and host key,
the client's key pair, and a HOME whose ~/.ssh holds that client key and a known_hosts line for
the server (host-key checking stays on). The login is the user running the tests (root in CI),
accepted by key only, through an AuthorizedKeysFile in the temporary directory; nothing in the
real home directory or /etc/ssh is touched.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.artifacts.daemons import daemon
from tests.services import free_port, missing

SSHD = "/usr/sbin/sshd"


@dataclass
class SshServer:
    port: int
    user: str
    home: Path  # HOME for the client side: ~/.ssh/id_rsa and known_hosts
    root: Path  # a directory the tests may write into

    def uri(self, path: str) -> str:
        return f"sftp://{self.user}@127.0.0.1:{self.port}{self.root}/{path.strip('/')}"

    @property
    def env(self) -> dict[str, str]:
        return {"HOME": str(self.home)}


def _keygen(path: Path, kind: str = "ed25519") -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


@contextlib.contextmanager
def openssh_server() -> Iterator[SshServer]:
    if not os.path.exists(SSHD) or shutil.which("ssh-keygen") is None:
        missing("openssh-server (/usr/sbin/sshd)")
    with tempfile.TemporaryDirectory(prefix="tg-sshd-") as tmp:
        base = Path(tmp)
        port = free_port()
        host_public = _keygen(base / "host_key")
        home = base / "home"
        (home / ".ssh").mkdir(parents=True, mode=0o700)
        # RSA: pysftp (mlflow's SFTP client) only looks for ~/.ssh/id_rsa when given no key.
        client_public = _keygen(home / ".ssh" / "id_rsa", "rsa")
        (base / "authorized_keys").write_text(client_public + "\n")
        # Both spellings: OpenSSH and asyncssh look up "[host]:port", pysftp (mlflow's client)
        # looks up the bare host.
        (home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_public}\n127.0.0.1 {host_public}\n")
        root = base / "files"
        root.mkdir()
        config = base / "sshd_config"
        config.write_text(
            f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {base / 'host_key'}\nPidFile none\n"
            f"AuthorizedKeysFile {base / 'authorized_keys'}\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n"
            "UsePAM no\nStrictModes no\nSubsystem sftp internal-sftp\nMaxSessions 64\nMaxStartups 64\n"
        )
        if os.geteuid() == 0:
            # sshd refuses to start without its privilege-separation directory (made by systemd).
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        with daemon([SSHD, "-D", "-e", "-f", str(config)], port, base / "sshd.log"):
            yield SshServer(port, getpass.getuser(), home, root)
