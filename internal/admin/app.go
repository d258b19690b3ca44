package admin

import (
	"net/http"
	"time"

	"selfserve/internal/report"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// Endpoints of the self-serve apps: an app client reports an end user's
// first access. (An end user confirms their mobile through the welcome
// email's link on the public listener: package selfserve.)

type firstAccessRequest struct {
	// At is when the end user first signed in (RFC 3339); default now.
	At *string `json:"at"`
}

// clockSkew is how far in the future a reported time may be.
const clockSkew = 5 * time.Minute

func (a *api) firstAccess(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req firstAccessRequest
	if err := a.decodeOptionalBody(w, r, &req); err != nil {
		return err
	}
	now := a.Now()
	at := now
	if req.At != nil {
		t, err := time.Parse(time.RFC3339, *req.At)
		if err != nil {
			return badField("at", "%q is not an RFC 3339 time such as 2026-11-24T09:00:00Z", truncate(*req.At, 40))
		}
		if t.After(now.Add(clockSkew)) {
			return badField("at", "at %s is in the future", t.Format(time.RFC3339))
		}
		at = t
	}
	if err := selfServeAvailable(p.tenant); err != nil {
		return err
	}
	ctx := r.Context()
	var row report.EndUser
	err = a.Store.InTx(ctx, func(tx *store.Store) error {
		before, err := tx.EndUser(ctx, p.tenant.ID, id)
		if err != nil {
			return err
		}
		if r := rules.InactiveReason(p.tenant.Rules(), before.Rules()); r != rules.ReasonNone {
			return conflict("inactive", "end user %d cannot use self-serve (%s), so it cannot have accessed it", id, r)
		}
		after, newly, err := tx.MarkFirstAccess(ctx, p.tenant.ID, id, at)
		if err != nil {
			return err
		}
		if newly {
			type accessView struct {
				FirstAccessAt *time.Time   `json:"first_access_at"`
				Status        rules.Status `json:"status"`
			}
			if err := audit(ctx, tx, p, "end_user.first_access", "end_user", id,
				accessView{before.FirstAccessAt, rules.StatusOf(before.Rules())},
				accessView{after.FirstAccessAt, rules.StatusOf(after.Rules())}); err != nil {
				return err
			}
		}
		row, err = a.endUserRow(ctx, tx, p.tenant, after)
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, row)
	return nil
}
