"""Settings: regions, centralists, panel users, message templates and action types.

One blueprint, ``bp`` (from :mod:`.views`); importing each sub-feature's views here adds its
routes to it.
"""

from callback_api.settings.action_types import views as action_type_views
from callback_api.settings.alert_policies import views as alert_policy_views
from callback_api.settings.centralists import views as centralist_views
from callback_api.settings.message_templates import views as template_views
from callback_api.settings.regions import views as region_views
from callback_api.settings.users import views as user_views
from callback_api.settings.views import bp

__all__ = [
    "action_type_views",
    "alert_policy_views",
    "bp",
    "centralist_views",
    "region_views",
    "template_views",
    "user_views",
]
