package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"

	"github.com/apikeyd/apikeyd/migrations"
)

// migrationLockKey is the PostgreSQL advisory lock taken around migrations
// ("apikeyd" in ASCII): one server migrates, the others starting with it
// wait, then find nothing left to do.
const migrationLockKey = 0x6170696b657964

// migrationLockPoll is how often a server waiting for another's migration
// tries the lock again.
const migrationLockPoll = 100 * time.Millisecond

// MigrateUp applies every pending migration and returns the applied group
// (empty when there was nothing to do). Any number of servers may call it
// at once: one migrates while the others wait (see withMigrationLock).
func MigrateUp(ctx context.Context, db *bun.DB) (*migrate.MigrationGroup, error) {
	return migrateLocked(ctx, db, (*migrate.Migrator).Migrate)
}

// MigrateDown rolls back the last applied group of migrations, holding the
// same lock as MigrateUp.
func MigrateDown(ctx context.Context, db *bun.DB) (*migrate.MigrationGroup, error) {
	return migrateLocked(ctx, db, (*migrate.Migrator).Rollback)
}

// MigrationStatus returns every migration, applied or pending, oldest
// first.
func MigrationStatus(ctx context.Context, db *bun.DB) (ms migrate.MigrationSlice, err error) {
	err = withMigrationLock(ctx, db, func() error {
		m, err := migrator(ctx, db)
		if err != nil {
			return err
		}
		ms, err = m.MigrationsWithStatus(ctx)
		return err
	})
	return ms, translate(err)
}

// migrateLocked runs step (Migrate or Rollback) on db's migrator, its
// tables created, holding the migration lock.
func migrateLocked(ctx context.Context, db *bun.DB, step func(*migrate.Migrator, context.Context, ...migrate.MigrationOption) (*migrate.MigrationGroup, error)) (g *migrate.MigrationGroup, err error) {
	err = withMigrationLock(ctx, db, func() error {
		m, err := migrator(ctx, db)
		if err != nil {
			return err
		}
		g, err = step(m, ctx)
		return err
	})
	return g, translate(err)
}

// migrator returns the migrator of db's schema, its tables created. Call
// it holding the migration lock: creating the tables races otherwise.
func migrator(ctx context.Context, db *bun.DB) (*migrate.Migrator, error) {
	ms, err := migrations.For(db.Dialect().Name())
	if err != nil {
		return nil, err
	}
	m := migrate.NewMigrator(db, ms)
	if err := m.Init(ctx); err != nil {
		return nil, fmt.Errorf("store: init migrations: %w", err)
	}
	return m, nil
}

// withMigrationLock runs fn holding the migration lock. On PostgreSQL that
// is a session-level advisory lock, held by a connection set aside from the
// pool for the purpose: servers wait for it in turn, and if the holder dies
// its session ends and the lock with it, so a crash never leaves it behind.
// SQLite needs none: a database file serves one process (see LockFile).
func withMigrationLock(ctx context.Context, db *bun.DB, fn func() error) error {
	if !IsPostgresDB(db) {
		return fn()
	}
	conn, err := db.DB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: migration lock: %w", err)
	}
	defer conn.Close()
	if err := advisoryLock(ctx, conn); err != nil {
		// The session may hold the lock or be waiting for it: never give
		// it back to the pool.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		return fmt.Errorf("store: migration lock: %w", err)
	}
	defer func() {
		unlock := fmt.Sprintf("SELECT pg_advisory_unlock(%d)", migrationLockKey)
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), unlock); err != nil {
			// Closing the session releases the lock.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return fn()
}

// advisoryLock takes the migration lock on conn, trying again every
// migrationLockPoll while another session holds it, until ctx is done. A
// blocking pg_advisory_lock would outlast the driver's read timeout during
// a long migration.
func advisoryLock(ctx context.Context, conn *sql.Conn) error {
	try := fmt.Sprintf("SELECT pg_try_advisory_lock(%d)", migrationLockKey)
	for {
		var locked bool
		if err := conn.QueryRowContext(ctx, try).Scan(&locked); err != nil {
			return err
		}
		if locked {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(migrationLockPoll):
		}
	}
}
