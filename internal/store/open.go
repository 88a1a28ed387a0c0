// Package store persists apikeyd's data with bun, on PostgreSQL (pgdriver)
// or on an embedded SQLite database (pure-Go modernc.org/sqlite).
package store

import (
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/pgdriver"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// IsPostgresDB reports whether db is a PostgreSQL database (else SQLite),
// as its dialect says: once a database is open, that is the one answer.
func IsPostgresDB(db bun.IDB) bool { return db.Dialect().Name() == dialect.PG }

// IsPostgres reports whether dsn names a PostgreSQL database, for the
// decisions taken before it is open.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// SQLitePath returns the path of the SQLite database file that dsn names
// (file:PATH, sqlite:PATH or a bare path, without its parameters) and the
// parameters, or ok=false when dsn names PostgreSQL.
func SQLitePath(dsn string) (path, params string, ok bool) {
	if IsPostgres(dsn) {
		return "", "", false
	}
	path = strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "file:")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path, params = path[:i], path[i+1:]
	}
	return path, params, true
}

// Open opens the database dsn names: postgres:// or postgresql:// for
// PostgreSQL; file:PATH, sqlite:PATH or a bare path for SQLite. It does not
// connect; use Ping to check the database answers.
func Open(dsn string) (*bun.DB, error) {
	if IsPostgres(dsn) {
		connector, err := pgConnector(dsn)
		if err != nil {
			return nil, err
		}
		sqldb := sql.OpenDB(connector)
		sqldb.SetMaxOpenConns(20)
		sqldb.SetMaxIdleConns(20)
		sqldb.SetConnMaxIdleTime(5 * time.Minute)
		return bun.NewDB(sqldb, pgdialect.New()), nil
	}
	sdsn, err := sqliteDSN(dsn)
	if err != nil {
		return nil, err
	}
	sqldb, err := sql.Open("sqlite", sdsn)
	if err != nil {
		return nil, err
	}
	sqldb.SetMaxOpenConns(8)
	sqldb.SetMaxIdleConns(8)
	sqldb.SetConnMaxIdleTime(0)
	return bun.NewDB(sqldb, sqlitedialect.New()), nil
}

// pgConnector returns pgdriver's connector to the database dsn names.
// pgdriver panics on a DSN it cannot use, quoting a URL it cannot parse
// whole, password included; here either is an error that never quotes dsn.
func pgConnector(dsn string) (c *pgdriver.Connector, err error) {
	if _, err := url.Parse(dsn); err != nil {
		return nil, errors.New("store: DATABASE_URL is not a valid URL: check its port, and percent-encode special characters of the user name and password")
	}
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("store: DATABASE_URL: %v", r) // a bad parameter, never the URL
		}
	}()
	return pgdriver.NewConnector(pgdriver.WithDSN(dsn), pgdriver.WithTimeout(5*time.Second)), nil
}

// sqliteDSN returns a modernc.org/sqlite DSN for dsn with the settings
// apikeyd relies on: WAL so readers never wait for the writer, a busy
// timeout so writers wait for each other instead of failing with "database is
// locked", foreign keys, and IMMEDIATE transactions so a transaction takes the
// write lock at its start and never fails upgrading a read lock.
func sqliteDSN(dsn string) (string, error) {
	path, query, _ := SQLitePath(dsn)
	if path == "" {
		return "", errors.New("store: empty SQLite path")
	}
	if path == ":memory:" || strings.Contains(query, "mode=memory") {
		return "", errors.New("store: an in-memory SQLite database is not supported: every connection would see a different database")
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", fmt.Errorf("store: bad SQLite DSN parameters: %w", err)
	}
	pragmas := strings.Join(q["_pragma"], ",")
	for _, p := range []string{"journal_mode(WAL)", "busy_timeout(5000)", "foreign_keys(1)", "synchronous(NORMAL)"} {
		name := p[:strings.IndexByte(p, '(')]
		if !strings.Contains(pragmas, name) {
			q.Add("_pragma", p)
		}
	}
	if q.Get("_txlock") == "" {
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode(), nil
}

// Describe names the database dsn points at without its password, for logs.
func Describe(dsn string) string {
	if IsPostgres(dsn) {
		u, err := url.Parse(dsn)
		if err != nil {
			return "postgres (unparseable URL)"
		}
		return "postgres://" + u.Host + u.Path
	}
	path, _, _ := SQLitePath(dsn)
	return "sqlite:" + path
}
