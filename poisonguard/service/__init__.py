"""The poisonguard service: a REST API and dashboard over the library, with RBAC and audit.

::

    from poisonguard.service import ServiceSettings, create_app
    app = create_app(ServiceSettings(home="/srv/poisonguard"))   # any ASGI server runs it

It adds access (users, tokens, roles, grants), storage (uploads, results, encryption
at rest) and views (dashboard); detection, checks and provenance are the library's.
Needs the ``service`` extra: ``pip install 'poisonguard[service]'``. See docs/service.md.
"""

from poisonguard.service.app import create_app
from poisonguard.service.core import Service
from poisonguard.service.roles import Role
from poisonguard.service.settings import ServiceSettings

__all__ = ["Role", "Service", "ServiceSettings", "create_app"]
