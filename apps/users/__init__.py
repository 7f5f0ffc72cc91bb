"""The users service: accounts, password checks and web sessions for the chat."""
