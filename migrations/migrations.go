// Package migrations holds apikeyd's database schema as embedded SQL
// migrations, one directory per database, run by bun/migrate.
package migrations

import (
	"embed"
	"fmt"
	"io/fs"

	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/migrate"
)

// Both directories hold the same migration names; only the SQL differs.
//
//go:embed pg/*.sql sqlite/*.sql
var files embed.FS

// For returns the migrations for a database dialect (pg or sqlite).
func For(d dialect.Name) (*migrate.Migrations, error) {
	var dir string
	switch d {
	case dialect.PG:
		dir = "pg"
	case dialect.SQLite:
		dir = "sqlite"
	default:
		return nil, fmt.Errorf("migrations: unsupported dialect %s", d)
	}
	sub, err := fs.Sub(files, dir)
	if err != nil {
		return nil, err
	}
	m := migrate.NewMigrations()
	if err := m.Discover(sub); err != nil {
		return nil, err
	}
	return m, nil
}
