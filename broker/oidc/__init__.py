"""The OpenID Connect provider: endpoints, clients, grants, claims, discovery, logout."""
