"""Repositories, one module per aggregate: the only code (with `kuzet.audit`) that writes SQL.

Each takes the session of the transaction it works in (`services.uow`) and the time from the caller's clock.
"""
