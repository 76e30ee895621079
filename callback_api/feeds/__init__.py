"""Public AMBER Alert feeds (CAP 1.2, Atom, JSON Feed) and the display page for screens."""

from callback_api.feeds.views import bp

__all__ = ["bp"]
