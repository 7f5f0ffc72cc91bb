"""The chat's domain, shared by its services (the ircd, messages and users): how names
compare, every Redis key of the chat, the history, the records of users and channels, the
table of modes and the events between gateway replicas."""
