package agentproto

import (
	"time"

	"selfserve/connectors"
)

// Limits of what an agent may send.
const (
	// MaxBody bounds any request body (a page of users is the largest).
	MaxBody = 8 << 20
	// MaxPageUsers bounds the users of one pushed page.
	MaxPageUsers = 5000
	// LongPoll is how long the server holds a request for the next job.
	LongPoll = 25 * time.Second
	// HeartbeatEvery is how often an agent reports in.
	HeartbeatEvery = 30 * time.Second
)

// EnrolRequest exchanges a one-time install code for an agent identity.
type EnrolRequest struct {
	Code string `json:"code"`
	// SignKey is the agent's Ed25519 public key (32 bytes).
	SignKey []byte `json:"sign_key"`
	// BoxKey is the agent's X25519 public key (32 bytes), to which
	// write-back passwords are sealed.
	BoxKey   []byte `json:"box_key"`
	Hostname string `json:"hostname"`
	Version  string `json:"version"`
}

// EnrolResponse names the agent and what it serves.
type EnrolResponse struct {
	AgentID    int64  `json:"agent_id"`
	Tenant     string `json:"tenant"`
	Connection string `json:"connection"`
	// Directory is what the agent reads: "ad" or "file".
	Directory  string    `json:"directory"`
	ServerTime time.Time `json:"server_time"`
}

// Heartbeat is an agent's periodic report.
type Heartbeat struct {
	Version  string `json:"version"`
	Hostname string `json:"hostname"`
	// Policy is the directory's domain-level password policy, when the
	// agent could read it.
	Policy *connectors.PasswordPolicy `json:"policy,omitempty"`
}

// Job kinds, as in the store.
const (
	JobSync   = "sync"
	JobReset  = "reset"
	JobUnlock = "unlock"
)

// Job is work handed to an agent under a lease.
type Job struct {
	ID         int64     `json:"id"`
	Kind       string    `json:"kind"`
	LeaseUntil time.Time `json:"lease_until"`
	// Sync is set for sync jobs.
	Sync *SyncArgs `json:"sync,omitempty"`
	// Account is set for write-back jobs.
	Account *connectors.Account `json:"account,omitempty"`
	// SealedPassword is a reset's new password sealed (NaCl anonymous box)
	// to the agent's box key.
	SealedPassword []byte `json:"sealed_password,omitempty"`
}

// SyncArgs says what to enumerate.
type SyncArgs struct {
	RunID int64 `json:"run_id"`
	// Mode is "full" or "incremental".
	Mode string `json:"mode"`
	// Resume is where an interrupted full listing continues.
	Resume string `json:"resume,omitempty"`
	// Cursor is where an incremental listing starts.
	Cursor string `json:"cursor,omitempty"`
}

// Page is one page of a sync job, numbered from 1.
type Page struct {
	Seq     int                        `json:"seq"`
	Users   []User                     `json:"users"`
	Invalid []connectors.InvalidRecord `json:"invalid,omitempty"`
	Removed []Removal                  `json:"removed,omitempty"`
	Resume  string                     `json:"resume,omitempty"`
	Cursor  string                     `json:"cursor,omitempty"`
	// Privileged is the source's whole privileged set, on a run's last
	// page (see connectors.UserPage).
	Privileged map[string]string `json:"privileged,omitempty"`
}

// User is connectors.User on the wire.
type User struct {
	ExternalID           string    `json:"external_id"`
	Username             string    `json:"username,omitempty"`
	UPN                  string    `json:"upn,omitempty"`
	FirstName            string    `json:"first_name,omitempty"`
	LastName             string    `json:"last_name,omitempty"`
	DisplayName          string    `json:"display_name,omitempty"`
	Email                string    `json:"email,omitempty"`
	Mobile               string    `json:"mobile,omitempty"`
	Enabled              bool      `json:"enabled"`
	LockedOut            bool      `json:"locked_out,omitempty"`
	LockedOutAt          time.Time `json:"locked_out_at,omitzero"`
	MustChangePassword   bool      `json:"must_change_password,omitempty"`
	PasswordNeverExpires bool      `json:"password_never_expires,omitempty"`
	PasswordLastSet      time.Time `json:"password_last_set,omitzero"`
	PasswordExpiresAt    time.Time `json:"password_expires_at,omitzero"`
	ImmutableID          string    `json:"immutable_id,omitempty"`
	Privileged           bool      `json:"privileged,omitempty"`
	PrivilegedReason     string    `json:"privileged_reason,omitempty"`
	PrivilegeUnknown     bool      `json:"privilege_unknown,omitempty"`
	Ref                  string    `json:"ref,omitempty"`
}

