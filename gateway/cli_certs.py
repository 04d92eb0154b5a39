"""`trackgate certs dev`: development certificates for TLS and mTLS (see gateway.devcerts)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_certs_arguments(parser: argparse.ArgumentParser) -> None:
    """Development certificates for TLS and mTLS (dev)."""
    sub = parser.add_subparsers(dest="certs_command", required=True, metavar="COMMAND")
    dev = sub.add_parser("dev", help="Write ca.pem, server.pem, server-key.pem and client.pem into --out.")
    dev.add_argument("--out", default="certs", help="Directory to write into (default: certs).")
    dev.add_argument("--client-name", default="dev-client", help="CN of the client certificate.")
    dev.set_defaults(handler=run_dev)


def run_dev(args: argparse.Namespace) -> int:
    out = Path(args.out)
    from gateway.devcerts import make_dev_certs  # lazy: cryptography only when used

    make_dev_certs(out, args.client_name)
    print(
        f"Wrote ca.pem, server.pem, server-key.pem, client.pem (CN={args.client_name}) "
        f"and ca-key.pem to {out}/."
    )
    print(
        f"Serve:  trackgate server --tls-cert {out}/server.pem --tls-key {out}/server-key.pem "
        f"--tls-client-ca {out}/ca.pem --client-cert-mode optional --auth mtls"
    )
    print(
        f"Client: MLFLOW_TRACKING_SERVER_CERT_PATH={out}/ca.pem "
        f"MLFLOW_TRACKING_CLIENT_CERT_PATH={out}/client.pem"
    )
    return 0
