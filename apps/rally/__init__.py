"""The rally's domain: what the players (ping, pong) and the dashboard (web) share about it.

The players write the rally's hash (`canaduck:rally`); `scoreboard.summarize` is how every
reader turns it into the scoreboard, so `GET /rally` and the dashboard show the same figures.
"""
