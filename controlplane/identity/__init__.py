"""Who acts (docs/security.md, "Identity", "Access", "Just-in-time access").

tokens.py verifies a principal's JWT (pure: the Temporal interpreter uses it too); jwks.py
finds the environment's public keys; principal.py turns `--token` / `CPL_TOKEN` into a
principal; abac.py asks OPA (`cpl.access`) whether it may run, signal, operate or apply;
grants.py keeps just-in-time grants with the deploy state; devkeys.py makes development
tokens.
"""
