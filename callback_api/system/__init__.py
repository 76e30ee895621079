"""System status: the processes of this installation, their heartbeats and recent restarts, and
the panel's own ``/healthz`` (what the supervisor and a load balancer ask)."""

from callback_api.system.views import bp

__all__ = ["bp"]
