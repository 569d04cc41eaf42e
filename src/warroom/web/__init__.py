"""HTTP: the FastAPI app factory, JSON API routes and server-rendered pages."""
