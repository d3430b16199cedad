"""`broker demo`: the broker, the BankID simulator, demo authorizations and a demo
relying party in one process, with no config file and no Redis; and, unless `--no-siths`,
a SITHS host (TLS, asks for a client certificate) with a throwaway test PKI and test cards."""
