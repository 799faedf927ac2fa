"""Infinispan's REST v2 API over HTTP/1.1 (h11) and HTTP/2 (h2). Entry point: :func:`serve_http`."""

from gridactor.protocols.rest.connection import serve_http as serve_http

__all__ = ["serve_http"]
