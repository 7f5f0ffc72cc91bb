"""The jokes service: a random French joke, one by id, and new ones, kept in Redis."""
