"""The panel's blueprints: auth, dashboard, actions, people, feeds (the API lives in ``api.py``)."""
