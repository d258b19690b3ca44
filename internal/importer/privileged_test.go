package importer_test

import (
	"context"
	"encoding/json"
	"iter"
	"strings"
	"testing"

	"selfserve/connectors"
	"selfserve/internal/importer"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// scriptedSource is a directory whose users and privileged set the test
// edits between syncs: a full listing yields every user, an incremental one
// only those marked changed; both end with the complete privileged set when
// it is known, as the Entra ID connector does.
type scriptedSource struct {
	users   []connectors.User
	changed map[string]bool
	holders map[string]string // nil: unknown
}

func (s *scriptedSource) Close() error { return nil }

func (s *scriptedSource) page(all bool) connectors.UserPage {
	p := connectors.UserPage{Cursor: "c", Privileged: s.holders}
	for _, u := range s.users {
		if all || s.changed[u.ExternalID] {
			p.Users = append(p.Users, u)
		}
	}
	return p
}

func (s *scriptedSource) Users(context.Context, string) iter.Seq2[connectors.UserPage, error] {
	return func(yield func(connectors.UserPage, error) bool) { yield(s.page(true), nil) }
}

func (s *scriptedSource) Changes(context.Context, string) iter.Seq2[connectors.UserPage, error] {
	return func(yield func(connectors.UserPage, error) bool) { yield(s.page(false), nil) }
}

// TestPrivilegeSync: users imported privileged are flagged with their
// reason and audited; a role granted or removed that only the source's
// privileged set shows is applied by an incremental run, with an audit entry
// for each change; users the source could not classify are stored
// privileged and named among the run's problems.
func TestPrivilegeSync(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		ctx := context.Background()
		b := setup(t, open, 10)
		src := &scriptedSource{}
		for _, name := range []string{"ann", "bob", "cat"} {
			src.users = append(src.users, connectors.User{ExternalID: name, Username: name, Email: name + "@contoso.example", Mobile: "+447400123456", Enabled: true})
		}
		src.users[0].Privileged, src.users[0].PrivilegedReason = true, "holds the Entra ID directory role Global Administrator"
		src.holders = map[string]string{"ann": src.users[0].PrivilegedReason}
		conn, _, err := b.st.UpsertConnection(ctx, store.Connection{TenantID: b.tenant.ID, CustomerID: &b.customer.ID, Name: "contoso-entra",
			Kind: connectors.KindAzure, Settings: json.RawMessage(`{}`), EnableSelfServe: true}, false)
		must(t, err)
		b.im.Registry = connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{connectors.KindAzure: func() connectors.Config {
			return &openConfig{func() connectors.Source { return src }}
		}})
		sync := func(full bool) store.SyncRun {
			t.Helper()
			res, err := b.im.Sync(ctx, importer.Request{TenantID: b.tenant.ID, ConnectionID: conn.ID, Full: full, Trigger: "test"})
			must(t, err)
			return res.Run
		}
		audits := func() []store.AuditEntry {
			t.Helper()
			es, err := b.st.AuditLog(ctx, b.tenant.ID, store.AuditFilter{Action: "end_user.privileged"})
			must(t, err)
			return es
		}
		sync(true)
		us := b.users(t)
		if !us["ann"].Privileged || us["ann"].PrivilegedReason != src.holders["ann"] || us["bob"].Privileged {
			t.Fatalf("after the full run: ann %+v, bob %+v", us["ann"], us["bob"])
		}
		if es := audits(); len(es) != 1 || es[0].ObjectID != itoa(us["ann"].ID) || es[0].Actor != "sync:contoso-entra" || !strings.Contains(es[0].After, `"privileged":true`) {
			t.Fatalf("audit after the full run: %+v", es)
		}
		// notices go, self-serve does not
		tn := b.tenant.Rules()
		if rules.Active(tn, us["ann"].Rules()) || !rules.NoticesAllowed(tn, us["ann"].Rules()) {
			t.Error("a privileged end user is active, or gets no notices")
		}

		// Roles move without the users changing: ann loses hers, bob gets one.
		src.holders = map[string]string{"bob": "holds the Entra ID directory role User Administrator"}
		if run := sync(false); run.Mode != store.ModeIncremental {
			t.Fatalf("second run: %s", run.Mode)
		}
		us = b.users(t)
		if us["ann"].Privileged || us["ann"].PrivilegedReason != "" || !us["bob"].Privileged || us["bob"].PrivilegedReason != src.holders["bob"] {
			t.Fatalf("after the incremental run: ann %+v, bob %+v", us["ann"], us["bob"])
		}
		if es := audits(); len(es) != 3 {
			t.Fatalf("%d audit entries, want 3 (ann in, ann out, bob in)", len(es))
		}

		// The source cannot tell: cat is stored privileged and named.
		src.users[2].Privileged, src.users[2].PrivilegeUnknown, src.users[2].PrivilegedReason = true, true, "the app cannot read directory role assignments"
		src.holders = nil
		src.changed = map[string]bool{"cat": true}
		run := sync(false)
		if !b.users(t)["cat"].Privileged || !strings.Contains(run.ProblemsJSON, "could not be classified") || !strings.Contains(run.ProblemsJSON, "cat") {
			t.Errorf("unclassified cat: stored %+v, problems %s", b.users(t)["cat"], run.ProblemsJSON)
		}
		if !b.users(t)["bob"].Privileged {
			t.Error("an unknown holder set unflagged bob")
		}
	})
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
