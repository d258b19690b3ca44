package connectors

import (
	"context"
	"errors"
)

// Account names one directory account for a write-back: the end user's
// identity as the sync stored it. A writer finds the account by ExternalID
// (AD objectGUID, Entra object id) and uses the other fields only in
// messages.
type Account struct {
	ExternalID  string `json:"external_id"`
	Username    string `json:"username"`
	UPN         string `json:"upn"`
	DisplayName string `json:"display_name"`
}

// PasswordPolicy is what a directory demands of a new password, for the
// checks made before the directory is asked and for the policy shown to the
// end user. Zero values mean "no such rule".
type PasswordPolicy struct {
	MinLength int `json:"min_length"`
	// Complexity is AD's "password must meet complexity requirements": three
	// of upper case, lower case, digits, symbols, and no part of the account
	// or display name.
	Complexity bool `json:"complexity"`
	// History is how many earlier passwords may not be reused.
	History int `json:"history"`
}

// PasswordWriter is a source that can write a password back to the
// directory and clear a lockout (self-serve). Implementations never log the
// password.
type PasswordWriter interface {
	Source
	// Policy returns the policy that applies to the account (AD: its
	// fine-grained policy if one applies, else the domain's); an empty
	// Account asks for the domain-level policy.
	Policy(ctx context.Context, acct Account) (PasswordPolicy, error)
	// SetPassword replaces the account's password. A password the directory
	// refuses returns a *PasswordRejectedError.
	SetPassword(ctx context.Context, acct Account, newPassword string) error
	// Unlock clears the account's lockout. Directories without lockouts to
	// clear return an error wrapping ErrUnsupported.
	Unlock(ctx context.Context, acct Account) error
}

// ErrUnsupported: the directory cannot do what was asked (Entra has no
// lockout to clear; a file source cannot write passwords). Permanent.
var ErrUnsupported = errors.New("not supported by this directory")

// PasswordRejectedError is the directory's refusal of a new password (policy:
// length, complexity, history, minimum age). Reason is in plain words for the
// end user.
type PasswordRejectedError struct {
	Reason string
}

// Error implements error.
func (e *PasswordRejectedError) Error() string { return "password rejected: " + e.Reason }

// WriteAccessChecker is a PasswordWriter that can tell a technician's "test
// connection" whether its credential may write passwords and clear
// lockouts, without writing anything.
type WriteAccessChecker interface {
	// CheckWriteAccess returns nil when the credential holds the rights
	// SetPassword and Unlock need, else an error wrapping ErrUnauthorized
	// that names what is missing and how to grant it.
	CheckWriteAccess(ctx context.Context) error
}
