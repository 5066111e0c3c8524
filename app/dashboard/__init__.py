"""The dashboard: server-rendered Jinja2 pages with htmx, behind a server-side session of its own.

``site.mount`` adds its pages to the app; the pages share ``app.web`` with the REST API.
"""
