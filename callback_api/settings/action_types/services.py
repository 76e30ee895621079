"""Action type templates in the panel: the list, edit, back to the default
(:mod:`burgernet.action_types` holds the rules and the defaults)."""

from __future__ import annotations

from burgernet.action_types import ActionTypeTemplateError, ActionTypeTemplates, TypeTemplate
from burgernet.services import Services

__all__ = ["ActionTypeTemplateError", "TypeTemplate", "action_type_templates"]


def action_type_templates(services: Services) -> ActionTypeTemplates:
    return ActionTypeTemplates(services.sessions)
