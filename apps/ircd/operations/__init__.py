"""What the commands do, by subject: each operation takes typed records, changes the shared
state, delivers what others must see, and returns a typed result or raises a typed error
(apps/ircd/errors.py). The handlers (apps/ircd/handlers) parse a command, call an operation,
and reply."""
