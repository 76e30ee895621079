"""The composition root: where the core and the adapters are put together.

It sits on top of every other package and is the only one that may import them all:

* :mod:`composition.cli` — the ``burgernet`` command, with the adapters' command groups;
* :mod:`composition.context` — :class:`~composition.context.Context`, the core services with
  the adapters that implement their ports plugged in;
* :mod:`composition.runner` — ``burgernet run``, the supervisor of the whole system on one machine;
* :mod:`composition.demo` — demo regions, centralists, participants and actions;
* :mod:`composition.redis_server` — a private ``redis-server`` for ``run`` and the tests, password required;
* :mod:`composition.secrets_cli` — ``burgernet secrets init/rotate/check``.
"""
