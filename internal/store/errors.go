package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/uptrace/bun/driver/pgdriver"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/apikeyd/apikeyd/internal/apperr"
)

// translate maps a database failure to apperr: an unreachable or overloaded
// database is SERVER_BUSY; anything else stays as it is (an internal error).
func translate(err error) error {
	if err == nil || errors.As(err, new(*apperr.Error)) {
		return err
	}
	if unavailable(err) {
		return apperr.Wrap(apperr.ServerBusy, "the database is unavailable; try again later", err)
	}
	return err
}

// rowError is err, a row of table that cannot be read (a column that does
// not scan or decode), naming the row, so that the log says which row to
// look at; clients see an internal error without detail. id is the row's
// id, empty when even that could not be read.
func rowError(table, id string, err error) error {
	if id == "" {
		id = "(id unreadable)"
	}
	return fmt.Errorf("store: %s row %s: %w", table, id, err)
}

// unavailable reports whether err means the database cannot be reached now.
func unavailable(err error) bool {
	var netErr net.Error
	var pgErr pgdriver.Error
	switch {
	case errors.As(err, &netErr),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, driver.ErrBadConn),
		errors.Is(err, sql.ErrConnDone),
		errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.As(err, &pgErr):
		state := pgErr.Field('C')
		// 08: connection exception; 53: insufficient resources;
		// 57P0x: the server is shutting down or starting.
		return strings.HasPrefix(state, "08") || strings.HasPrefix(state, "53") || strings.HasPrefix(state, "57P0")
	}
	// SQLite: the file cannot be opened, or the lock wait timed out.
	msg := err.Error()
	return strings.Contains(msg, "SQLITE_CANTOPEN") || strings.Contains(msg, "unable to open database") ||
		strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked")
}

// uniqueViolation reports whether err is a unique-constraint violation.
func uniqueViolation(err error) bool {
	var pgErr pgdriver.Error
	if errors.As(err, &pgErr) {
		return pgErr.Field('C') == "23505" // unique_violation
	}
	var liteErr *sqlite.Error
	return errors.As(err, &liteErr) && liteErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}
