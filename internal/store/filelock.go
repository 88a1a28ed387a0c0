package store

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// LockSQLite makes the SQLite database that dsn names this process's alone
// until the returned Closer is closed: a server that shares its file with
// another would serve from its cache keys the other has revoked. The lock
// is an OS lock on a file beside the database (PATH.lock), which the OS
// releases when the process ends, however it ends. When another process
// holds it, the error names the database. For PostgreSQL, which serves
// any number of servers, it locks nothing.
func LockSQLite(dsn string) (io.Closer, error) {
	path, _, ok := SQLitePath(dsn)
	if !ok {
		return noLock{}, nil
	}
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: lock the SQLite database: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("store: the SQLite database %s is in use by another apikeyd process (it holds %s): a database file serves one process; use PostgreSQL for several servers", path, f.Name())
		}
		return nil, fmt.Errorf("store: lock the SQLite database: %w", err)
	}
	return f, nil
}

// noLock is the lock of a database that needs none.
type noLock struct{}

func (noLock) Close() error { return nil }

// errLocked is lockFile's answer when another process holds the lock.
var errLocked = errors.New("locked by another process")
