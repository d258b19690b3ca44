package store

import (
	"encoding/json"
	"time"

	"selfserve/connectors"
	"selfserve/internal/rules"
)

// Tenant is an MSP.
type Tenant struct {
	ID           int64              `db:"id" json:"id"`
	Name         string             `db:"name" json:"name"`
	Subscription rules.Subscription `db:"subscription" json:"subscription"`
	// SelfServe is the global override ("Self-Serve Password Reset").
	SelfServe    bool   `db:"self_serve" json:"self_serve"`
	TimeZone     string `db:"timezone" json:"timezone"`
	SendHour     int    `db:"send_hour" json:"send_hour"`
	ReminderDays int    `db:"reminder_days" json:"reminder_days"`
	// PrivilegedSelfServe says whether privileged end users may use
	// self-serve (deny, the default, or two_factors).
	PrivilegedSelfServe rules.PrivilegedSelfServe `db:"privileged_self_serve" json:"privileged_self_serve"`
	// Verification is how end users prove who they are (default sms).
	Verification rules.Verification `db:"verification" json:"verification"`
	CreatedAt    time.Time          `db:"created_at" json:"created_at"`
	UpdatedAt    time.Time          `db:"updated_at" json:"updated_at"`
}

// Rules returns what the domain rules need of the tenant.
func (t Tenant) Rules() rules.Tenant {
	return rules.Tenant{Subscription: t.Subscription, SelfServe: t.SelfServe, SendHour: t.SendHour, ReminderDays: t.ReminderDays,
		PrivilegedSelfServe: t.PrivilegedSelfServe, Verification: t.Verification}
}

// Role is a login's role.
type Role string

// The roles, most privileged first.
const (
	RoleSuper    Role = "super"
	RolePrimary  Role = "primary"
	RoleManager  Role = "manager"
	RoleEngineer Role = "engineer"
	RoleHelpdesk Role = "helpdesk"
)

// Roles lists every role.
var Roles = []Role{RoleSuper, RolePrimary, RoleManager, RoleEngineer, RoleHelpdesk}

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	for _, k := range Roles {
		if r == k {
			return true
		}
	}
	return false
}

// CanChangeTenantSettings reports whether the role may change tenant
// settings (the override among them): only super and primary.
func (r Role) CanChangeTenantSettings() bool { return r == RoleSuper || r == RolePrimary }

// CanEditPrivilegedEndUsers reports whether the role may change a privileged
// end user's contact fields or self-serve switch: only super and primary, so
// that a helpdesk login cannot put its own number on a domain admin.
func (r Role) CanEditPrivilegedEndUsers() bool { return r == RoleSuper || r == RolePrimary }

// Login is a technician of a tenant.
type Login struct {
	ID         int64      `db:"id" json:"id"`
	TenantID   int64      `db:"tenant_id" json:"tenant_id"`
	Email      string     `db:"email" json:"email"`
	Role       Role       `db:"role" json:"role"`
	DisabledAt *time.Time `db:"disabled_at" json:"disabled_at,omitempty"`
	CreatedAt  time.Time  `db:"created_at" json:"created_at"`
	UpdatedAt  time.Time  `db:"updated_at" json:"updated_at"`
}

// Customer is a client company of the MSP.
type Customer struct {
	ID       int64  `db:"id" json:"id"`
	TenantID int64  `db:"tenant_id" json:"tenant_id"`
	Name     string `db:"name" json:"name"`
	// TimeZone is the IANA zone; "" means the tenant's.
	TimeZone string `db:"timezone" json:"timezone"`
	// DefaultRegion reads phone numbers without a country code (ISO 3166).
	DefaultRegion string `db:"default_region" json:"default_region"`
	// Source is "manual" or the PSA kind the customer was imported from.
	Source string `db:"source" json:"source"`
	// ExternalID is the PSA's id ("" for manual customers not linked).
	ExternalID string    `db:"external_id" json:"external_id,omitempty"`
	CreatedAt  time.Time `db:"created_at" json:"created_at"`
	UpdatedAt  time.Time `db:"updated_at" json:"updated_at"`
}

// Location returns the customer's zone, falling back to the tenant's, then UTC.
func (c Customer) Location(tenant Tenant) *time.Location {
	for _, name := range []string{c.TimeZone, tenant.TimeZone} {
		if name == "" {
			continue
		}
		if loc, err := time.LoadLocation(name); err == nil {
			return loc
		}
	}
	return time.UTC
}

