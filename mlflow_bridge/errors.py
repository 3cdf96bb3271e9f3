"""One base error; the handler decides retry (transient) or reject (malformed) by class."""

from __future__ import annotations

__all__ = ["BridgeError", "DeploymentError", "MalformedEvent"]


class BridgeError(Exception):
    """Base class for the bridge's own errors."""


class MalformedEvent(BridgeError):
    """The event is not a model package state change we can read. Retrying cannot help."""


class DeploymentError(BridgeError):
    """The endpoint could not be created or updated now (e.g. it is still updating): retry."""
