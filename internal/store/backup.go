package store

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// Backup writes a consistent copy of the SQLite database that dsn names to
// the new file to, while servers go on using the database: SQLite's VACUUM
// INTO reads it in one transaction. The copy is readable by its owner only
// (it holds key hashes and accounts). Backup never overwrites a file. For
// PostgreSQL it answers an error saying to use pg_dump.
func Backup(ctx context.Context, dsn, to string) error {
	if IsPostgres(dsn) {
		return errors.New(`apikeyd backup copies SQLite databases; back up PostgreSQL with its own tools: pg_dump "$DATABASE_URL" > backup.sql`)
	}
	path, _, _ := SQLitePath(dsn)
	if _, err := os.Stat(path); err != nil { // opening would create it
		return fmt.Errorf("store: the database to back up: %w", err)
	}
	db, err := Open(dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: open the database to back up: %w", err)
	}
	// VACUUM INTO writes into a file that does not exist or is empty:
	// create it empty, so that its mode is ours and an existing file is
	// never overwritten.
	f, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("store: %s already exists: back up to a new file", to)
	}
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	f.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", to); err != nil {
		os.Remove(to)
		return fmt.Errorf("store: back up the database: %w", err)
	}
	return nil
}
