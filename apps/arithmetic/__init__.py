"""The arithmetic domain: what calc (/sum, /sub) and mult (/mult) share.

`numbers`: exact arithmetic on query-string operands; `route`: one arithmetic route, read,
computed and answered (or refused) alike by both services.
"""
