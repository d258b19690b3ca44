// Package report turns stored records into the rows technicians see: an end
// user with its derived registration status, active (self-serve) and notices
// flags, privileged flag, and whether its switch is locked by the tenant
// override. The CLI, the demo and the admin
// API all show end users through it, so they never disagree.
package report

import (
	"time"

	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// EndUser is an end user as listed.
type EndUser struct {
	ID                   int64            `json:"id"`
	Tenant               string           `json:"tenant"`
	Customer             string           `json:"customer"`
	CustomerID           int64            `json:"customer_id"`
	Connection           string           `json:"connection"`
	Source               rules.Source     `json:"source"`
	ExternalID           string           `json:"external_id"`
	Username             string           `json:"username"`
	UPN                  string           `json:"upn"`
	FirstName            string           `json:"first_name"`
	LastName             string           `json:"last_name"`
	DisplayName          string           `json:"display_name"`
	Email                string           `json:"email"`
	EmailSource          rules.Provenance `json:"email_source"`
	Mobile               string           `json:"mobile"`
	MobileSource         rules.Provenance `json:"mobile_source"`
	Enabled              bool             `json:"enabled"`
	LockedOut            bool             `json:"locked_out"`
	LockedOutAt          *time.Time       `json:"locked_out_at"`
	MustChangePassword   bool             `json:"must_change_password"`
	PasswordNeverExpires bool             `json:"password_never_expires"`
	PasswordLastSet      *time.Time       `json:"password_last_set"`
	PasswordExpiresAt    *time.Time       `json:"password_expires_at"`
	SelfServe            bool             `json:"self_serve"`
	SwitchLocked         bool             `json:"switch_locked"`
	// Active: the end user may use self-serve; InactiveReason says why not.
	Active         bool         `json:"active"`
	InactiveReason rules.Reason `json:"inactive_reason,omitempty"`
	// Notices: reminders and lockout notices go to the end user (a
	// privileged account kept out of self-serve still gets them).
	Notices bool `json:"notices"`
	// Privileged: the account has administrative power in its directory;
	// PrivilegedReason says why.
	Privileged       bool         `json:"privileged"`
	PrivilegedReason string       `json:"privileged_reason,omitempty"`
	Status           rules.Status `json:"status"`
	StatusLabel      string       `json:"status_label"`
	FirstAccessAt    *time.Time   `json:"first_access_at"`
	WelcomeSentAt    *time.Time   `json:"welcome_sent_at"`
	Removed          bool         `json:"removed"`
}

// Names resolves ids to names for the rows.
type Names struct {
	Tenant      store.Tenant
	Customers   map[int64]store.Customer
	Connections map[int64]store.Connection
}

// NewEndUser builds the row of u.
func NewEndUser(u store.EndUser, names Names) EndUser {
	ru := u.Rules()
	rt := names.Tenant.Rules()
	status := rules.StatusOf(ru)
	row := EndUser{
		ID: u.ID, Tenant: names.Tenant.Name, CustomerID: u.CustomerID, Customer: names.Customers[u.CustomerID].Name,
		Source: u.Source, ExternalID: u.ExternalID, Username: u.Username, UPN: u.UPN,
		FirstName: u.FirstName, LastName: u.LastName, DisplayName: u.DisplayName,
		Email: u.Email, EmailSource: u.EmailSource, Mobile: u.Mobile, MobileSource: u.MobileSource,
		Enabled: u.Enabled, LockedOut: u.LockedOut, LockedOutAt: utc(u.LockedOutAt),
		MustChangePassword: u.MustChangePassword, PasswordNeverExpires: u.PasswordNeverExpires,
		PasswordLastSet: utc(u.PasswordLastSet), PasswordExpiresAt: utc(u.PasswordExpiresAt),
		SelfServe: u.SelfServe, SwitchLocked: rules.SwitchLocked(rt),
		InactiveReason: rules.InactiveReason(rt, ru), Status: status, StatusLabel: status.Label(),
		FirstAccessAt: utc(u.FirstAccessAt), WelcomeSentAt: utc(u.WelcomeSentAt), Removed: u.RemovedAt != nil,
	}
	row.Active = row.InactiveReason == rules.ReasonNone
	row.Notices = rules.NoticesAllowed(rt, ru)
	row.Privileged, row.PrivilegedReason = u.Privileged, u.PrivilegedReason
	if u.ConnectionID != nil {
		row.Connection = names.Connections[*u.ConnectionID].Name
	}
	return row
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
