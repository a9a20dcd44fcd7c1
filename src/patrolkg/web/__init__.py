"""The web front end: the FastAPI app and its routes (see :func:`patrolkg.web.app.create_app`)."""

__all__: list[str] = []
