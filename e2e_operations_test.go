package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/uptrace/bun/migrate"

	"github.com/apikeyd/apikeyd/internal/clocktest"
	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/apikeyd/apikeyd/internal/store"
	"github.com/apikeyd/apikeyd/migrations"
)

// TestServersStartTogether starts several apikeyd processes at once on a
// fresh PostgreSQL database, round after round, then on an outdated one:
// every one comes up, one having migrated while the others waited.
func TestServersStartTogether(t *testing.T) {
	dbtest.DSN(t, "postgres") // skips without PostgreSQL
	bin := buildServer(t)
	const rounds, servers = 5, 4
	for round := range rounds {
		if !startTogether(t, bin, dbtest.DSN(t, "postgres"), servers) {
			t.Fatalf("round %d of %d failed", round+1, rounds)
		}
	}
	dsn := dbtest.DSN(t, "postgres")
	migratePartly(t, dsn, 3)
	if !startTogether(t, bin, dsn, servers) {
		t.Fatal("on an outdated database")
	}
}

// startTogether starts n servers on dsn at once, checks that each comes up
// and is ready, stops them, and reports whether all came up.
func startTogether(t *testing.T, bin, dsn string, n int) bool {
	t.Helper()
	procs := make([]serverProcess, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			procs[i], errs[i] = launchServer(t, bin, "DATABASE_URL="+dsn, "JWT_SECRET="+strings.Repeat("k", 40))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("server %d of %d: %v", i+1, n, err)
			continue
		}
		res, err := http.Get(procs[i].URL + "/readyz")
		if err != nil {
			t.Errorf("server %d of %d: %v", i+1, n, err)
			continue
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("server %d of %d: /readyz %d", i+1, n, res.StatusCode)
		}
	}
	for _, p := range procs {
		if p.Cmd != nil {
			_ = p.Process.Signal(syscall.SIGTERM)
			_ = p.Wait()
		}
	}
	return !t.Failed()
}

// migratePartly applies the first n migrations of apikeyd's schema to dsn,
// as an older apikeyd would have left it.
func migratePartly(t *testing.T, dsn string, n int) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	all, err := migrations.For(db.Dialect().Name())
	if err != nil {
		t.Fatal(err)
	}
	some := migrate.NewMigrations()
	for _, m := range all.Sorted()[:n] {
		some.Add(m)
	}
	m := migrate.NewMigrator(db, some)
	if err := m.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestOneProcessPerSQLiteFile checks that a second server on a SQLite file
// another one serves refuses to start, saying why, and so does a
// migration; once the first is killed outright, a new server starts.
func TestOneProcessPerSQLiteFile(t *testing.T) {
	bin := buildServer(t)
	path := filepath.Join(t.TempDir(), "apikeyd.db")
	env := "DATABASE_URL=file:" + path
	first := startServer(t, bin, env)

	_, err := launchServer(t, bin, env)
	if err == nil || !strings.Contains(err.Error(), "exit status 1") ||
		!strings.Contains(err.Error(), "the SQLite database "+path+" is in use by another apikeyd process") {
		t.Fatalf("second server: %v; want it to exit 1 saying that another process uses %s", err, path)
	}
	migrate := exec.Command(bin, "migrate", "up")
	migrate.Env = append(os.Environ(), env)
	out, err := migrate.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is in use by another apikeyd process") {
		t.Fatalf("migrate up beside a server: %v\n%s", err, out)
	}

	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	next := startServer(t, bin, env)
	res, err := http.Get(next.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("server after kill -9 of the first: /readyz %d", res.StatusCode)
	}
}

// TestBackupOfLiveSQLite backs up the database of a running server and
// starts a second server on the copy: it verifies a key made before the
// backup. A backup never overwrites a file, and on PostgreSQL it points to
// pg_dump.
func TestBackupOfLiveSQLite(t *testing.T) {
	bin := buildServer(t)
	dir := t.TempDir()
	secret := "JWT_SECRET=" + strings.Repeat("b", 40)
	live := startServer(t, bin, "DATABASE_URL=file:"+filepath.Join(dir, "apikeyd.db"), secret)
	e := &testEnv{t: t, URL: live.URL, Secret: []byte(strings.Repeat("b", 40)), Clock: clocktest.Running(), client: contractClient(t, http.DefaultTransport)}
	k := e.create(e.token("alice"), nil)

	backup := func(env string, args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"backup"}, args...)...)
		cmd.Env = append(os.Environ(), env)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	copyPath := filepath.Join(dir, "copy.db")
	if out, err := backup("DATABASE_URL=file:"+filepath.Join(dir, "apikeyd.db"), copyPath); err != nil {
		t.Fatalf("backup of the live database: %v\n%s", err, out)
	}
	restored := startServer(t, bin, "DATABASE_URL=file:"+copyPath, secret)
	c := &testEnv{t: t, URL: restored.URL, client: e.client}
	if s := c.verifyKey(k.Key); s != http.StatusOK {
		t.Fatalf("the copy's server verifies a key made before the backup: %d, want 200", s)
	}

	out, err := backup("DATABASE_URL=file:"+filepath.Join(dir, "apikeyd.db"), copyPath)
	if err == nil || !strings.Contains(out, "already exists") {
		t.Errorf("backup onto an existing file: %v\n%s", err, out)
	}
	out, err = backup("DATABASE_URL=postgres://apikeyd:pw@127.0.0.1:1/apikeyd", filepath.Join(dir, "pg.sql"))
	if err == nil || !strings.Contains(out, "pg_dump") || strings.Contains(out, ":pw@") {
		t.Errorf("backup of PostgreSQL: %v\n%s", err, out)
	}
}
