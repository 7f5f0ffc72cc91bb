#!/bin/sh
# Starts HAProxy for canaduck's IRC address (haproxy.cfg beside this file) and keeps its
# `resolvers directory` section pointing at the directory's DNS interface.
#
# DIRECTORY_DNS (host:port, `directory:8600` in compose) is where the directory answers DNS.
# HAProxy reads a name server's address once, with its configuration, and never again, while
# the directory's container or task may come back with another address: this script resolves
# the name every few seconds and, when the address has changed, rewrites the section and
# reloads HAProxy (master-worker mode: connections already open stay with the old worker
# until they end; new ones go to the new one).
#
# IRC_TLS_PEM names the certificate and key (one PEM file) for IRC over TLS; when that file
# does not exist, a self-signed certificate for IRC_TLS_NAME is made at start, good for tests
# and for clients told to accept it, not for a public network.
set -eu

conf=/usr/local/etc/haproxy
run=/run/haproxy
directory=${DIRECTORY_DNS:-directory:8600}
host=${directory%:*}
port=${directory##*:}
IRC_TLS_PEM=${IRC_TLS_PEM:-$conf/tls/irc.pem}

if [ ! -s "$IRC_TLS_PEM" ]; then
	name=${IRC_TLS_NAME:-irc.canaduck.local}
	IRC_TLS_PEM=$run/self-signed.pem
	openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=$name" \
		-addext "subjectAltName=DNS:$name" -keyout "$run/key.pem" -out "$run/cert.pem" 2>/dev/null
	cat "$run/cert.pem" "$run/key.pem" >"$IRC_TLS_PEM"
	rm -f "$run/key.pem"
	echo "entrypoint: IRC over TLS with a self-signed certificate for $name (mount a real one at $conf/tls/irc.pem)" >&2
fi
export IRC_TLS_PEM

address() { getent ahostsv4 "$host" | awk 'NR == 1 { print $1 }'; }

write_resolvers() {
	# Asked once a second (`hold valid`), as Caddy does; a replica gone from the answer leaves
	# the rotation at once (`hold obsolete 0s`). The directory unreachable: its last answer is
	# kept for 30 s (`hold timeout`, `hold refused`, `hold other`), as Caddy's grace_period.
	cat >"$run/resolvers.cfg.new" <<-CFG
	resolvers directory
		nameserver directory $1:$port
		accepted_payload_size 4096
		resolve_retries 2
		timeout resolve 1s
		timeout retry 1s
		hold valid 1s
		hold obsolete 0s
		hold nx 1s
		hold timeout 30s
		hold refused 30s
		hold other 30s
	CFG
	mv "$run/resolvers.cfg.new" "$run/resolvers.cfg"
}

current=$(address)
while [ -z "$current" ]; do
	echo "entrypoint: waiting for $host to resolve" >&2
	sleep 1
	current=$(address)
done
write_resolvers "$current"

haproxy -W -db -f "$run/resolvers.cfg" -f "$conf/haproxy.cfg" &
pid=$!
# Told to stop: HAProxy is told at once, and the loop below ends without another poll or lookup.
# A stop waits for HAProxy alone, so the container is gone well within the engine's grace
# period (10 s) and is never killed (a poll of 5 s plus a slow lookup did not fit in it).
stopping=
trap 'stopping=yes; kill -TERM "$pid" 2>/dev/null' TERM INT

while [ -z "$stopping" ] && kill -0 "$pid" 2>/dev/null; do
	sleep 5 &
	wait $! || true
	[ -z "$stopping" ] || break
	found=$(address)
	if [ -z "$stopping" ] && [ -n "$found" ] && [ "$found" != "$current" ]; then
		echo "entrypoint: $host moved from $current to $found: reloading" >&2
		current=$found
		write_resolvers "$current"
		kill -USR2 "$pid"
	fi
done
wait "$pid"
