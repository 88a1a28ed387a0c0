# A throwaway Redis server for apikeyd's scripts (tests, benchmarks). Source
# it from bash after common.sh. start_redis starts a redis-server bound to
# 127.0.0.1 on a free port, keeping nothing on disk, in a fresh temporary
# directory, and exports APIKEYD_TEST_REDIS_URL and, for tests that run
# servers of their own (outages), APIKEYD_TEST_REDIS_SERVER; stop_redis stops
# it and deletes its directory. Call stop_redis from an EXIT trap so the
# server never outlives the script.
# shellcheck shell=bash

REDIS_BASE=""  # temp dir holding the server's files; removed by stop_redis
REDIS_LOG=""   # server log inside REDIS_BASE
REDIS_BIN=""   # the redis-server program
REDIS_PID=""   # the server's process, once started
REDIS_PORT=""  # port the server listens on, once started

# Sets REDIS_BIN to the redis-server program (Debian's redis-server package).
find_redis_server() {
	REDIS_BIN=$(command -v redis-server 2>/dev/null) && [ -x "$REDIS_BIN" ] && return 0
	[ -x /usr/bin/redis-server ] && REDIS_BIN=/usr/bin/redis-server && return 0
	return 1
}

# Prints the end of the server log.
redis_log_tail() {
	[ -n "$REDIS_LOG" ] && [ -f "$REDIS_LOG" ] || return 0
	printf '\n--- Redis log (last %s lines) ---\n' "${1:-40}" >&2
	tail -n "${1:-40}" "$REDIS_LOG" >&2
	printf -- '--- end of Redis log ---\n' >&2
}

# Stops the server, if it was started, and deletes its directory.
stop_redis() {
	if [ -n "$REDIS_PID" ]; then
		kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null
		REDIS_PID=""
		echo "Redis stopped"
	fi
	if [ -n "$REDIS_BASE" ]; then
		rm -rf "$REDIS_BASE"
		REDIS_BASE=""
	fi
}

# Answers whether the server on REDIS_PORT replies to PING.
redis_ping() {
	(
		exec 9<>"/dev/tcp/127.0.0.1/$REDIS_PORT" || exit 1
		printf 'PING\r\n' >&9
		read -r -t 1 reply <&9 || exit 1
		[ "${reply%$'\r'}" = "+PONG" ]
	) 2>/dev/null
}

# Starts the server and exports APIKEYD_TEST_REDIS_URL and
# APIKEYD_TEST_REDIS_SERVER. Returns non-zero, after printing why, if Redis
# is not available.
start_redis() {
	find_redis_server || {
		warn "redis-server not found and not installed"
		return 1
	}
	REDIS_BASE=$(mktemp -d "${TMPDIR:-/tmp}/apikeyd-test-redis.XXXXXX") || return 1
	REDIS_LOG="$REDIS_BASE/redis.log"

	local version attempt port t0 i
	version=$("$REDIS_BIN" --version 2>/dev/null | sed -n 's/.* v=\([^ ]*\).*/\1/p')
	t0=$(now_ms)
	# Try random ports until the server starts on a free one.
	for ((attempt = 1; attempt <= 20; attempt++)); do
		port=$((20000 + RANDOM % 20000))
		port_in_use "$port" && continue
		"$REDIS_BIN" --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
			--dir "$REDIS_BASE" --logfile "$REDIS_LOG" &
		REDIS_PID=$!
		REDIS_PORT=$port
		for ((i = 0; i < 100; i++)); do
			redis_ping && break
			kill -0 "$REDIS_PID" 2>/dev/null || break
			sleep 0.05
		done
		redis_ping && break
		# It exited (the port was taken meanwhile) or never answered.
		kill "$REDIS_PID" 2>/dev/null
		wait "$REDIS_PID" 2>/dev/null
		REDIS_PID=""
	done
	if [ -z "$REDIS_PID" ]; then
		redis_log_tail 30
		warn "Redis did not start (20 attempts on random ports)"
		return 1
	fi
	echo "Redis $version started on 127.0.0.1:$port in $(elapsed "$t0") (files in $REDIS_BASE)"

	export APIKEYD_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
	export APIKEYD_TEST_REDIS_SERVER="$REDIS_BIN"
	echo "APIKEYD_TEST_REDIS_URL=$APIKEYD_TEST_REDIS_URL"
}
