package importer

import (
	"context"
	"time"

	"selfserve/connectors"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// ApplyPage stores one page of directory users for a connection, in one
// transaction (tx's if it is one): new users are created with the target's
// switch; existing users are updated field by field under the provenance
// rules (rules.MergeDirectoryContact: never over a manual or end-user
// value), keep their switch, and are restored if they had been removed.
// Every user of the page is stamped as seen by the run. removals (from delta
// sources) mark users removed. Pages of ad and azure connections link hybrid
// identities (linker.go). The pages of one customer are serialised (a lock on
// its row on PostgreSQL). It returns the counts and the lockout transitions.
//
// The decisions are made here and in package rules; the store only reads
// and writes (its upsert keeps a guard that mirrors the contact rule).
func ApplyPage(ctx context.Context, st *store.Store, target store.PageTarget, recs []store.UserRecord, removals []connectors.Removal) (store.PageResult, error) {
	var res store.PageResult
	err := st.InTx(ctx, func(tx *store.Store) error {
		var err error
		if res, err = applyPage(ctx, tx, target, recs, removals); err != nil {
			return err
		}
		return tx.RecordRefusals(ctx, target, recs)
	})
	return res, err
}

// chunkSize bounds the records of a page handled at once: each chunk's
// lookups bind one value per record.
const chunkSize = 500

func applyPage(ctx context.Context, tx *store.Store, target store.PageTarget, recs []store.UserRecord, removals []connectors.Removal) (store.PageResult, error) {
	var res store.PageResult
	now := tx.Now()
	if len(recs) == 0 && len(removals) == 0 {
		return res, nil
	}
	// Page transactions of one customer take turns: an AD and an Entra page
	// then see each other's new users (linker.go), and overlapping writers
	// cannot deadlock on rows they would lock in different orders.
	if err := tx.LockCustomer(ctx, target.TenantID, target.CustomerID); err != nil {
		return res, err
	}
	var scope store.LinkScope
	if hybrid(target.Source) {
		var err error
		if scope, err = tx.LinkScope(ctx, target); err != nil {
			return res, err
		}
	}
	for start := 0; start < len(recs); start += chunkSize {
		chunk := recs[start:min(start+chunkSize, len(recs))]
		ext := make([]string, len(chunk))
		for i, r := range chunk {
			ext[i] = r.ExternalID
		}
		existing, err := tx.EndUsersByExternalID(ctx, target, ext)
		if err != nil {
			return res, err
		}
		var lk *linker
		if scope.Counterparts || scope.Links {
			if lk, err = newLinker(ctx, tx, target, scope, chunk, existing, now); err != nil {
				return res, err
			}
		}
		var writes []store.EndUser
		var unchanged []int64
		var newPrivileged []string // external ids: their end user ids exist once written
		for _, rec := range chunk {
			if lk != nil {
				switch lk.linkEntra(rec, existing) {
				case linkNew:
					res.Linked++
					continue
				case linkUpdated:
					res.Updated++
					continue
				case linkUnchanged:
					res.Unchanged++
					continue
				}
			}
			old, ok := existing[rec.ExternalID]
			tookOver := false
			if !ok && lk != nil {
				old, tookOver = lk.takeover(rec)
				ok = tookOver
			}
			if !ok {
				writes = append(writes, newEndUser(target, rec, now))
				res.Created++
				if rec.Privileged {
					newPrivileged = append(newPrivileged, rec.ExternalID)
				}
				continue
			}
			var emails, mobiles []string
			if lk != nil {
				emails, mobiles = lk.linked(old.ID)
			}
			merged := mergeEndUser(old, rec, now, emails, mobiles)
			if !tookOver && sameEndUser(old, merged) {
				unchanged = append(unchanged, old.ID)
				// A run that lists its source again (it could not resume
				// where it stopped) counted this user already.
				if old.SeenRunID == nil || *old.SeenRunID != target.RunID {
					res.Unchanged++
				}
				continue
			}
			if old.Privileged != merged.Privileged {
				res.Privileges = append(res.Privileges, store.PrivilegeChange{EndUserID: old.ID,
					Before: store.Privilege{Privileged: old.Privileged, Reason: old.PrivilegedReason},
					After:  store.Privilege{Privileged: merged.Privileged, Reason: merged.PrivilegedReason}})
			}
			if !old.LockedOut && merged.LockedOut {
				res.Lockouts = append(res.Lockouts, store.Lockout{EndUserID: old.ID, At: *merged.LockedOutAt})
			}
			merged.SeenRunID = &target.RunID
			writes = append(writes, merged)
			if tookOver {
				res.Linked++
			} else {
				res.Updated++
			}
		}
		if lk != nil {
			if err := lk.flushBefore(ctx); err != nil {
				return res, err
			}
			writes = append(writes, lk.userWrites()...)
		}
		if err := tx.UpsertEndUsers(ctx, writes); err != nil {
			return res, err
		}
		if err := tx.MarkEndUsersSeen(ctx, target, unchanged); err != nil {
			return res, err
		}
		created, err := tx.NewPrivilegeChanges(ctx, target, newPrivileged)
		if err != nil {
			return res, err
		}
		res.Privileges = append(res.Privileges, created...)
		if lk != nil {
			if err := lk.flushAfter(ctx); err != nil {
				return res, err
			}
			scope.Links = scope.Links || len(lk.order) > 0
		}
	}
	return res, removePage(ctx, tx, target, removals, &res)
}

// removePage marks removed the users a delta page reports deleted. A
// linked Entra user's deletion removes only its link (its AD end user
// stays).
func removePage(ctx context.Context, tx *store.Store, target store.PageTarget, removals []connectors.Removal, res *store.PageResult) error {
	if len(removals) == 0 {
		return nil
	}
	ext := make([]string, len(removals))
	for i, r := range removals {
		ext[i] = r.ExternalID
	}
	n, err := tx.MarkRemoved(ctx, target, ext)
	res.Removed += n
	if err != nil || target.Source != rules.SourceAzure {
		return err
	}
	n, err = tx.DeleteLinksByExternalID(ctx, target, ext)
	res.Removed += n
	return err
}

func newEndUser(target store.PageTarget, rec store.UserRecord, now time.Time) store.EndUser {
	connID, runID := target.ConnectionID, target.RunID
	u := store.EndUser{
		TenantID:     target.TenantID,
		CustomerID:   target.CustomerID,
		ConnectionID: &connID,
		Source:       target.Source,
		ExternalID:   rec.ExternalID,
		SelfServe:    target.EnableSelfServe,
		SeenRunID:    &runID,
		CreatedAt:    now,
		UpdatedAt:    now,
	}
	applyDirectoryFields(&u, rec, now)
	u.Email, u.EmailSource = rules.MergeDirectoryContact("", rules.ProvenanceNone, rec.Email, rec.EmailInvalid, nil)
	u.Mobile, u.MobileSource = rules.MergeDirectoryContact("", rules.ProvenanceNone, rec.Mobile, rec.MobileInvalid, nil)
	return u
}

// mergeEndUser is old updated by rec; emails and mobiles are what the
// Entra links of a hybrid AD end user last gave.
func mergeEndUser(old store.EndUser, rec store.UserRecord, now time.Time, emails, mobiles []string) store.EndUser {
	u := old
	applyDirectoryFields(&u, rec, now)
	if u.LockedOut && old.LockedOut && old.LockedOutAt != nil && rec.LockedOutAt.IsZero() {
		u.LockedOutAt = old.LockedOutAt // still the same lockout
	}
	u.Email, u.EmailSource = rules.MergeDirectoryContact(old.Email, old.EmailSource, rec.Email, rec.EmailInvalid, emails)
	u.Mobile, u.MobileSource = rules.MergeDirectoryContact(old.Mobile, old.MobileSource, rec.Mobile, rec.MobileInvalid, mobiles)
	u.RemovedAt = nil
	u.UpdatedAt = now
	return u
}

// applyDirectoryFields copies what the directory owns.
func applyDirectoryFields(u *store.EndUser, rec store.UserRecord, now time.Time) {
	u.Username, u.UPN = rec.Username, rec.UPN
	u.FirstName, u.LastName, u.DisplayName = rec.FirstName, rec.LastName, rec.DisplayName
	u.Enabled = rec.Enabled
	u.LockedOut = rec.LockedOut
	u.LockedOutAt = nil
	if rec.LockedOut {
		at := rec.LockedOutAt
		if at.IsZero() {
			at = now
		}
		at = at.UTC().Truncate(time.Microsecond)
		u.LockedOutAt = &at
	}
	u.MustChangePassword = rec.MustChangePassword
	u.PasswordNeverExpires = rec.PasswordNeverExpires
	u.PasswordLastSet = timePtr(rec.PasswordLastSet)
	u.PasswordExpiresAt = timePtr(rec.PasswordExpiresAt)
	if rec.PasswordNeverExpires {
		u.PasswordExpiresAt = nil
	}
	u.ImmutableID = rec.ImmutableID
	u.Privileged, u.PrivilegedReason = rec.Privileged, rec.PrivilegedReason
	if !rec.Privileged {
		u.PrivilegedReason = ""
	}
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC().Truncate(time.Microsecond)
	return &t
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// sameEndUser compares what an import may change.
func sameEndUser(a, b store.EndUser) bool {
	return a.Username == b.Username && a.UPN == b.UPN && a.FirstName == b.FirstName && a.LastName == b.LastName &&
		a.DisplayName == b.DisplayName && a.Email == b.Email && a.EmailSource == b.EmailSource &&
		a.Mobile == b.Mobile && a.MobileSource == b.MobileSource && a.Enabled == b.Enabled &&
		a.LockedOut == b.LockedOut && sameTime(a.LockedOutAt, b.LockedOutAt) &&
		a.MustChangePassword == b.MustChangePassword && a.PasswordNeverExpires == b.PasswordNeverExpires &&
		sameTime(a.PasswordLastSet, b.PasswordLastSet) && sameTime(a.PasswordExpiresAt, b.PasswordExpiresAt) &&
		a.ImmutableID == b.ImmutableID && sameTime(a.RemovedAt, b.RemovedAt) &&
		a.Privileged == b.Privileged && a.PrivilegedReason == b.PrivilegedReason
}
