// Package graph is the Entra ID (Azure AD / Office 365) connector, kind
// "azure". It reads users from Microsoft Graph v1.0 with the
// msgraph-sdk-go request builders and request adapter, signed in as an
// application with client credentials (azidentity).
//
// # Full listing and delta cursor
//
// Users lists GET /users with $select of exactly the properties it needs and
// $top=999, one Graph page per connectors.UserPage. Before the first page it
// asks /users/delta?$deltatoken=latest for a delta link ("sync from now", no
// data): the last page's Cursor is that link, so the next incremental run
// sees every change made since the listing began (changes during the listing
// are replayed, which is harmless: upserts are idempotent). /users is used
// rather than a /users/delta initial round because delta ignores $top and
// pages in much smaller pages. Every page but the last carries a Resume
// holding the @odata.nextLink and the delta link; a run resumed from it
// continues where it stopped, and starts over if Graph no longer honours the
// link.
//
// Changes follows a stored delta link through its @odata.nextLinks to the
// final page, whose Cursor is the new @odata.deltaLink. @removed entries
// become Removals: reason "deleted" is permanent, "changed" (soft-deleted,
// restorable for 30 days) is not. 410 Gone or a syncStateNotFound,
// syncStateInvalid or resyncRequired error returns an error wrapping
// connectors.ErrResyncRequired.
//
// # Mapping
//
// ExternalID is the object id; Username is onPremisesSamAccountName, else
// the UPN's local part; Email is mail (never the UPN); Mobile is mobilePhone
// (businessPhones are not mobiles), or, with fetch_auth_phone, the user's
// registered mobile or alternate-mobile authentication phone. Enabled is
// accountEnabled; Graph does not expose lockout on users, so LockedOut is
// false.
//
// Password expiry of cloud users is lastPasswordChangeDateTime plus the
// passwordValidityPeriodInDays of the UPN's domain (GET /domains once per
// run; unset means 90 days; 2147483647 means never); passwordPolicies
// containing DisablePasswordExpiration means never. For users synced from
// on-premises AD (onPremisesSyncEnabled) AD decides: the connector sets
// SyncedFromOnPremises and ImmutableID, reports PasswordLastSet, and leaves
// the expiry unknown (zero, not "never"); the sync engine takes it from the
// linked AD user. A user without userPrincipalName or id, with a malformed
// lastPasswordChangeDateTime, or (cloud users) whose UPN domain is not among
// the tenant's domains, is reported as an InvalidRecord with the reason.
//
// # Throttling and errors
//
// The SDK's retry handler rides out 429/503/504 answers whose Retry-After is
// at most 10 s (30 s in all, 3 retries); a longer wait, or retries run out,
// surfaces as *connectors.RateLimitError so the worker waits without holding
// a slot or burning a retry. Each connection has a client-side budget
// (requests_per_second, burst twice that) spent by every request, retries
// included. Graph's error envelope maps to typed errors: 401/403 to
// ErrUnauthorized (with Graph's code, message and the permission to grant),
// AADSTS errors of the token endpoint to ErrUnauthorized (secret) or
// ErrInvalidConfig (tenant, client id), HTML pages and truncated or
// malformed bodies to ErrBadResponse, 5xx to ErrUnavailable.
//
// # Self-serve write-back
//
// The source is a connectors.PasswordWriter: SetPassword resets a cloud-only
// user's password with PATCH /users/{id} passwordProfile (application
// permission User-PasswordProfile.ReadWrite.All) and refuses users synced
// from on-premises AD, whose passwords go to the linked AD account; Unlock
// is unsupported (Entra ID has no lockout to clear); Policy is Entra ID's
// documented policy; CheckWriteAccess tells "test connection" whether the
// app's token carries that permission. writeback.go has the details.
//
// Only this package imports the Graph SDK, and only the users and domains
// request builders, never the root package (which compiles every builder of
// Graph); the fake server in fakegraph uses the standard library alone.
package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/domains"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"selfserve/connectors"
)

// userSelect is the $select of every user request: exactly what the
// connector reads.
var userSelect = []string{
	"id", "userPrincipalName", "mail", "mobilePhone", "businessPhones", "accountEnabled",
	"lastPasswordChangeDateTime", "passwordPolicies", "onPremisesSyncEnabled",
	"onPremisesImmutableId", "onPremisesSamAccountName", "givenName", "surname", "displayName",
}

var (
	_ connectors.UserSource  = (*source)(nil)
	_ connectors.DeltaSource = (*source)(nil)
	_ connectors.Pinger      = (*source)(nil)
)

// source is an opened azure connection.
type source struct {
	id             string
	logger         *slog.Logger
	graphURL       *url.URL
	pageSize       int32
	fetchAuthPhone bool
	adapter        abs.RequestAdapter
	transport      *http.Transport
	cred           azcore.TokenCredential // for CheckWriteAccess
}

