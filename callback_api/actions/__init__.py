"""Actions: the list, the new-action form, an action's page (calls, tips, map, broadcasts).

Importing :mod:`.start_views` adds the new-action page's helpers (search, team, preview) to
the blueprint; :mod:`.eta_words` adds the Dutch words of the ETA and the night rules.
"""

from callback_api.actions import eta_words, start_views
from callback_api.actions.views import bp

__all__ = ["bp", "eta_words", "start_views"]
