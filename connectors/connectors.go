// Package connectors is the contract between selfserve and the systems it
// imports from: the source interfaces, the record types they yield, the typed
// errors they return and the registry that opens a stored connection.
//
// A connector lives in its own package below this one (ldap, graph, itglue,
// hudu, connectwise, file). It exports a Config with JSON tags whose Open
// returns a Source. The Config declares its keys (see Keys): a field of type
// redact.Secret is a secret, any other field a setting, and a setting tagged
// `connector:"endpoint"` decides where the connection connects or what it
// trusts. A Source always streams: records arrive page by page
// through an iter.Seq2, so nothing holds a whole directory in memory.
// Capabilities are separate interfaces found by type assertion:
//
//	UserSource      full enumeration of accounts (directory sources)
//	DeltaSource     changes since a cursor (incremental sync)
//	CustomerSource  the PSA's companies/organizations
//	ContactSource   the PSA's contacts of one customer (enrichment)
//	Pinger          a cheap "test connection" with a precise message
//
// Connectors know nothing of the store, of asynq or of the domain rules.
package connectors

import (
	"context"
	"iter"
	"time"
)

// Kind names a connector type as stored on a connection and written in apply
// files.
type Kind string

// The connector kinds selfserve ships.
const (
	KindAD          Kind = "ad"
	KindAzure       Kind = "azure"
	KindFile        Kind = "file"
	KindITGlue      Kind = "itglue"
	KindHudu        Kind = "hudu"
	KindConnectWise Kind = "connectwise"
	// KindAgent is a directory read by an on-premises agent on the
	// customer's network (its directory is "ad" or "file"); the agent
	// pushes its pages, nothing dials the directory from the server.
	KindAgent Kind = "agent"
)

// IsDirectory reports whether connections of this kind import end users with
// passwords (as opposed to PSA kinds, which import customers and contacts).
func (k Kind) IsDirectory() bool {
	return k == KindAD || k == KindAzure || k == KindFile || k == KindAgent
}

// Source is an opened connection to an external system. Close releases what
// Open acquired (network connections, files).
type Source interface {
	Close() error
}

// User is one account as a directory source reports it. Zero times mean
// "unknown" (or, for PasswordExpiresAt, "never" when PasswordNeverExpires is
// set). Mobile is the raw value from the source: the sync engine normalises it
// to E.164 with the customer's region.
type User struct {
	// ExternalID is the stable identifier in the source (AD objectGUID, Entra
	// object id, the file's username or external_id). Never empty.
	ExternalID string
	// Username is the logon name (sAMAccountName, onPremisesSamAccountName).
	Username string
	// UPN is the userPrincipalName.
	UPN         string
	FirstName   string
	LastName    string
	DisplayName string
	Email       string
	Mobile      string

	Enabled   bool
	LockedOut bool
	// LockedOutAt is when the lockout began, if the source knows it.
	LockedOutAt          time.Time
	MustChangePassword   bool
	PasswordNeverExpires bool
	PasswordLastSet      time.Time
	PasswordExpiresAt    time.Time

	// ImmutableID links hybrid identities: base64(objectGUID) for AD users,
	// onPremisesImmutableId for Entra users synced from AD.
	ImmutableID string
	// SyncedFromOnPremises is set for Entra users whose password lives in an
	// on-premises AD (onPremisesSyncEnabled).
	SyncedFromOnPremises bool

	// Privileged is set for an account with administrative power in its
	// directory (AD: adminCount=1 or a member of a protected group; Entra: a
	// directory role holder), and for one the source could not check
	// (PrivilegeUnknown). PrivilegedReason says why, for a technician.
	Privileged       bool
	PrivilegedReason string
	// PrivilegeUnknown is set when the source could not tell whether the
	// account is privileged (the credential cannot read group membership or
	// role assignments): Privileged is then set too, until it can.
	PrivilegeUnknown bool

	// Ref says where the record came from, for error reports (a DN, "row 12").
	Ref string
}

