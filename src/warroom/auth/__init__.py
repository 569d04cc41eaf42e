"""Users, API tokens, roles, web sessions and signed links."""
