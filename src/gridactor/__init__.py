"""gridactor: a secure, multi-process data-grid server on Trio (Infinispan-compatible)."""

__version__ = "0.1.0"
