"""The vendor server: signed releases, the school API, rollouts, analytics."""

from django.apps import AppConfig


class VendorServerConfig(AppConfig):
    """Vendor server app (its beat entries are in ``clms_updates.periodic``)."""

    name = "vendor_server"
    verbose_name = "Vendor server"
    default_auto_field = "django.db.models.BigAutoField"
