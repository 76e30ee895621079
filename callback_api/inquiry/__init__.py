"""Neighbourhood inquiries: the panel pages and the residents' public form (:mod:`.views`), the
inquiries and their e-mail requests (:mod:`.services`), the statements (:mod:`.statements`)."""

from callback_api.inquiry.views import bp

__all__ = ["bp"]
