"""`trackgate tokens`: issue and revoke trackgate's own bearer tokens (MLFLOW_TRACKING_TOKEN)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from gateway import config as configuration
from gateway.cli_users import UserError, add_store_argument, run
from tracking_core.durations import parse_duration


def add_tokens_arguments(parser: argparse.ArgumentParser) -> None:
    """Bearer tokens signed by this server (issue, revoke, list)."""
    sub = parser.add_subparsers(dest="tokens_command", required=True, metavar="COMMAND")
    issue = sub.add_parser("issue", help="Print a new token (only the token, on stdout).")
    issue.add_argument("--subject", required=True, help="Who the token speaks for (becomes mlflow.user).")
    issue.add_argument("--ttl", default="30d", help="Lifetime, e.g. 12h, 30d (default 30d).")
    issue.add_argument("--email", help="Email claim of the token.")
    issue.add_argument("--description", help="A note kept with the token id (e.g. which CI job).")
    issue.set_defaults(handler=lambda a: run(a, _issue))
    revoke = sub.add_parser("revoke", help="Revoke a token by its id (jti), as `tokens list` shows it.")
    revoke.add_argument("jti", help="the token id (its jti claim); put -- before an id that starts with -")
    revoke.add_argument("--not-issued-here", action="store_true",
                        help="Record the revocation of an id this database never issued (a token signed with "
                        "the same key by another tool).")
    revoke.set_defaults(handler=lambda a: run(a, _revoke))
    listing = sub.add_parser("list", help="Issued tokens: id, subject, expiry, revoked.")
    listing.set_defaults(handler=lambda a: run(a, _list))
    for p in (issue, revoke, listing):
        add_store_argument(p)
        p.add_argument(
            "--token-signing-key-file",
            dest="token_signing_key_file",
            metavar="FILE",
            help="The server's signing key, if it is configured rather than generated.",
        )


async def _issue(config: configuration.Config, args: argparse.Namespace, engine: Any) -> str:
    from gateway.auth.tokens import issue, signing_key
    from tracking_core.store.tables import auth_tokens

    try:
        ttl = parse_duration(args.ttl)
    except ValueError:
        raise UserError(f"--ttl {args.ttl!r} is not a duration such as 12h or 30d") from None
    key = await signing_key(config, engine)
    token, claims = issue(key, config, args.subject, ttl, {"email": args.email} if args.email else None)
    async with engine.begin() as conn:
        await conn.execute(
            auth_tokens.insert().values(
                jti=claims["jti"],
                subject=args.subject,
                issued_time=claims["iat"] * 1000,
                expires_time=claims["exp"] * 1000,
                description=args.description,
            )
        )
    return token


async def _revoke(config: configuration.Config, args: argparse.Namespace, engine: Any) -> str:
    import sqlalchemy as sa

    from tracking_core.store.tables import auth_tokens

    now = int(time.time() * 1000)
    async with engine.begin() as conn:
        row = (await conn.execute(sa.select(auth_tokens.c.revoked_time).where(auth_tokens.c.jti == args.jti))).first()
        if row is not None and row.revoked_time is not None:
            return f"Token {args.jti} was already revoked on {_day(row.revoked_time)}."
        if row is not None:
            await conn.execute(auth_tokens.update().where(auth_tokens.c.jti == args.jti).values(revoked_time=now))
        elif args.not_issued_here:
            # Signed with the same key by another tool: the revocation is recorded all the same.
            await conn.execute(
                auth_tokens.insert().values(
                    jti=args.jti, subject="", issued_time=now, expires_time=None, revoked_time=now
                )
            )
        else:
            # A typo must not print "Revoked" while the real token keeps working.
            raise UserError(f"no token {args.jti} was issued here (see `trackgate tokens list`; "
                            "--not-issued-here records it anyway)")
    return f"Revoked token {args.jti}; running servers refuse it within seconds."


async def _list(config: configuration.Config, args: argparse.Namespace, engine: Any) -> str:
    import sqlalchemy as sa

    from tracking_core.store.tables import auth_tokens as t

    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(t).order_by(t.c.issued_time))).all()
    now = int(time.time() * 1000)

    def state(r: Any) -> str:
        if r.revoked_time:
            return "revoked " + _day(r.revoked_time)
        if r.expires_time is not None and r.expires_time <= now:
            return "expired " + _day(r.expires_time)
        return "active"

    lines = [f"{r.jti}\t{r.subject}\texpires {_day(r.expires_time)}\t{state(r)}\t{r.description or ''}" for r in rows]
    return "\n".join(lines) if lines else "(no tokens)"


def _day(ms: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000)) if ms else "-"
