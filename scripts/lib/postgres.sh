# A throwaway PostgreSQL cluster for apikeyd's scripts (tests, benchmarks).
# Source it from bash after common.sh. start_postgres creates and starts a
# cluster in a fresh temporary directory on a free loopback port and exports
# APIKEYD_TEST_POSTGRES_URL; stop_postgres stops it and deletes it. Call
# stop_postgres from an EXIT trap so the cluster never outlives the script.
# shellcheck shell=bash

PG_BASE=""       # temp dir holding the cluster; removed by stop_postgres
PG_DATA=""       # data directory inside PG_BASE
PG_LOG=""        # server log inside PG_BASE
PG_BIN=""        # directory of initdb, pg_ctl, postgres
PG_OWNER=""      # OS user that runs the cluster when this script is root
PG_PASS=""       # password of the postgres role; never printed
PG_PORT=""       # port the server listens on, once started
PG_STARTED=false
PG_EXTRA_OPTS="" # more server options for pg_ctl -o, e.g. "-c work_mem=8MB"

# Sets PG_BIN to the directory of the newest PostgreSQL server binaries.
find_pg_bin() {
	local candidates=() d
	for d in /usr/lib/postgresql/*/bin; do
		[ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && candidates+=("$d")
	done
	if [ "${#candidates[@]}" -gt 0 ]; then
		PG_BIN=$(printf '%s\n' "${candidates[@]}" | sort -V | tail -n 1)
		return 0
	fi
	if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
		PG_BIN=$(dirname "$(command -v initdb)")
		return 0
	fi
	return 1
}

# Runs a PostgreSQL tool from inside PG_BASE, as the postgres OS user when
# this script runs as root (the server refuses to run as root).
pg_run() {
	(
		cd "$PG_BASE" || exit 1
		if [ -z "$PG_OWNER" ]; then
			exec "$@"
		elif command -v runuser >/dev/null 2>&1; then
			exec runuser -u "$PG_OWNER" -- "$@"
		else
			# The inner shell, not this one, expands "$0" "$@".
			# shellcheck disable=SC2016
			exec su -s /bin/sh "$PG_OWNER" -c 'exec "$0" "$@"' "$@"
		fi
	)
}

# Prints the end of the server log, with the password blanked out.
pg_log_tail() {
	[ -n "$PG_LOG" ] && [ -f "$PG_LOG" ] || return 0
	printf '\n--- PostgreSQL log (last %s lines) ---\n' "${1:-40}" >&2
	if [ -n "$PG_PASS" ]; then
		tail -n "${1:-40}" "$PG_LOG" | sed "s/$PG_PASS/[redacted]/g" >&2
	else
		tail -n "${1:-40}" "$PG_LOG" >&2
	fi
	printf -- '--- end of PostgreSQL log ---\n' >&2
}

# Stops the cluster, if it was started, and deletes its directory.
stop_postgres() {
	if [ "$PG_STARTED" = true ]; then
		local t0
		t0=$(now_ms)
		pg_run "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 ||
			warn "pg_ctl stop failed"
		PG_STARTED=false
		echo "PostgreSQL stopped in $(elapsed "$t0")"
	fi
	if [ -n "$PG_BASE" ]; then
		rm -rf "$PG_BASE"
		PG_BASE=""
	fi
}

# Creates and starts the cluster and exports APIKEYD_TEST_POSTGRES_URL.
# Returns non-zero, after printing why, if PostgreSQL is not available.
start_postgres() {
	find_pg_bin || {
		warn "PostgreSQL server binaries (initdb, pg_ctl) not found and not installed"
		return 1
	}

	if [ "$(id -u)" -eq 0 ]; then
		PG_OWNER=postgres
		if ! id -u "$PG_OWNER" >/dev/null 2>&1; then
			useradd --system --user-group --no-create-home \
				--home-dir /nonexistent --shell /usr/sbin/nologin "$PG_OWNER" || {
				warn "could not create the $PG_OWNER OS user"
				return 1
			}
		fi
		# Under /tmp, which every user can reach (TMPDIR may not be).
		PG_BASE=$(mktemp -d /tmp/apikeyd-test-pg.XXXXXX) || return 1
		chown "$PG_OWNER" "$PG_BASE" || return 1
	else
		PG_BASE=$(mktemp -d "${TMPDIR:-/tmp}/apikeyd-test-pg.XXXXXX") || return 1
	fi
	PG_DATA="$PG_BASE/data"
	PG_LOG="$PG_BASE/postgres.log"

	PG_PASS=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
	[ "${#PG_PASS}" -eq 32 ] || {
		warn "could not generate a password"
		return 1
	}
	local pwfile="$PG_BASE/pwfile"
	(umask 077 && printf '%s\n' "$PG_PASS" >"$pwfile") || return 1
	[ -z "$PG_OWNER" ] || chown "$PG_OWNER" "$pwfile" || return 1

	local version t0
	version=$("$PG_BIN/initdb" --version 2>/dev/null | awk '{print $3}')
	t0=$(now_ms)
	if ! pg_run "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --pwfile="$pwfile" \
		--auth-local=trust --auth-host=scram-sha-256 \
		--encoding=UTF8 --no-locale --no-sync >"$PG_BASE/initdb.log" 2>&1; then
		cat "$PG_BASE/initdb.log" >&2
		warn "initdb failed"
		return 1
	fi
	rm -f "$pwfile"
	echo "initdb ($PG_BIN, PostgreSQL $version) took $(elapsed "$t0")"

	# Try random ports until the server starts on a free one.
	local attempt port
	t0=$(now_ms)
	for ((attempt = 1; attempt <= 20; attempt++)); do
		port=$((20000 + RANDOM % 20000))
		port_in_use "$port" && continue
		if pg_run "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 \
			-o "-c listen_addresses=127.0.0.1 -p $port -k '$PG_BASE' -c fsync=off -c max_connections=200${PG_EXTRA_OPTS:+ $PG_EXTRA_OPTS}" \
			start >/dev/null 2>&1; then
			PG_STARTED=true
			# shellcheck disable=SC2034 # read by the scripts that source this file
			PG_PORT=$port
			break
		fi
		# A server that failed to start may still have left its pid file.
		pg_run "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1 && {
			PG_STARTED=true
			warn "server did not start in time on attempt $attempt"
			return 1
		}
	done
	if [ "$PG_STARTED" != true ]; then
		pg_log_tail 30
		warn "PostgreSQL did not start (20 attempts on random ports)"
		return 1
	fi
	echo "PostgreSQL $version started on 127.0.0.1:$port in $(elapsed "$t0") (data in $PG_BASE${PG_OWNER:+, running as $PG_OWNER})"

	export APIKEYD_TEST_POSTGRES_URL="postgres://postgres:$PG_PASS@127.0.0.1:$port/postgres?sslmode=disable"
	echo "APIKEYD_TEST_POSTGRES_URL=postgres://postgres:***@127.0.0.1:$port/postgres?sslmode=disable"
}
