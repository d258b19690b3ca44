package selfserve

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"selfserve/connectors"
	"selfserve/internal/passwords"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// Policy is what a new password must meet, as shown to the end user before
// they type it, and how they verify.
type Policy struct {
	MinLength    int                `json:"min_length"`
	Complexity   bool               `json:"complexity"`
	History      int                `json:"history"`
	Verification rules.Verification `json:"verification"`
}

// baselinePolicy applies where no directory says otherwise.
var baselinePolicy = connectors.PasswordPolicy{MinLength: 8}

// policyTTL is how long a tenant's domain-level policy is kept: the policy
// endpoint is public, so it must not reach the directories on every call.
const policyTTL = 5 * time.Minute

type policyEntry struct {
	at time.Time
	p  connectors.PasswordPolicy
}

type policyCache struct {
	mu      sync.Mutex
	entries map[int64]policyEntry
}

// TenantPolicy is the domain-level policy of the tenant named tenantName:
// the strictest of its self-serve directories' domain policies.
func (s *Service) TenantPolicy(ctx context.Context, tenantName string) (Policy, error) {
	t, err := s.Tenant(ctx, tenantName)
	if err != nil {
		return Policy{}, err
	}
	p := s.domainPolicy(ctx, t)
	return policyOf(t, p), nil
}

// GrantPolicy is the policy that applies to the end user of an unused
// grant (AD: their fine-grained policy if any).
func (s *Service) GrantPolicy(ctx context.Context, tenantName, grant string) (Policy, error) {
	t, err := s.Tenant(ctx, tenantName)
	if err != nil {
		return Policy{}, err
	}
	hash, ok := grantHash(strings.TrimSpace(grant))
	if !ok {
		return Policy{}, errBadGrant
	}
	g, err := s.opt.Store.UsableGrant(ctx, t.ID, hash, s.opt.Now())
	if err != nil {
		return Policy{}, errBadGrant
	}
	return s.endUserPolicy(ctx, t, g.EndUser)
}

func policyOf(t store.Tenant, p connectors.PasswordPolicy) Policy {
	return Policy{MinLength: p.MinLength, Complexity: p.Complexity, History: p.History, Verification: cmpVerification(t.Verification)}
}

// domainPolicy asks each self-serve directory connection of the tenant for
// its domain-level policy, at most every policyTTL.
func (s *Service) domainPolicy(ctx context.Context, t store.Tenant) connectors.PasswordPolicy {
	s.policy.mu.Lock()
	defer s.policy.mu.Unlock()
	if e, ok := s.policy.entries[t.ID]; ok && time.Since(e.at) < policyTTL {
		return e.p
	}
	p := baselinePolicy
	conns, err := s.opt.Store.Connections(ctx, t.ID)
	if err != nil {
		return p
	}
	for _, c := range conns {
		if !c.EnableSelfServe || (c.Kind != connectors.KindAD && c.Kind != connectors.KindAzure) || s.opt.Directories == nil {
			continue
		}
		w, err := s.opt.Directories.Writer(ctx, c)
		if err != nil {
			continue
		}
		if dp, err := w.Policy(ctx, connectors.Account{}); err == nil {
			p = stricter(p, dp)
		}
	}
	s.policy.entries[t.ID] = policyEntry{at: time.Now(), p: p}
	return p
}

func stricter(a, b connectors.PasswordPolicy) connectors.PasswordPolicy {
	return connectors.PasswordPolicy{MinLength: max(a.MinLength, b.MinLength), Complexity: a.Complexity || b.Complexity, History: max(a.History, b.History)}
}

// endUserPolicy is the policy of the end user's directory account.
func (s *Service) endUserPolicy(ctx context.Context, t store.Tenant, u store.EndUser) (Policy, error) {
	r, err := s.routeOf(ctx, t, u)
	if err != nil {
		return Policy{}, err
	}
	return policyOf(t, s.accountPolicy(ctx, r)), nil
}

// accountPolicy is the route's account policy, or the baseline when the
// directory cannot say.
func (s *Service) accountPolicy(ctx context.Context, r route) connectors.PasswordPolicy {
	if r.refusal != "" || r.conn == nil {
		return baselinePolicy
	}
	w, err := s.writer(ctx, r)
	if err != nil {
		return baselinePolicy
	}
	p, err := w.Policy(ctx, r.acct)
	if err != nil {
		return baselinePolicy
	}
	return p
}

// checkPassword checks a new password before the directory is asked
// (package passwords: the account's policy, its names, the blocklist). It
// returns the refusal, or nil.
func (s *Service) checkPassword(ctx context.Context, w connectors.PasswordWriter, r route, pw string) *passwords.RuleError {
	p := baselinePolicy
	if w != nil {
		if dp, err := w.Policy(ctx, r.acct); err == nil {
			p = dp
		}
	}
	var re *passwords.RuleError
	if err := passwords.Check(p, pw, passwords.IdentityOf(r.acct)); errors.As(err, &re) {
		return re
	}
	return nil
}
