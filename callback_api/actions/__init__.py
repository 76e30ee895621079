"""Actions: the list, the new-action form, an action's page (calls, tips, map, broadcasts)."""

from callback_api.actions.views import bp

__all__ = ["bp"]
