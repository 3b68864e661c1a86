"""CLI commands: ``serve`` (the web service) and ``users`` (accounts and API tokens).

Both read the service settings from ``POISONGUARD_*`` (docs/service.md); ``users``
works on the same database as a running server, and records each change in its
ledger.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from poisonguard.cli._app import app, command, out_console, sub_app
from poisonguard.errors import MissingDependencyError

if TYPE_CHECKING:
    from poisonguard.service.settings import ServiceSettings
    from poisonguard.service.store import Store

__all__ = ["serve", "users_app"]

users_app = sub_app("Manage service users and their API tokens.")
app.add_typer(users_app, name="users")

RoleArg = Annotated[str, typer.Option("--role", help="viewer, contributor, curator or admin.")]
DaysOpt = Annotated[float, typer.Option("--days", help="Days until the token expires.")]


def _settings() -> ServiceSettings:
    try:
        from poisonguard.service.settings import ServiceSettings
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "fastapi", "service", "the service") from None
    settings = ServiceSettings()
    settings.make_home()
    return settings


def _store() -> Store:
    from poisonguard.service.store import Store

    return Store(_settings().database())


def _audit(store: Store, action: str, **details: object) -> None:
    store.ledger.append("audit", details={"via": "cli", "action": action, **details})


def _say(text: str) -> None:
    out_console.print(text, markup=False, soft_wrap=True, highlight=False)


@command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
) -> None:
    """Run the REST API and dashboard (settings from POISONGUARD_*; see docs/service.md)."""
    settings = _settings()
    try:
        import uvicorn

        from poisonguard.service import Service, create_app
        from poisonguard.service.users import list_users
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "uvicorn", "service", "the service") from None
    service = Service(settings)
    _say(f"poisonguard service: http://{host}:{port}/  (API spec: /openapi.json; "
         f"data in {settings.home.absolute()})")
    if not list_users(service.store):
        _say("no users yet: create the first admin with "
             "`poisonguard users add NAME --role admin` (prints its token)")
    try:
        uvicorn.run(create_app(service=service), host=host, port=port, log_level="warning")
    finally:
        service.close()


@command("add", on=users_app)
def users_add(name: Annotated[str, typer.Argument(help="Lower-case user name.")], role: RoleArg,
              days: DaysOpt = 90.0) -> None:
    """Create a user and print their first API token (shown once)."""
    from poisonguard.service.users import add_user, issue_token

    store = _store()
    add_user(store, name, role)
    token_id, token = issue_token(store, name, days=days)
    _audit(store, "add user", user=name, role=role, new_token_id=token_id)
    _say(f"user {name} ({role}); token id {token_id}, valid {days:g} days:\n{token}")


@command("token", on=users_app)
def users_token(name: Annotated[str, typer.Argument(help="User name.")],
                days: DaysOpt = 90.0) -> None:
    """Print a new API token for a user (shown once; only its salted hash is stored)."""
    from poisonguard.service.users import issue_token

    store = _store()
    token_id, token = issue_token(store, name, days=days)
    _audit(store, "issue token", user=name, new_token_id=token_id)
    _say(f"token id {token_id} for {name}, valid {days:g} days:\n{token}")


@command("revoke", on=users_app)
def users_revoke(
    token_id: Annotated[str | None, typer.Argument(help="Token id to revoke.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Revoke every token of a user.")
                    ] = None,
) -> None:
    """Revoke a token (by id) or all of a user's tokens; their sessions end too."""
    from poisonguard.service.users import revoke_tokens

    store = _store()
    n = revoke_tokens(store, token_id=token_id, user=user)
    _audit(store, "revoke token", **({"revoked_token_id": token_id} if token_id else
                                     {"user": user}), revoked=n)
    _say(f"revoked {n} token(s)")


@command("list", on=users_app)
def users_list() -> None:
    """List users, their roles and how many live tokens each has."""
    from poisonguard.service.users import list_users

    for u in list_users(_store()):
        _say(f"{u['name']}\t{u['role']}\t{u['tokens']} live token(s)")


@command("grant", on=users_app)
def users_grant(name: Annotated[str, typer.Argument(help="User name.")],
                dataset: Annotated[str, typer.Argument(help="Dataset id.")],
                role: RoleArg) -> None:
    """Give a user a role on one dataset (capped by the user's own role)."""
    from poisonguard.service.users import grant

    store = _store()
    grant(store, name, dataset, role)
    _audit(store, "grant", user=name, dataset=dataset, role=role)
    _say(f"{name} is {role} on dataset {dataset}")
