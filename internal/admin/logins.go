package admin

import (
	"net/http"

	"selfserve/internal/store"
)

// loginRoleRequest changes a login's role.
type loginRoleRequest struct {
	// Role is the new role: super, primary, manager, engineer or helpdesk.
	Role *string `json:"role"`
}

// loginRoleAudit is what a role change audits, before and after.
type loginRoleAudit struct {
	Role store.Role `json:"role"`
}

// setLoginRole changes a login's role (super only). A role changes only
// here (and with `selfserve login set-role`), never as a side effect of a
// token; the login's tokens carry the new role at once. The tenant's last
// super login keeps its role, so that someone can still change roles
// (store.UpsertLogin refuses: 409 last_super).
func (a *api) setLoginRole(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req loginRoleRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.Role == nil {
		return badField("role", "role is required: super, primary, manager, engineer or helpdesk")
	}
	role := store.Role(*req.Role)
	if !role.Valid() {
		return badField("role", "%q is not a role: super, primary, manager, engineer or helpdesk", truncate(*req.Role, 40))
	}
	ctx := r.Context()
	var after store.Login
	err = a.Store.InTx(ctx, func(tx *store.Store) error {
		before, err := tx.Login(ctx, p.tenant.ID, id)
		if err != nil {
			return err
		}
		after = before
		if before.Role == role {
			return nil
		}
		if after, _, err = tx.UpsertLogin(ctx, p.tenant.ID, before.Email, role); err != nil {
			return err
		}
		return audit(ctx, tx, p, "login.role_changed", "login", id, loginRoleAudit{before.Role}, loginRoleAudit{after.Role})
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, after)
	return nil
}
