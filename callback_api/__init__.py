"""The web adapter: the control panel, the REST API, the public AMBER Alert feeds, webhooks.

One folder per feature (``auth``, ``dashboard``, ``actions``, ``people``, ``settings``,
``inquiry``, ``feeds``, ``api``, ``webhooks``), each with the same kinds of files:

* ``__init__.py`` exports the feature's blueprint as ``bp``; ``app.py`` registers them all;
* ``views.py``: routes only. A view parses the request, calls a service and renders; it does no
  database work (no SQLAlchemy, no ORM models, no session: ``tests/panel/test_layering.py``);
* ``services.py``: the feature's panel services, a class built from the process's core
  :class:`burgernet.services.Services` (and the settings or broadcast service where needed).
  Views build it per request (``service()`` in each views module). Services return frozen view
  dataclasses and raise typed errors with a stable code (:mod:`callback_api.errors`, or the
  core's :mod:`burgernet.errors`) that ``app.py`` turns into the 404 page or a JSON error;
* ``forms.py``: the feature's WTForms forms, where it has any.

``settings`` is split by sub-feature the same way: ``settings/regions``, ``settings/centralists``,
``settings/users`` and ``settings/message_templates`` are folders like the above, whose views
add their routes to the one ``settings`` blueprint of ``settings/views.py`` (so every settings
page keeps its ``/settings/...`` URL and ``settings.*`` endpoint); ``settings/services.py``
holds what they share (asking Asterisk to reload). ``api`` is the actions feature spoken as
JSON: its views call the actions services, its own ``services.py`` only knows bearer tokens, and
``openapi.py`` describes it. ``webhooks`` has views only: what a Twilio callback does is the
broadcasting adapter's (:mod:`broadcasting.twilio`).

Shared by the features: ``app.py`` (the app factory, error handlers, request ids), ``state.py``
(what the app holds), ``security.py`` (roles, sessions the server can end, login throttle),
``access.py`` (need-to-know on personal data, by role and region), ``limits.py`` (request body
limits per route), ``errors.py``, ``i18n.py``, ``forms.py`` (the bare confirmation form),
``areas.py`` and ``photos.py``.
"""
