"""Users and their roles."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from kuzet.api.deps import Actor, Svc
from kuzet.api.schemas import NewUserBody
from kuzet.services import views

router = APIRouter(prefix="/api/users", tags=["users"])


@router.get("")
def list_users(svc: Svc, actor: Actor) -> list[dict[str, Any]]:
    """Users and roles (admins, auditors)."""
    return [views.user(u) for u in svc.users.list(actor)]


@router.post("", status_code=201)
def add_user(body: NewUserBody, svc: Svc, actor: Actor) -> dict[str, Any]:
    """Add a user (admins)."""
    return views.user(svc.users.add(actor, body.name, body.password, body.roles))
