"""OpenID Connect identity broker for Swedish municipal health and social care."""

__version__ = "0.1.0"