// Connection is a configured source of a tenant (for directory kinds, of one
// customer).
type Connection struct {
	ID         int64           `db:"id" json:"id"`
	TenantID   int64           `db:"tenant_id" json:"tenant_id"`
	CustomerID *int64          `db:"customer_id" json:"customer_id,omitempty"`
	Name       string          `db:"name" json:"name"`
	Kind       connectors.Kind `db:"kind" json:"kind"`
	// Settings is the connector's non-secret configuration (a JSON object).
	Settings json.RawMessage `db:"settings" json:"settings"`
	// SealedSecrets is the secretbox-sealed JSON object of secrets. It is
	// never returned by the API nor logged.
	SealedSecrets   []byte    `db:"secrets" json:"-"`
	EnableSelfServe bool      `db:"enable_self_serve" json:"enable_self_serve"`
	ScheduleSeconds int       `db:"schedule_seconds" json:"schedule_seconds"`
	Cursor          string    `db:"cursor" json:"-"`
	CreatedAt       time.Time `db:"created_at" json:"created_at"`
	UpdatedAt       time.Time `db:"updated_at" json:"updated_at"`
}

// Schedule returns the sync interval (0: no scheduled syncs).
func (c Connection) Schedule() time.Duration { return time.Duration(c.ScheduleSeconds) * time.Second }

// EndUser is an account of a customer's employee.
type EndUser struct {
	ID                   int64            `db:"id" json:"id"`
	TenantID             int64            `db:"tenant_id" json:"tenant_id"`
	CustomerID           int64            `db:"customer_id" json:"customer_id"`
	ConnectionID         *int64           `db:"connection_id" json:"connection_id,omitempty"`
	Source               rules.Source     `db:"source" json:"source"`
	ExternalID           string           `db:"external_id" json:"external_id"`
	Username             string           `db:"username" json:"username"`
	UPN                  string           `db:"upn" json:"upn"`
	FirstName            string           `db:"first_name" json:"first_name"`
	LastName             string           `db:"last_name" json:"last_name"`
	DisplayName          string           `db:"display_name" json:"display_name"`
	Email                string           `db:"email" json:"email"`
	EmailSource          rules.Provenance `db:"email_source" json:"email_source"`
	Mobile               string           `db:"mobile" json:"mobile"`
	MobileSource         rules.Provenance `db:"mobile_source" json:"mobile_source"`
	Enabled              bool             `db:"enabled" json:"enabled"`
	LockedOut            bool             `db:"locked_out" json:"locked_out"`
	LockedOutAt          *time.Time       `db:"locked_out_at" json:"locked_out_at"`
	MustChangePassword   bool             `db:"must_change_password" json:"must_change_password"`
	PasswordNeverExpires bool             `db:"password_never_expires" json:"password_never_expires"`
	PasswordLastSet      *time.Time       `db:"password_last_set" json:"password_last_set"`
	PasswordExpiresAt    *time.Time       `db:"password_expires_at" json:"password_expires_at"`
	ImmutableID          string           `db:"immutable_id" json:"-"`
	SelfServe            bool             `db:"self_serve" json:"self_serve"`
	// Privileged and PrivilegedReason are what the directory says of the
	// account's administrative power (kept current by every sync).
	Privileged       bool       `db:"privileged" json:"privileged"`
	PrivilegedReason string     `db:"privileged_reason" json:"privileged_reason"`
	FirstAccessAt    *time.Time `db:"first_access_at" json:"first_access_at"`
	WelcomeSentAt    *time.Time `db:"welcome_sent_at" json:"welcome_sent_at"`
	RemovedAt        *time.Time `db:"removed_at" json:"removed_at"`
	SeenRunID        *int64     `db:"seen_run_id" json:"-"`
	CreatedAt        time.Time  `db:"created_at" json:"created_at"`
	UpdatedAt        time.Time  `db:"updated_at" json:"updated_at"`
}

// Rules returns what the domain rules need of the end user.
func (u EndUser) Rules() rules.EndUser {
	return rules.EndUser{
		Source:               u.Source,
		Email:                u.Email,
		Mobile:               u.Mobile,
		SelfServe:            u.SelfServe,
		Enabled:              u.Enabled,
		Removed:              u.RemovedAt != nil,
		Privileged:           u.Privileged,
		LockedOut:            u.LockedOut,
		LockedOutAt:          timeOrZero(u.LockedOutAt),
		PasswordNeverExpires: u.PasswordNeverExpires,
		PasswordExpiresAt:    timeOrZero(u.PasswordExpiresAt),
		FirstAccessAt:        timeOrZero(u.FirstAccessAt),
		WelcomeSentAt:        timeOrZero(u.WelcomeSentAt),
	}
}

// RunStatus is the state of a sync run.
type RunStatus string

// The run states. needs_confirmation: the run finished its enumeration but
// would remove more than the allowed share of users, so it removed nothing
// and waits for a technician to confirm.
const (
	RunQueued            RunStatus = "queued"
	RunRunning           RunStatus = "running"
	RunSucceeded         RunStatus = "succeeded"
	RunFailed            RunStatus = "failed"
	RunNeedsConfirmation RunStatus = "needs_confirmation"
)

