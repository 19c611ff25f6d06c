"""The tenant registry's operator command (Firestore; locally: `source .local/stack.env` first). The chat function
uses the registry when TENANT_REGISTRY=firestore.

    python -m infra.tenants list
    python -m infra.tenants show TENANT
    python -m infra.tenants add TENANT --origin https://help.example.com [--origin …]
                                       [--client-per-minute N] [--session-per-minute N]
    python -m infra.tenants rotate-key TENANT                 a new site key; the old one stops working at once
    python -m infra.tenants origins TENANT [--add ORIGIN]… [--remove ORIGIN]…
    python -m infra.tenants limits TENANT [--client-per-minute N] [--session-per-minute N]   (0: the default)
    python -m infra.tenants disable TENANT | enable TENANT

`add` and `rotate-key` print the widget's embed snippet with the new key (the chat URL from --chat-url or CHAT_URL).
Tenant ids are lowercase (`acme`, `acme-eu`): 'Acme' is refused, so one customer can never become two tenants.
Output is JSON (one object per tenant), so scripts can read it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from shared.config import Settings
from shared.errors import AppError
from shared.memory.connection import FirestoreConnection, utc_now
from shared.tenants import LIMIT_NAMES, Tenant, TenantAdmin, as_json


def embed_snippet(chat_url: str, tenant: Tenant) -> str:
    return (f'<script src="{chat_url.rstrip("/")}/widget/v1/widget.js"\n'
            f'        data-site-key="{tenant.site_key}" async></script>')


def _limits(args: argparse.Namespace) -> dict[str, int | None]:
    return {name: getattr(args, name) for name in LIMIT_NAMES if getattr(args, name) is not None}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infra.tenants", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chat-url", default=os.environ.get("CHAT_URL", "https://CHAT_HOST"),
                        help="the chat function's URL, for the embed snippet (default: $CHAT_URL)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every registered tenant")
    for name in ("show", "rotate-key", "disable", "enable"):
        sub.add_parser(name).add_argument("tenant")
    add = sub.add_parser("add", help="register a tenant with a new site key")
    add.add_argument("tenant")
    add.add_argument("--origin", action="append", default=[], help="an allowed browser origin (repeat)")
    origins = sub.add_parser("origins", help="add or remove allowed origins")
    origins.add_argument("tenant")
    origins.add_argument("--add", action="append", default=[])
    origins.add_argument("--remove", action="append", default=[])
    limits = sub.add_parser("limits", help="per-tenant rate limits (0 clears one: the deployment's default)")
    limits.add_argument("tenant")
    for command in (add, limits):
        for name in LIMIT_NAMES:
            command.add_argument("--" + name.replace("_", "-"), dest=name, type=int)
    return parser


def run(argv: list[str] | None = None, admin: TenantAdmin | None = None, out=sys.stdout) -> int:
    args = _parser().parse_args(argv)
    if admin is None:
        settings = Settings.from_env()
        admin = TenantAdmin(FirestoreConnection(settings.project, settings.firestore_database), now=utc_now)
    try:
        if args.command == "list":
            result: list[Tenant] | Tenant = admin.list()
        elif args.command == "show":
            result = admin.get(args.tenant)
        elif args.command == "add":
            if not args.origin:
                raise SystemExit("add: give at least one --origin (e.g. --origin https://help.example.com)")
            result = admin.add(args.tenant, args.origin, {k: v for k, v in _limits(args).items() if v})
        elif args.command == "rotate-key":
            result = admin.rotate_key(args.tenant)
        elif args.command == "origins":
            result = admin.edit_origins(args.tenant, add=args.add, remove=args.remove)
        elif args.command == "limits":
            result = admin.set_limits(args.tenant, _limits(args))
        else:
            result = admin.set_disabled(args.tenant, args.command == "disable")
    except AppError as exc:
        print(f"error: {exc.public_message if exc.status < 500 else exc}", file=sys.stderr)
        return 2
    for tenant in result if isinstance(result, list) else [result]:
        print(json.dumps(as_json(tenant)), file=out)
    if args.command in ("add", "rotate-key"):
        print("\nEmbed the widget with:\n" + embed_snippet(args.chat_url, result), file=out)
    return 0


if __name__ == "__main__":
    sys.exit(run())