// InvalidRecord is a record the source could not turn into a User, Customer
// or Contact. The run reports it and goes on with the rest.
type InvalidRecord struct {
	// Ref locates the record in the source: a DN, "row 7", an API id.
	Ref string `json:"ref"`
	// Reason says what is wrong with it.
	Reason string `json:"reason"`
	// ExternalID is the record's key (what User.ExternalID would have been)
	// when it could be read for certain despite the problem, "" when not. A
	// full sync counts a keyed invalid record as seen, so its end user is
	// kept; an invalid record without a key means the enumeration is not
	// complete, and the run removes nobody.
	ExternalID string `json:"external_id,omitempty"`
}

// Removal is a user a delta source reports gone.
type Removal struct {
	ExternalID string
	// Permanent is true when the source says the object is gone for good
	// (Graph's "deleted"), false when it may be restored ("changed").
	Permanent bool
}

// UserPage is one page of a user enumeration. The sync engine commits each
// page in one transaction before asking for the next.
type UserPage struct {
	Users   []User
	Invalid []InvalidRecord
	// Removed lists users a delta source reports deleted. Full enumerations
	// leave it empty: the engine computes their removals itself.
	Removed []Removal
	// Resume is the position after this page within the current run, for a
	// run interrupted later to continue from; empty when the source cannot
	// resume (the run then starts over, which is safe: upserts are idempotent).
	Resume string
	// Cursor, when set, is where the next incremental run may start once this
	// page is committed (a Graph deltaLink, an AD USN high-water mark).
	Cursor string
	// Privileged, when non-nil (on the last page of a run only), holds every
	// privileged account of the source at the end of the run, ExternalID to
	// reason: the engine flags them and unflags the connection's other end
	// users. It lets an incremental run see a privilege change that left the
	// account itself unchanged (an Entra directory role assigned or removed).
	Privileged map[string]string
}

// UserSource enumerates every user in the connection's scope.
type UserSource interface {
	Source
	// Users yields pages of users. resume is the Resume of the last committed
	// page of an interrupted run, or "" to start at the beginning. An error
	// ends the iteration; a complete iteration without error is a complete
	// enumeration.
	Users(ctx context.Context, resume string) iter.Seq2[UserPage, error]
}

// DeltaSource yields only what changed since a cursor that an earlier run's
// page returned.
type DeltaSource interface {
	UserSource
	// Changes yields pages of changed users (and Removed ones) since cursor.
	// It returns an error wrapping ErrResyncRequired when the cursor cannot be
	// trusted (expired token, another domain controller, restored database):
	// the engine then runs a full enumeration instead.
	Changes(ctx context.Context, cursor string) iter.Seq2[UserPage, error]
}

// Customer is one company or organization of a PSA or documentation tool.
type Customer struct {
	// ExternalID is the PSA's id for the company.
	ExternalID string
	Name       string
	// Type and Status are the PSA's labels, used by import filters.
	Type   string
	Status string
	Ref    string
}

// CustomerPage is one page of a customer listing.
type CustomerPage struct {
	Customers []Customer
	Invalid   []InvalidRecord
}

// CustomerSource lists a PSA's customers.
type CustomerSource interface {
	Source
	Customers(ctx context.Context) iter.Seq2[CustomerPage, error]
}

// Contact is a person of a PSA. Contacts never create end users: they enrich
// existing ones with email and mobile.
type Contact struct {
	ExternalID         string
	CustomerExternalID string
	FirstName          string
	LastName           string
	// Emails holds the contact's addresses, primary first.
	Emails []string
	// Mobiles holds the raw mobile numbers, preferred first.
	Mobiles   []string
	UpdatedAt time.Time
	Ref       string
}

// ContactPage is one page of a contact listing.
type ContactPage struct {
	Contacts []Contact
	Invalid  []InvalidRecord
}

// ContactSource lists the contacts of one customer.
type ContactSource interface {
	Source
	// Contacts yields the contacts of the customer with the given PSA id.
	// A non-zero since asks only for contacts updated after it, where the
	// API allows it.
	Contacts(ctx context.Context, customerExternalID string, since time.Time) iter.Seq2[ContactPage, error]
}

// Pinger checks that a connection works, for a technician's "test
// connection". Its error says precisely what is wrong.
type Pinger interface {
	Ping(ctx context.Context) error
}