// Finished reports whether the run is over.
func (s RunStatus) Finished() bool { return s != RunQueued && s != RunRunning }

// RunMode is full or incremental.
type RunMode string

// The run modes.
const (
	ModeFull        RunMode = "full"
	ModeIncremental RunMode = "incremental"
)

// Problem is a record-level problem a run reports (an invalid row, a phone
// number that could not be parsed).
type Problem = connectors.InvalidRecord

// SyncRun is one run of a connection's sync.
type SyncRun struct {
	ID           int64     `db:"id" json:"id"`
	TenantID     int64     `db:"tenant_id" json:"tenant_id"`
	ConnectionID int64     `db:"connection_id" json:"connection_id"`
	Mode         RunMode   `db:"mode" json:"mode"`
	Trigger      string    `db:"trigger" json:"trigger"`
	Status       RunStatus `db:"status" json:"status"`
	Resume       string    `db:"resume" json:"-"`
	Pages        int       `db:"pages" json:"pages"`
	Processed    int       `db:"processed" json:"processed"`
	Created      int       `db:"created" json:"created"`
	Updated      int       `db:"updated" json:"updated"`
	Unchanged    int       `db:"unchanged" json:"unchanged"`
	Removed      int       `db:"removed" json:"removed"`
	Linked       int       `db:"linked" json:"linked"` // joined to a hybrid counterpart (store links.go); not also created or updated
	Invalid      int       `db:"invalid" json:"invalid"`
	// Unidentified counts the invalid records whose key could not be read:
	// a full run with any removes nobody.
	Unidentified    int  `db:"unidentified" json:"unidentified"`
	PendingRemovals int  `db:"pending_removals" json:"pending_removals"`
	ConfirmRemovals bool `db:"confirm_removals" json:"confirm_removals"`
	// ProblemsJSON holds the JSON list of problems; see Problems.
	ProblemsJSON string     `db:"problems" json:"-"`
	Error        string     `db:"error" json:"error,omitempty"`
	CreatedAt    time.Time  `db:"created_at" json:"created_at"`
	StartedAt    *time.Time `db:"started_at" json:"started_at"`
	HeartbeatAt  *time.Time `db:"heartbeat_at" json:"-"`
	FinishedAt   *time.Time `db:"finished_at" json:"finished_at"`
	DurationMS   int64      `db:"duration_ms" json:"duration_ms"`
	// Lease is the token of the process working on the run ("" when none
	// holds it); see StartRun.
	Lease string `db:"lease" json:"-"`
}

// Problems decodes the run's record-level problems.
func (r SyncRun) Problems() []Problem {
	var p []Problem
	_ = json.Unmarshal([]byte(r.ProblemsJSON), &p)
	return p
}

// Channel is a notice's delivery channel.
type Channel string

// The channels.
const (
	ChannelEmail Channel = "email"
	ChannelSMS   Channel = "sms"
)

// NoticeStatus is the state of a ledger row.
type NoticeStatus string

// The ledger states.
const (
	NoticePending NoticeStatus = "pending"
	NoticeSending NoticeStatus = "sending"
	NoticeSent    NoticeStatus = "sent"
	NoticeFailed  NoticeStatus = "failed"
	NoticeSkipped NoticeStatus = "skipped"
)

// Notice is a ledger row: one notice to one end user on one channel.
type Notice struct {
	ID        int64            `db:"id" json:"id"`
	TenantID  int64            `db:"tenant_id" json:"tenant_id"`
	EndUserID int64            `db:"end_user_id" json:"end_user_id"`
	Kind      rules.NoticeKind `db:"kind" json:"kind"`
	Occasion  string           `db:"occasion" json:"occasion"`
	Channel   Channel          `db:"channel" json:"channel"`
	Status    NoticeStatus     `db:"status" json:"status"`
	Attempts  int              `db:"attempts" json:"attempts"`
	Error     string           `db:"error" json:"error,omitempty"`
	CreatedAt time.Time        `db:"created_at" json:"created_at"`
	UpdatedAt time.Time        `db:"updated_at" json:"updated_at"`
	SentAt    *time.Time       `db:"sent_at" json:"sent_at"`
}

// AuditEntry is one change recorded in the audit log.
type AuditEntry struct {
	ID         int64     `db:"id" json:"id"`
	TenantID   int64     `db:"tenant_id" json:"tenant_id"`
	LoginID    *int64    `db:"login_id" json:"login_id,omitempty"`
	Actor      string    `db:"actor" json:"actor"`
	Action     string    `db:"action" json:"action"`
	ObjectType string    `db:"object_type" json:"object_type"`
	ObjectID   string    `db:"object_id" json:"object_id"`
	Before     string    `db:"before" json:"before"`
	After      string    `db:"after" json:"after"`
	At         time.Time `db:"at" json:"at"`
}
