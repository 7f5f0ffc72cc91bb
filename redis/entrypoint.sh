#!/bin/sh
# Compose entry point of the redis container: writes users.acl with the real passwords from
# REDIS_PASSWORD_<USER> env vars (the dev-only ones stay where a variable is unset), then
# starts the server with redis.conf, listening on the compose network, through the image's own
# entry point (which drops root for the redis user).
# An ACL line is split on spaces, so a password with whitespace is refused here, by name,
# rather than by the server as a syntax error in a generated file.
set -eu
conf_dir=${REDIS_CONF_DIR:-/usr/local/etc/redis}
acl=${REDIS_ACL_FILE:-/data/users.acl}
awk '
  $1 == "user" {
    var = "REDIS_PASSWORD_" toupper($2); gsub("-", "_", var)
    if (ENVIRON[var] ~ /[[:space:]]/) {
      print "redis: " var " contains whitespace, which an ACL password cannot" > "/dev/stderr"
      exit 1
    }
    if (ENVIRON[var] != "") {
      for (i = 3; i <= NF; i++) if ($i == ">dev-only-" $2) $i = ">" ENVIRON[var]
    }
  }
  { print }
' "$conf_dir/users.acl" >"$acl"
exec docker-entrypoint.sh redis-server "$conf_dir/redis.conf" --bind 0.0.0.0 --aclfile "$acl" "$@"
