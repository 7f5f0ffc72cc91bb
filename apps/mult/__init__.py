"""mult: /mult, run as replicas a (weight 3), b (weight 1) and a backup behind Caddy."""
