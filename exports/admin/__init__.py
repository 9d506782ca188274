"""The export service's admin (site) and the async export action any ModelAdmin can use (actions)."""
from exports.admin import site  # noqa: F401  (Django's autodiscovery imports exports.admin: register the models)
