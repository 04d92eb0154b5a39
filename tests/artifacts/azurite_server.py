"""Azurite, Microsoft's Azure Storage emulator (npm `azurite`, installed in tests/support/azurite by
scripts/test), serving the Blob API on a loopback port.

Azurite accepts only its public development account, so locations name
`devstoreaccount1.blob.core.windows.net` and a connection string whose BlobEndpoint points at
127.0.0.1 tells the client (ours and mlflow's) where that account really is. Azurite checks the
Shared Key signatures, so a wrong key is refused as Azure would refuse it.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.artifacts.daemons import daemon
from tests.services import free_port, missing

AZURITE = Path(__file__).parents[1] / "support" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
ACCOUNT = "devstoreaccount1"
# Azurite's documented, public development key.
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CONTAINER = "artifacts"


@dataclass
class AzuriteServer:
    port: int
    container: str = CONTAINER

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.port}/{ACCOUNT};"
        )

    @property
    def env(self) -> dict[str, str]:
        return {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string}

    def uri(self, path: str, scheme: str = "wasbs") -> str:
        kind = "dfs" if scheme.startswith("abfs") else "blob"
        return f"{scheme}://{self.container}@{ACCOUNT}.{kind}.core.windows.net/{path.strip('/')}"

    def client(self):  # type: ignore[no-untyped-def]
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)


@contextlib.contextmanager
def azurite() -> Iterator[AzuriteServer]:
    if not AZURITE.exists():
        missing(f"Azurite ({AZURITE}; scripts/test runs npm ci in tests/support/azurite)")
    with tempfile.TemporaryDirectory(prefix="tg-azurite-") as tmp:
        port = free_port()
        argv = [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", tmp,
                "--silent", "--skipApiVersionCheck", "--disableProductStyleUrl"]  # fmt: skip
        # Killed at the end: its graceful shutdown waits up to 10 s for idle keep-alive connections.
        with daemon(argv, port, Path(tmp) / "azurite.log", graceful=False):
            server = AzuriteServer(port)
            with server.client() as client:  # closed: Azurite's shutdown waits for open connections
                client.create_container(CONTAINER)
            yield server
