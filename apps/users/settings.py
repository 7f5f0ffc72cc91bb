"""Settings of the users service."""

from __future__ import annotations

from pydantic import Field, model_validator

from apps.kit.settings import KitSettings


class UsersSettings(KitSettings):
    """Kit settings plus the password rules, the hashing cost and the session lifetime."""

    service_name: str = "users"
    #: Shortest password accepted at registration or change, in characters.
    password_min_length: int = Field(default=8, ge=1, le=256)
    #: Longest password accepted: hashing cost does not depend on it, but a body of megabytes
    #: has no business reaching the hasher.
    password_max_length: int = Field(default=256, ge=1, le=4096)
    #: argon2id cost. The defaults are OWASP's minimum for argon2id (19 MiB, 2 passes, 1 lane):
    #: 34 ms of CPU per hash on these machines (docs/chat.md has the measurement).
    argon2_time_cost: int = Field(default=2, ge=1, le=20)
    argon2_memory_kib: int = Field(default=19_456, ge=8, le=4 * 1024 * 1024)
    argon2_parallelism: int = Field(default=1, ge=1, le=16)
    #: Hashes computed at once (each in a worker thread, each holding its memory cost).
    hash_concurrency: int = Field(default=2, ge=1, le=64)
    #: Failed password checks (login, SASL, password change) an account takes at once, and how
    #: many more per minute after that; past it, checks answer 429 without hashing anything.
    failed_login_burst: int = Field(default=10, ge=1, le=10_000)
    failed_login_per_minute: float = Field(default=2.0, gt=0)
    #: The same from one client address (an IPv4 address, an IPv6 /64), whichever accounts the
    #: checks were for: guesses sprayed over many accounts, each under its own limit, stop here.
    #: Room for the typos of a few dozen people behind one NAT.
    failed_login_per_address_burst: int = Field(default=20, ge=1, le=100_000)
    failed_login_per_address_per_minute: float = Field(default=10.0, gt=0)
    #: Seconds a web session lives after login.
    session_ttl: float = Field(default=7 * 24 * 3600, gt=0)

    @model_validator(mode="after")
    def _lengths_in_order(self) -> UsersSettings:
        if self.password_min_length > self.password_max_length:
            raise ValueError("PASSWORD_MIN_LENGTH is above PASSWORD_MAX_LENGTH")
        if self.argon2_memory_kib < 8 * self.argon2_parallelism:
            raise ValueError("ARGON2_MEMORY_KIB must be at least 8 x ARGON2_PARALLELISM")
        return self
