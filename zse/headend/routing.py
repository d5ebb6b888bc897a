"""The headend's route declaration, shared by the API (:mod:`zse.headend.web`) and the portal
(:mod:`zse.headend.portal`): each route is declared once, as a :class:`Route`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from zse.headend.service import Headend

__all__ = ["RETAILER", "Handler", "Route", "Served", "retailer_of"]


class Served(Protocol):
    """What a handler is given besides the request: the application, with its headend."""

    headend: Headend


#: A route's handler: ``handler(app, request)``; ``app`` is the
#: :class:`~zse.headend.web.HeadendApp` (a :class:`Served`).
Handler = Callable[[Any, web.Request], Awaitable[web.StreamResponse]]
#: Where the middleware puts the retailer the client certificate names.
RETAILER = web.RequestKey("retailer", str)


@dataclass(frozen=True)
class Route:
    """One route: method, path (aiohttp syntax ``{name}``), handler, a summary, the JSON
    schema of its body (or a media type for a non-JSON body), its query parameters, the
    status of success, whether it is part of the API (else: a portal page), and the JSON
    schema of its success answer."""

    method: str
    path: str
    handler: Handler
    summary: str
    body: dict[str, Any] | str | None = None
    query: tuple[str, ...] = ()
    status: int = 200
    api: bool = True
    tags: tuple[str, ...] = field(default=())
    #: The JSON schema of the success answer's body (None: not described).
    reply: dict[str, Any] | None = None


def retailer_of(request: web.Request) -> str:
    """The retailer the request's client certificate names."""
    return request[RETAILER]
