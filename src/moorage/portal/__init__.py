"""The web portal: server-rendered pages at ``/`` and ``/portal/``, served by the same app, port and TLS as the
registry and its API.

Every figure a page shows and every change it makes goes through the Harbor API's own operation handlers,
called in-process with the signed-in user's subject (``moorage.portal.calls``), so each permission check is the
API's. Sessions live in the metadata store (any replica answers any request); every state change carries a
CSRF token. Templates and assets ship in this package: the pages load nothing from anywhere else.
"""
