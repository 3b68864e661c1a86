"""Admin routes: users, tokens, dataset grants and the whole ledger."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from poisonguard.service import users as accounts
from poisonguard.service.auth import Need, service_of
from poisonguard.service.ledger_view import all_entries
from poisonguard.service.models import ID_PATTERN, GrantIn, TokenIn, TokenOut, UserIn
from poisonguard.service.roles import Role
from poisonguard.service.users import Principal

__all__ = ["router"]

router = APIRouter(prefix="/api")
UserName = Annotated[str, Path(pattern=r"^[a-z][a-z0-9._-]{0,63}$")]


@router.get("/users")
async def list_users(request: Request, _: Principal = Depends(Need(Role.admin))
                     ) -> list[dict[str, Any]]:
    return await run_in_threadpool(accounts.list_users, service_of(request).store)


@router.post("/users", status_code=201)
async def add_user(request: Request, body: UserIn, _: Principal = Depends(Need(Role.admin))
                   ) -> dict[str, Any]:
    """Create a user (no token yet: issue one with ``POST /api/users/{name}/tokens``)."""
    request.state.audit = {"action": "add user", "user": body.name, "role": body.role}
    uid = await run_in_threadpool(accounts.add_user, service_of(request).store, body.name,
                                  body.role)
    return {"id": uid, "name": body.name, "role": body.role}


@router.post("/users/{name}/tokens", status_code=201, response_model=TokenOut)
async def issue_token(request: Request, name: UserName, body: TokenIn = Body(TokenIn()),
                      _: Principal = Depends(Need(Role.admin))) -> dict[str, str]:
    """A new API token for the user: shown once, stored as a salted hash."""
    token_id, token = await run_in_threadpool(accounts.issue_token, service_of(request).store,
                                              name, days=body.days)
    request.state.audit = {"action": "issue token", "user": name, "new_token_id": token_id}
    return {"token_id": token_id, "token": token}


@router.delete("/tokens/{token_id}")
async def revoke_token(request: Request, token_id: Annotated[str, Path(pattern=ID_PATTERN)],
                       _: Principal = Depends(Need(Role.admin))) -> dict[str, Any]:
    request.state.audit = {"action": "revoke token", "revoked_token_id": token_id}
    n = await run_in_threadpool(accounts.revoke_tokens, service_of(request).store,
                                token_id=token_id)
    return {"token_id": token_id, "revoked": n}


@router.put("/datasets/{dataset_id}/grants/{name}")
async def grant(request: Request, dataset_id: Annotated[str, Path(pattern=ID_PATTERN)],
                name: UserName, body: GrantIn,
                _: Principal = Depends(Need(Role.admin, scope="dataset"))) -> dict[str, Any]:
    """Give a user a role on this dataset (capped by their global role)."""
    request.state.audit = {"action": "grant", "user": name, "role": body.role}
    await run_in_threadpool(accounts.grant, service_of(request).store, name, dataset_id,
                            body.role)
    return {"dataset": dataset_id, "user": name, "role": body.role}


@router.get("/ledger")
async def ledger(request: Request, offset: Annotated[int, Query(ge=0)] = 0,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                 _: Principal = Depends(Need(Role.admin))) -> dict[str, Any]:
    """The whole hash-chained ledger, newest first, with the chain's verdict."""
    return await run_in_threadpool(all_entries, service_of(request), offset=offset, limit=limit)
