package store

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"

	"github.com/apikeyd/apikeyd/migrations"
)

// Migrator returns the migrator of db's schema, its tables created.
func Migrator(ctx context.Context, db *bun.DB) (*migrate.Migrator, error) {
	ms, err := migrations.For(db.Dialect().Name())
	if err != nil {
		return nil, err
	}
	m := migrate.NewMigrator(db, ms)
	if err := m.Init(ctx); err != nil {
		return nil, translate(fmt.Errorf("store: init migrations: %w", err))
	}
	return m, nil
}

// withLock runs fn holding the migrations lock. Replicas starting together
// take turns: the lock is retried for up to a minute.
func withLock(ctx context.Context, m *migrate.Migrator, fn func() error) error {
	deadline := time.Now().Add(time.Minute)
	for {
		err := m.Lock(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("store: %w (if no other apikeyd is migrating, a crashed one left the lock: delete the row of bun_migration_locks)", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	defer m.Unlock(context.WithoutCancel(ctx)) //nolint:errcheck // best effort; the result of fn matters
	return fn()
}

// MigrateUp applies every pending migration and returns the applied group
// (empty when there was nothing to do).
func MigrateUp(ctx context.Context, db *bun.DB) (*migrate.MigrationGroup, error) {
	m, err := Migrator(ctx, db)
	if err != nil {
		return nil, err
	}
	var g *migrate.MigrationGroup
	err = withLock(ctx, m, func() (err error) {
		g, err = m.Migrate(ctx)
		return err
	})
	return g, err
}

// MigrateDown rolls back the last applied group of migrations.
func MigrateDown(ctx context.Context, db *bun.DB) (*migrate.MigrationGroup, error) {
	m, err := Migrator(ctx, db)
	if err != nil {
		return nil, err
	}
	var g *migrate.MigrationGroup
	err = withLock(ctx, m, func() (err error) {
		g, err = m.Rollback(ctx)
		return err
	})
	return g, err
}
