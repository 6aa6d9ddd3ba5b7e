"""What every blueprint shares: template filters and ``can()``, loading the signed-in user's
clinic and its patients with the access checks, the start page and the health check.

The web layer: modules here may call any domain's services, and no service imports them.
"""
