"""Local stand-ins for upstream services, for `broker demo` and the tests.

Kept import-light on purpose: the broker's settings import the simulator settings, and
loading settings must not pull in a web server.
"""
