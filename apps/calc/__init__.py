"""calc: /sum, /sub and /calc, run as two replicas behind Caddy's round robin."""
