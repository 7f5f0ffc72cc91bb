#!/bin/sh
# Compose entry point of the redis container: writes users.acl with the real passwords from
# REDIS_PASSWORD_<USER> env vars (the dev-only ones stay where a variable is unset), then
# starts the server with redis.conf, listening on the compose network.
set -eu
conf_dir=/usr/local/etc/redis
acl=/data/users.acl
awk '
  $1 == "user" {
    var = "REDIS_PASSWORD_" toupper($2); gsub("-", "_", var)
    if (ENVIRON[var] != "") {
      for (i = 3; i <= NF; i++) if ($i == ">dev-only-" $2) $i = ">" ENVIRON[var]
    }
  }
  { print }
' "$conf_dir/users.acl" >"$acl"
exec redis-server "$conf_dir/redis.conf" --bind 0.0.0.0 --aclfile "$acl" "$@"
