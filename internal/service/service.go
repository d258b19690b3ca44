// Package service holds the technician-facing operations shared by the
// admin JSON API (package admin) and the web console (package console):
// who may do what (Actor), the changes themselves with their validation,
// tenant scope and audit entry, and the errors they report (Error, which
// both front ends map to a status code). Neither front end holds a rule,
// role check or tenant scope of its own.
package service

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"selfserve/connectors"
	"selfserve/internal/agentserver"
	"selfserve/internal/secretbox"
	"selfserve/internal/store"
)

// Enqueuer hands work to the workers. Each method is called after the
// change that asked for the work was committed.
type Enqueuer interface {
	// EnqueueSync queues the sync of a directory connection for run, a run
	// recorded as queued.
	EnqueueSync(ctx context.Context, run store.SyncRun) error
	// EnqueueCustomerImport queues the customer import of a PSA connection
	// for run, a run recorded as queued.
	EnqueueCustomerImport(ctx context.Context, run store.SyncRun) error
	// EnqueueWelcome queues the welcome email of the tenant's end user;
	// queued is false when one was already queued for it this minute.
	EnqueueWelcome(ctx context.Context, tenantID, endUserID int64) (queued bool, err error)
}

// Service runs the operations against a store.
type Service struct {
	Store *store.Store
	// Enqueuer queues syncs, imports and welcome emails; nil refuses them
	// with 503.
	Enqueuer Enqueuer
	// Logger receives failures the caller is not told the details of.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// StaleAfter lets a new run replace a queued or running one without a
	// heartbeat for that long (default DefaultStaleAfter).
	StaleAfter time.Duration
	// Registry knows the connector kinds, their settings and secrets.
	Registry connectors.Registry
	// Secrets seals connection secrets; nil refuses changes that carry
	// secrets (the server has no SELFSERVE_ENCRYPTION_KEY).
	Secrets *secretbox.Box
	// FileImportDir holds one folder per tenant (<FileImportDir>/<tenant
	// name>/), the only place the files named by connections made or
	// changed by technicians (a file connection's path, a ca_file) may be;
	// empty refuses such files.
	FileImportDir string
	// AllowedPSAHosts are the hosts beyond the vendors' clouds that PSA
	// connections made or changed by technicians may call (see
	// connectors.CheckHost).
	AllowedPSAHosts []string
	// Agents serves agent connections (install codes, state, revocation);
	// nil refuses those operations with 503.
	Agents *agentserver.Service
	// PublicURL is the external base URL of the public listener, for the
	// agent's enrolment command.
	PublicURL string
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

func (s *Service) log() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// Actor is who does an operation, inside which tenant: a technician's login
// or a self-serve app client.
type Actor struct {
	Tenant store.Tenant
	// Login is set for technicians.
	Login store.Login
	// App is set for self-serve app clients.
	App store.AppClient
	// System names an operator acting outside any login (the CLI, as
	// "cli:login"); it may change settings.
	System string
}

// Name names the actor in the audit log.
func (a Actor) Name() string {
	if a.System != "" {
		return a.System
	}
	if a.App.ID != 0 {
		return "app:" + a.App.Name
	}
	return "login:" + a.Login.Email
}

// LoginID is the audit log's login id (nil for apps).
func (a Actor) LoginID() *int64 {
	if a.Login.ID == 0 {
		return nil
	}
	id := a.Login.ID
	return &id
}

// CanChangeSettings reports whether the actor may change tenant settings
// (the self-serve override among them): super and primary logins.
func (a Actor) CanChangeSettings() bool {
	return a.System != "" || a.Login.Role.CanChangeTenantSettings()
}

// RequireSettings is the 403 of an actor that may not change tenant
// settings, or nil.
func (a Actor) RequireSettings() error {
	if a.CanChangeSettings() {
		return nil
	}
	return &Error{Status: http.StatusForbidden, Code: "forbidden",
		Message: fmt.Sprintf("the %s role may not do this: tenant settings and connections need the super or primary role", a.Login.Role)}
}

// Audit records a change of the actor in the audit log, in tx (the
// transaction of the change).
func Audit(ctx context.Context, tx *store.Store, a Actor, action, objectType string, objectID any, before, after any) error {
	return tx.Audit(ctx, store.AuditRecord{
		TenantID:   a.Tenant.ID,
		LoginID:    a.LoginID(),
		Actor:      a.Name(),
		Action:     action,
		ObjectType: objectType,
		ObjectID:   fmt.Sprint(objectID),
		Before:     before,
		After:      after,
	})
}

// MayOpenOps reports whether the actor may open the ops pages (the queue
// dashboard, which shows every tenant's queues) without the ops token: a
// super login of opsTenant, the operator's own tenant ("" lets no login).
func (a Actor) MayOpenOps(opsTenant string) bool {
	return opsTenant != "" && a.Tenant.Name == opsTenant && a.Login.ID != 0 && a.Login.Role == store.RoleSuper
}
