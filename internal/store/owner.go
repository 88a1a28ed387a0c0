package store

import (
	"context"

	"github.com/uptrace/bun"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
)

// ownedBy returns the condition, and its argument, that a row of api_keys
// (qualified by table, "" for none) belongs to owner: a personal key is its
// user's with no organisation; an organisation key is its organisation's,
// whoever made it.
func ownedBy(table string, owner apikey.Owner) (cond string, arg string) {
	if table != "" {
		table += "."
	}
	if owner.Type == apikey.OwnerOrg {
		return table + "org_id = ?", owner.ID
	}
	return table + "user_id = ? AND " + table + "org_id IS NULL", owner.ID
}

// ownerLock is the name of the advisory lock that serializes the creation
// of owner's keys (CreateKey).
func ownerLock(owner apikey.Owner) string { return string(owner.Type) + ":" + owner.ID }

// lockLiveOrg reads the organisation id, unless it was deleted, with its
// row locked against deletion until tx ends (PostgreSQL: FOR SHARE;
// SQLite: the write lock taken at BEGIN IMMEDIATE). Returns
// apperr.NotFound when there is no such organisation.
func lockLiveOrg(ctx context.Context, tx bun.Tx, id string) error {
	_, err := readLiveOrg(ctx, tx, id, "SHARE")
	return err
}

// errOrgNotFound is the answer for an organisation that is not there for
// this caller.
var errOrgNotFound = apperr.New(apperr.NotFound, "organisation not found")
