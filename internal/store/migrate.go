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

// locked runs step (m.Migrate or m.Rollback) holding m's migrations lock.
// Replicas starting together take turns: the lock is retried for up to a
// minute.
func locked(ctx context.Context, m *migrate.Migrator, step func(context.Context, ...migrate.MigrationOption) (*migrate.MigrationGroup, error)) (*migrate.MigrationGroup, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		err := m.Lock(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("store: %w (if no other apikeyd is migrating, a crashed one left the lock: delete the row of bun_migration_locks)", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	defer m.Unlock(context.WithoutCancel(ctx)) //nolint:errcheck // best effort; the result of step matters
	return step(ctx)
}

// MigrateUp applies every pending migration and returns the applied group
// (empty when there was nothing to do).
func MigrateUp(ctx context.Context, db *bun.DB) (*migrate.MigrationGroup, error) {
	m, err := Migrator(ctx, db)
	if err != nil {
		return nil, err
	}
	return locked(ctx, m, m.Migrate)
}

// MigrateDown rolls back the last applied group of migrations.
func MigrateDown(ctx context.Context, db *bun.DB) (*migrate.MigrationGroup, error) {
	m, err := Migrator(ctx, db)
	if err != nil {
		return nil, err
	}
	return locked(ctx, m, m.Rollback)
}
