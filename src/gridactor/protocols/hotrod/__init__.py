"""Hot Rod server protocol (versions 4.1, 4.0, 3.1, 3.0).

``serve_hotrod(stream, initial, ctx)`` serves one connection; the pieces below it are a
sans-IO codec (:mod:`.codec`), request dataclasses (:mod:`.messages`), response encoders
(:mod:`.responses`) and the per-connection session that maps requests to cache ops
(:mod:`.handler`).
"""

from __future__ import annotations

from gridactor.protocols.hotrod.codec import HotRodServerCodec, RemoteProtocolError
from gridactor.protocols.hotrod.connection import serve_hotrod
from gridactor.protocols.hotrod.handler import AuthStep, HotRodSession, SaslAuthenticator
from gridactor.protocols.hotrod.messages import CLOSED, NEED_DATA, Request, RequestError

__all__ = [
    "CLOSED",
    "NEED_DATA",
    "AuthStep",
    "HotRodServerCodec",
    "HotRodSession",
    "RemoteProtocolError",
    "Request",
    "RequestError",
    "SaslAuthenticator",
    "serve_hotrod",
]
