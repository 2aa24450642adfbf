"""Sign-in, sign-out and who is signed in."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from kuzet.api.deps import Actor, Svc, start_session
from kuzet.api.schemas import LoginBody
from kuzet.api.security import CSRF_COOKIE, SESSION_COOKIE, token_from

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.post("/login")
def login(body: LoginBody, request: Request, response: Response, svc: Svc) -> dict[str, Any]:
    """Sign in: returns a bearer token and sets a session cookie (with a CSRF cookie) for the browser."""
    user, token = start_session(request, response, svc, body.name, body.password)
    return {"token": token, "user": user.name, "roles": sorted(user.roles)}


@router.post("/logout")
def logout(request: Request, response: Response, svc: Svc, actor: Actor) -> dict[str, str]:
    """End the session."""
    token, _ = token_from(request)
    svc.users.logout(token)
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(CSRF_COOKIE)
    return {"status": "signed out", "user": actor.name}


@router.get("/me")
def me(actor: Actor) -> dict[str, Any]:
    """The signed-in user."""
    return {"user": actor.name, "roles": sorted(actor.roles)}
