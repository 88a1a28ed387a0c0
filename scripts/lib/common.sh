# Shell helpers shared by apikeyd's scripts. Source it from bash after setting
# SCRIPT_NAME (the prefix of warnings and failures, e.g. "scripts/test").
# shellcheck shell=bash

step() { printf '\n==> %s\n' "$*"; }
warn() { printf '%s: warning: %s\n' "${SCRIPT_NAME:-${0##*/}}" "$*" >&2; }
die() {
	printf '%s: FAIL: %s\n' "${SCRIPT_NAME:-${0##*/}}" "$*" >&2
	exit 1
}

is_ci() { [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; }

# Puts the Go toolchain of the official tarball on PATH when go is not there.
ensure_go_on_path() {
	if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
		export PATH="$PATH:/usr/local/go/bin"
	fi
}

# Milliseconds since the epoch (falls back to whole seconds on old bash).
now_ms() {
	if [ -n "${EPOCHREALTIME:-}" ]; then
		local t=${EPOCHREALTIME/[.,]/}
		echo "$((10#$t / 1000))"
	else
		echo "$((SECONDS * 1000))"
	fi
}

elapsed() { # elapsed START_MS -> "1.234s"
	local ms=$(($(now_ms) - $1))
	printf '%d.%03ds' "$((ms / 1000))" "$((ms % 1000))"
}

# Answers whether something listens on 127.0.0.1 port $1.
port_in_use() {
	(: <>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Runs a command with root rights: directly as root, else through sudo.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		if [ -t 0 ]; then
			sudo "$@"
		else
			sudo -n "$@"
		fi
	else
		return 1
	fi
}

# apt_install PKG... installs Debian packages (apt-get update, then install).
# Returns non-zero if they could not be installed.
apt_install() {
	command -v apt-get >/dev/null 2>&1 || {
		warn "apt-get not found; cannot install: $*"
		return 1
	}
	if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
		warn "not root and no sudo; cannot install: $*"
		return 1
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
		as_root env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -q --no-install-recommends "$@"
}