// Removal is connectors.Removal on the wire.
type Removal struct {
	ExternalID string `json:"external_id"`
	Permanent  bool   `json:"permanent,omitempty"`
}

// FromUserPage turns a source's page into its wire form.
func FromUserPage(seq int, p connectors.UserPage) Page {
	out := Page{Seq: seq, Users: make([]User, len(p.Users)), Invalid: p.Invalid, Resume: p.Resume, Cursor: p.Cursor, Privileged: p.Privileged}
	for i, u := range p.Users {
		out.Users[i] = User{
			ExternalID: u.ExternalID, Username: u.Username, UPN: u.UPN, FirstName: u.FirstName, LastName: u.LastName,
			DisplayName: u.DisplayName, Email: u.Email, Mobile: u.Mobile, Enabled: u.Enabled, LockedOut: u.LockedOut,
			LockedOutAt: u.LockedOutAt, MustChangePassword: u.MustChangePassword, PasswordNeverExpires: u.PasswordNeverExpires,
			PasswordLastSet: u.PasswordLastSet, PasswordExpiresAt: u.PasswordExpiresAt, ImmutableID: u.ImmutableID, Ref: u.Ref,
			Privileged: u.Privileged, PrivilegedReason: u.PrivilegedReason, PrivilegeUnknown: u.PrivilegeUnknown,
		}
	}
	for _, r := range p.Removed {
		out.Removed = append(out.Removed, Removal(r))
	}
	return out
}

// UserPage turns a wire page back into a source's page.
func (p Page) UserPage() connectors.UserPage {
	out := connectors.UserPage{Users: make([]connectors.User, len(p.Users)), Invalid: p.Invalid, Resume: p.Resume, Cursor: p.Cursor, Privileged: p.Privileged}
	for i, u := range p.Users {
		out.Users[i] = connectors.User{
			ExternalID: u.ExternalID, Username: u.Username, UPN: u.UPN, FirstName: u.FirstName, LastName: u.LastName,
			DisplayName: u.DisplayName, Email: u.Email, Mobile: u.Mobile, Enabled: u.Enabled, LockedOut: u.LockedOut,
			LockedOutAt: u.LockedOutAt, MustChangePassword: u.MustChangePassword, PasswordNeverExpires: u.PasswordNeverExpires,
			PasswordLastSet: u.PasswordLastSet, PasswordExpiresAt: u.PasswordExpiresAt, ImmutableID: u.ImmutableID, Ref: u.Ref,
			Privileged: u.Privileged, PrivilegedReason: u.PrivilegedReason, PrivilegeUnknown: u.PrivilegeUnknown,
		}
	}
	for _, r := range p.Removed {
		out.Removed = append(out.Removed, connectors.Removal(r))
	}
	return out
}

// Result codes of a finished job.
const (
	ResultDone           = "done"
	ResultFailed         = "failed"
	ResultPasswordPolicy = "password_policy"
	ResultUnsupported    = "unsupported"
	// ResultResyncRequired: an incremental listing's cursor was refused;
	// the server turns the run into a full one.
	ResultResyncRequired = "resync_required"
)

// Result ends a job.
type Result struct {
	// Code is one of the Result* constants.
	Code string `json:"code"`
	// Reason says in words what happened (never a password).
	Reason string `json:"reason,omitempty"`
}

// Error is the body of every error answer.
type Error struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}
