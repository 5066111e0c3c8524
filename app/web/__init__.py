"""What the REST API and the dashboard both serve: who may see what (``access``), the request's dependencies
(``deps``, ``inputs``), the bodies and how rows become them (``schemas``, ``present``, ``people``), and the files a
user may download (``files``).

Below ``app.api`` and ``app.dashboard``, which each import it and never each other.
"""
