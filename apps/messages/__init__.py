"""The messages service: the chat history over HTTP."""
