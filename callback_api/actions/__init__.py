"""Actions: the list, the new-action form, an action's page (calls, tips, map, broadcasts).

Importing :mod:`.start_views` adds the new-action page's helpers (search, team, preview) to
the blueprint.
"""

from callback_api.actions import start_views
from callback_api.actions.views import bp

__all__ = ["bp", "start_views"]
