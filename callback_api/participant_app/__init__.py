"""The participant app (an installable web app under ``/app``): places kept on the phone, alerts
by Web Push matched on the device, sightings with a photo and a reply channel.

Its own templates and static files live in this folder, apart from the panel's: the app is for
the public and shares neither the panel's page layout nor its session.
"""

from callback_api.participant_app.views import bp

__all__ = ["bp"]