// Close releases idle connections.
func (s *source) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

// userCollection is a page of /users or /users/delta.
type userCollection struct {
	Value     []graphUser `json:"value"`
	NextLink  string      `json:"@odata.nextLink"`
	DeltaLink string      `json:"@odata.deltaLink"`
}

// resumeState is a UserPage.Resume of a full listing.
type resumeState struct {
	Next  string `json:"next"`
	Delta string `json:"delta"`
}

// Users lists every user of the tenant, one Graph page per UserPage.
func (s *source) Users(ctx context.Context, resume string) iter.Seq2[connectors.UserPage, error] {
	return func(yield func(connectors.UserPage, error) bool) {
		started := time.Now()
		fail := func(err error) { yield(connectors.UserPage{}, err) }
		if err := ctx.Err(); err != nil {
			fail(fmt.Errorf("azure connection %s: %w", s.id, err))
			return
		}
		rs, resuming := s.parseResume(resume)
		doms, err := s.loadDomains(ctx)
		if err != nil {
			fail(err)
			return
		}
		holders, err := s.readRoleHolders(ctx)
		if err != nil {
			fail(err)
			return
		}
		if !resuming {
			if rs.Delta, err = s.latestDeltaLink(ctx); err != nil {
				fail(err)
				return
			}
		}
		var stats runStats
		link := rs.Next
		for {
			var page userCollection
			if link == "" {
				err = s.getPage(ctx, stats.pages+1, "GET /users", s.firstUsersRequest(ctx), &page)
			} else {
				err = s.getPage(ctx, stats.pages+1, "GET /users (next page)", s.usersRequest(ctx, link), &page)
			}
			if err != nil && resuming && stats.pages == 0 && (errors.Is(err, connectors.ErrResyncRequired) || errors.Is(err, connectors.ErrInvalidConfig) || errors.Is(err, connectors.ErrNotFound)) {
				// Graph no longer honours the stored next link: start over.
				s.logger.Warn("cannot resume the user listing; starting over", "error", err)
				resuming, link = false, ""
				if rs.Delta, err = s.latestDeltaLink(ctx); err != nil {
					fail(err)
					return
				}
				continue
			}
			if err != nil {
				fail(err)
				return
			}
			up, err := s.convertPage(ctx, doms, holders, page.Value, false)
			if err != nil {
				fail(err)
				return
			}
			stats.add(up)
			if page.NextLink != "" {
				if err := s.checkLink("@odata.nextLink", page.NextLink); err != nil {
					fail(err)
					return
				}
				b, _ := json.Marshal(resumeState{Next: page.NextLink, Delta: rs.Delta}) // strings always marshal
				up.Resume = string(b)
			} else {
				up.Cursor = rs.Delta
				up.Privileged = holders.set()
			}
			if !yield(up, nil) {
				return
			}
			if page.NextLink == "" {
				stats.log(s.logger, "user listing complete", started)
				return
			}
			link = page.NextLink
		}
	}
}

// Changes yields the users changed since cursor, a delta link that an
// earlier Users or Changes run returned as its last page's Cursor.
func (s *source) Changes(ctx context.Context, cursor string) iter.Seq2[connectors.UserPage, error] {
	return func(yield func(connectors.UserPage, error) bool) {
		started := time.Now()
		fail := func(err error) { yield(connectors.UserPage{}, err) }
		if err := ctx.Err(); err != nil {
			fail(fmt.Errorf("azure connection %s: %w", s.id, err))
			return
		}
		if err := s.checkDeltaLink(cursor); err != nil {
			fail(err)
			return
		}
		doms, err := s.loadDomains(ctx)
		if err != nil {
			fail(err)
			return
		}
		holders, err := s.readRoleHolders(ctx)
		if err != nil {
			fail(err)
			return
		}
		var stats runStats
		link := cursor
		for {
			var page userCollection
			if err := s.getPage(ctx, stats.pages+1, "GET /users/delta", s.deltaRequest(ctx, link), &page); err != nil {
				fail(err)
				return
			}
			up, err := s.convertPage(ctx, doms, holders, page.Value, true)
			if err != nil {
				fail(err)
				return
			}
			stats.add(up)
			switch {
			case page.NextLink != "":
				if err := s.checkLink("@odata.nextLink", page.NextLink); err != nil {
					fail(err)
					return
				}
			case page.DeltaLink != "":
				if err := s.checkDeltaLink(page.DeltaLink); err != nil {
					fail(fmt.Errorf("%w: %w", connectors.ErrBadResponse, err))
					return
				}
				up.Cursor = page.DeltaLink
				up.Privileged = holders.set()
			default:
				fail(fmt.Errorf("%w: GET /users/delta: the page has neither @odata.nextLink nor @odata.deltaLink", connectors.ErrBadResponse))
				return
			}
			if !yield(up, nil) {
				return
			}
			if page.NextLink == "" {
				stats.log(s.logger, "user changes complete", started)
				return
			}
			link = page.NextLink
		}
	}
}

