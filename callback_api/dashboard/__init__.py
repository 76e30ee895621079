"""The dashboard: the map of active actions, centralist presence, broadcasts, the live feed."""

from callback_api.dashboard.views import bp

__all__ = ["bp"]
