"""`broker demo`: the broker, the BankID simulator, demo authorizations and a demo
relying party in one process, with no config file and no Redis."""