// Ping gets a token and reads what a sync reads: the domains, one user and
// the directory role assignments (a missing RoleManagement.Read.Directory
// is named).
func (s *source) Ping(ctx context.Context) error {
	if _, err := s.loadDomains(ctx); err != nil {
		return fmt.Errorf("azure connection %s: %w", s.id, err)
	}
	top := int32(1)
	info, err := users.NewUsersRequestBuilderInternal(map[string]string{}, s.adapter).ToGetRequestInformation(ctx,
		&users.UsersRequestBuilderGetRequestConfiguration{QueryParameters: &users.UsersRequestBuilderGetQueryParameters{Select: []string{"id"}, Top: &top}})
	if err != nil {
		return fmt.Errorf("azure connection %s: building GET /users: %w", s.id, err)
	}
	var page userCollection
	if err := s.get(ctx, "GET /users", info, &page); err != nil {
		return fmt.Errorf("azure connection %s: %w", s.id, err)
	}
	if err := s.pingRoles(ctx); err != nil {
		return fmt.Errorf("azure connection %s: %w", s.id, err)
	}
	return nil
}

func (s *source) firstUsersRequest(ctx context.Context) *abs.RequestInformation {
	top := s.pageSize
	info, err := users.NewUsersRequestBuilderInternal(map[string]string{}, s.adapter).ToGetRequestInformation(ctx,
		&users.UsersRequestBuilderGetRequestConfiguration{QueryParameters: &users.UsersRequestBuilderGetQueryParameters{Select: userSelect, Top: &top}})
	if err != nil {
		return nil // get reports a nil request
	}
	return info
}

func (s *source) usersRequest(ctx context.Context, link string) *abs.RequestInformation {
	info, err := users.NewUsersRequestBuilder(link, s.adapter).ToGetRequestInformation(ctx, nil)
	if err != nil {
		return nil
	}
	return info
}

func (s *source) deltaRequest(ctx context.Context, link string) *abs.RequestInformation {
	info, err := users.NewDeltaRequestBuilder(link, s.adapter).ToGetRequestInformation(ctx, nil)
	if err != nil {
		return nil
	}
	return info
}

// latestDeltaLink asks for a delta link of "now" without data. Graph
// carries the $select of this first request into later rounds.
func (s *source) latestDeltaLink(ctx context.Context) (string, error) {
	link := s.graphURL.String() + "/users/delta?$select=" + strings.Join(userSelect, ",") + "&$deltatoken=latest"
	var page userCollection
	if err := s.get(ctx, "GET /users/delta?$deltatoken=latest", s.deltaRequest(ctx, link), &page); err != nil {
		return "", err
	}
	if page.DeltaLink == "" {
		return "", fmt.Errorf("%w: GET /users/delta?$deltatoken=latest: no @odata.deltaLink in the answer", connectors.ErrBadResponse)
	}
	if err := s.checkDeltaLink(page.DeltaLink); err != nil {
		return "", fmt.Errorf("%w: %w", connectors.ErrBadResponse, err)
	}
	return page.DeltaLink, nil
}

// parseResume decodes a Resume of this connector; anything else starts over.
func (s *source) parseResume(resume string) (resumeState, bool) {
	if resume == "" {
		return resumeState{}, false
	}
	var rs resumeState
	if err := json.Unmarshal([]byte(resume), &rs); err != nil || rs.Next == "" || rs.Delta == "" ||
		s.checkLink("next", rs.Next) != nil || s.checkDeltaLink(rs.Delta) != nil {
		s.logger.Warn("ignoring a resume position this connector did not issue; listing from the start")
		return resumeState{}, false
	}
	return rs, true
}

// checkLink verifies that a link Graph returned (or we stored) points at the
// configured Graph service, so the token is never sent elsewhere.
func (s *source) checkLink(what, link string) error {
	u, err := url.Parse(link)
	if err != nil || !strings.EqualFold(u.Scheme, s.graphURL.Scheme) || !strings.EqualFold(u.Host, s.graphURL.Host) ||
		!strings.HasPrefix(u.Path, s.graphURL.Path+"/") {
		return fmt.Errorf("%w: %s %q is not a link of %s", connectors.ErrBadResponse, what, link, s.graphURL)
	}
	return nil
}

