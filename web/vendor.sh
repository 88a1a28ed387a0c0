#!/usr/bin/env bash
# Fetches the third-party files the GraphQL playground runs on into
# static/vendor/, where they are committed: the server embeds them and never
# needs npm. Run it only to change versions:
#
#   ./web/vendor.sh
#
# then update the paths in pages/playground.html (each package sits in a
# folder named for its version, so browsers may cache it for good) and run
# go test ./... (it checks that every file a page names is served).
#
# GraphiQL 3.x is the last line that ships a browser (UMD) build, and it runs
# on React 18's UMD builds; GraphiQL 4+ and React 19 ship none. Each tarball
# comes from the npm registry (npm pack) and must match the integrity pinned
# below, so a rerun reproduces the committed files byte for byte.

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

# name version integrity (the registry's dist.integrity)
PACKAGES=(
	"graphiql 3.9.0 sha512-rJYFlHdBbug9+YbFSwRVvgfPjCayC7wHecZkx/qB4XLuQPFQZw/yB9pmHFtOJV6RiNBBHro3u1GdocKa3YcGRA=="
	"react 18.3.1 sha512-wS+hAgJShR0KhEvPJArfuPVN1+Hz1t0Y6n5jLrGQbkb4urgPE/0Rve+1kMB1v/oWgHgm4WIcV+i7F2pTVj+2iQ=="
	"react-dom 18.3.1 sha512-5m4nQKp+rZRb09LNH59GM4BxTh9251/ylbKIbpe7TpGxfJ+9kv6BLkLBXIjjspbgbnIBNqlI23tRnTWT0snUIw=="
)

# Files taken from each package, relative to its root.
files_of() {
	case "$1" in
	graphiql) echo "LICENSE graphiql.min.js graphiql.min.css" ;;
	react) echo "LICENSE umd/react.production.min.js" ;;
	react-dom) echo "LICENSE umd/react-dom.production.min.js" ;;
	esac
}

command -v npm >/dev/null 2>&1 || {
	echo "vendor.sh: npm is needed to fetch the packages" >&2
	exit 1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

dest=static/vendor
rm -rf "$dest"
mkdir -p "$dest"

for entry in "${PACKAGES[@]}"; do
	read -r name version integrity <<<"$entry"
	tarball=$(cd "$tmp" && npm pack --silent "$name@$version" | tail -n 1)
	got="sha512-$(node -e 'process.stdout.write(require("crypto").createHash("sha512").update(require("fs").readFileSync(process.argv[1])).digest("base64"))' "$tmp/$tarball")"
	if [ "$got" != "$integrity" ]; then
		echo "vendor.sh: $name@$version: integrity $got, want $integrity" >&2
		exit 1
	fi
	mkdir "$tmp/$name"
	tar -xzf "$tmp/$tarball" -C "$tmp/$name" --strip-components=1
	mkdir "$dest/$name-$version"
	for f in $(files_of "$name"); do
		cp "$tmp/$name/$f" "$dest/$name-$version/$(basename "$f")"
	done
	echo "$name@$version: $(files_of "$name")"
done

(cd "$dest" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum >SHA256SUMS)
echo "wrote $dest (checksums in $dest/SHA256SUMS)"