// checkDeltaLink verifies that cursor is a users delta link of the
// configured Graph service; anything else needs a full resync.
func (s *source) checkDeltaLink(cursor string) error {
	if cursor == "" {
		return fmt.Errorf("%w: azure connection %s has no delta cursor yet", connectors.ErrResyncRequired, s.id)
	}
	u, err := url.Parse(cursor)
	if err != nil || s.checkLink("cursor", cursor) != nil || !isUsersDeltaPath(strings.TrimPrefix(u.Path, s.graphURL.Path)) {
		return fmt.Errorf("%w: azure connection %s: the stored cursor is not a users delta link of %s", connectors.ErrResyncRequired, s.id, s.graphURL)
	}
	return nil
}

// isUsersDeltaPath reports whether path (below graph_url) is the users
// delta function, in any of the forms Graph writes in its links: /users/delta,
// /users/delta(), /users/microsoft.graph.delta and /users/microsoft.graph.delta().
func isUsersDeltaPath(path string) bool {
	fn, ok := strings.CutPrefix(path, "/users/")
	if !ok {
		return false
	}
	fn = strings.TrimSuffix(strings.TrimPrefix(fn, "microsoft.graph."), "()")
	return fn == "delta"
}

// runStats counts a run's pages for its closing log line.
type runStats struct {
	pages, users, invalid, removed int
}

func (r *runStats) add(p connectors.UserPage) {
	r.pages++
	r.users += len(p.Users)
	r.invalid += len(p.Invalid)
	r.removed += len(p.Removed)
}

func (r *runStats) log(logger *slog.Logger, msg string, started time.Time) {
	logger.Info(msg, "pages", r.pages, "users", r.users, "invalid", r.invalid, "removed", r.removed, "duration", time.Since(started).Round(time.Millisecond))
}

// domainPolicy is the password validity of the tenant's domains, by
// lower-cased name; nil means unset (90 days).
type domainPolicy map[string]*int32

// loadDomains reads GET /domains (every page).
func (s *source) loadDomains(ctx context.Context) (domainPolicy, error) {
	info, err := domains.NewDomainsRequestBuilderInternal(map[string]string{}, s.adapter).ToGetRequestInformation(ctx,
		&domains.DomainsRequestBuilderGetRequestConfiguration{QueryParameters: &domains.DomainsRequestBuilderGetQueryParameters{
			Select: []string{"id", "passwordValidityPeriodInDays"},
		}})
	if err != nil {
		return nil, fmt.Errorf("azure connection %s: building GET /domains: %w", s.id, err)
	}
	policy := domainPolicy{}
	for {
		var page struct {
			Value []struct {
				ID                           string `json:"id"`
				PasswordValidityPeriodInDays *int32 `json:"passwordValidityPeriodInDays"`
			} `json:"value"`
			NextLink string `json:"@odata.nextLink"`
		}
		if err := s.get(ctx, "GET /domains", info, &page); err != nil {
			return nil, err
		}
		for _, d := range page.Value {
			policy[strings.ToLower(d.ID)] = d.PasswordValidityPeriodInDays
		}
		if page.NextLink == "" {
			break
		}
		if err := s.checkLink("@odata.nextLink", page.NextLink); err != nil {
			return nil, err
		}
		if info, err = domains.NewDomainsRequestBuilder(page.NextLink, s.adapter).ToGetRequestInformation(ctx, nil); err != nil {
			return nil, fmt.Errorf("azure connection %s: building GET /domains: %w", s.id, err)
		}
	}
	if len(policy) == 0 {
		return nil, fmt.Errorf("%w: GET /domains returned no domain", connectors.ErrBadResponse)
	}
	return policy, nil
}

// authPhone returns the user's registered mobile (or alternate mobile)
// authentication phone, "" when there is none.
func (s *source) authPhone(ctx context.Context, id string) (string, error) {
	info, err := users.NewUsersRequestBuilderInternal(map[string]string{}, s.adapter).ByUserId(id).Authentication().PhoneMethods().ToGetRequestInformation(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("azure connection %s: building GET phoneMethods: %w", s.id, err)
	}
	var page struct {
		Value []struct {
			PhoneNumber string `json:"phoneNumber"`
			PhoneType   string `json:"phoneType"`
		} `json:"value"`
	}
	if err := s.get(ctx, "GET /users/{id}/authentication/phoneMethods", info, &page); err != nil {
		if errors.Is(err, connectors.ErrNotFound) {
			return "", nil // deleted since the page was read
		}
		return "", err
	}
	for _, want := range []string{"mobile", "alternateMobile"} {
		for _, m := range page.Value {
			if strings.EqualFold(m.PhoneType, want) && m.PhoneNumber != "" {
				return m.PhoneNumber, nil
			}
		}
	}
	return "", nil
}
