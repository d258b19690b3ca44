package fakegraph_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"selfserve/connectors/graph/fakegraph"
)

type client struct {
	t     *testing.T
	srv   *fakegraph.Server
	token string
}

func newClient(t *testing.T, opts fakegraph.Options) *client {
	t.Helper()
	srv := fakegraph.New(opts)
	t.Cleanup(srv.Close)
	return &client{t: t, srv: srv, token: srv.IssueToken()}
}

// get fetches a Graph URL (absolute, or relative to GraphURL) and decodes the
// JSON body into out (when non-nil).
func (c *client) get(rawURL string, out any) (*http.Response, []byte) {
	c.t.Helper()
	if !strings.HasPrefix(rawURL, "https://") {
		rawURL = c.srv.GraphURL() + rawURL
	}
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.srv.Client().Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, out); err != nil {
			c.t.Fatalf("GET %s: %v in %.200s", rawURL, err, body)
		}
	}
	return resp, body
}

type page struct {
	Value     []map[string]any `json:"value"`
	NextLink  string           `json:"@odata.nextLink"`
	DeltaLink string           `json:"@odata.deltaLink"`
}

// all follows next links from first and returns every entry and the final
// delta link.
func (c *client) all(first string) ([]map[string]any, string) {
	c.t.Helper()
	var out []map[string]any
	link := first
	for link != "" {
		var p page
		resp, body := c.get(link, &p)
		if resp.StatusCode != http.StatusOK {
			c.t.Fatalf("GET %s: %d %s", link, resp.StatusCode, body)
		}
		out = append(out, p.Value...)
		if p.NextLink != "" && !strings.HasPrefix(p.NextLink, c.srv.GraphURL()+"/") {
			c.t.Fatalf("next link %q is not an absolute link to the server", p.NextLink)
		}
		if p.NextLink == "" {
			return out, p.DeltaLink
		}
		link = p.NextLink
	}
	return out, ""
}

func graphErrorCode(t *testing.T, body []byte) (string, string) {
	t.Helper()
	var env struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Error.Code == "" {
		t.Fatalf("not Graph's error envelope: %s", body)
	}
	return env.Error.Code, env.Error.Message
}

func TestListUsersPagingTopAndSelect(t *testing.T) {
	t.Parallel()
	c := newClient(t, fakegraph.Options{Users: 2345})
	users, _ := c.all("/users?$top=999&$select=id,userPrincipalName,accountEnabled")
	if len(users) != 2345 {
		t.Fatalf("got %d users, want 2345", len(users))
	}
	seen := map[string]bool{}
	for _, u := range users {
		if len(u) != 3 {
			t.Fatalf("$select of 3 properties returned %v", u)
		}
		seen[u["id"].(string)] = true
	}
	if len(seen) != 2345 {
		t.Errorf("%d distinct ids for 2345 users", len(seen))
	}

	var p page
	c.get("/users", &p)
	if len(p.Value) != 100 {
		t.Errorf("default page size is %d, want 100", len(p.Value))
	}
	if _, ok := p.Value[0]["accountEnabled"]; ok {
		t.Errorf("accountEnabled is returned without $select: %v", p.Value[0])
	}
	if _, ok := p.Value[0]["userPrincipalName"]; !ok {
		t.Errorf("userPrincipalName is not a default property: %v", p.Value[0])
	}

	for _, top := range []string{"1000", "0", "x"} {
		resp, body := c.get("/users?$top="+top, nil)
		code, msg := graphErrorCode(t, body)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(msg, "Invalid page size specified") {
			t.Errorf("$top=%s: %d %s %s", top, resp.StatusCode, code, msg)
		}
	}
	resp, body := c.get("/users?$select=id,nosuchProperty", nil)
	if _, msg := graphErrorCode(t, body); resp.StatusCode != http.StatusBadRequest || !strings.Contains(msg, "nosuchProperty") {
		t.Errorf("unknown $select: %d %s", resp.StatusCode, body)
	}
}

func TestGeneratedUsersAreDeterministic(t *testing.T) {
	t.Parallel()
	a := fakegraph.New(fakegraph.Options{Users: 50, Seed: 7})
	defer a.Close()
	b := fakegraph.New(fakegraph.Options{Users: 50, Seed: 7})
	defer b.Close()
	other := fakegraph.New(fakegraph.Options{Users: 50, Seed: 8})
	defer other.Close()
	for i := range 50 {
		ua, ub := a.UserAt(i), b.UserAt(i)
		if ua.ID != ub.ID || ua.DisplayName != ub.DisplayName || ua.LastPasswordChangeDateTime != ub.LastPasswordChangeDateTime {
			t.Fatalf("user %d differs between two servers of one seed: %+v %+v", i, ua, ub)
		}
		if ua.ID == other.UserAt(i).ID {
			t.Fatalf("user %d has the same id under another seed", i)
		}
		if _, err := time.Parse(time.RFC3339, ua.LastPasswordChangeDateTime); err != nil {
			t.Fatalf("user %d: %v", i, err)
		}
	}
}

func TestDeltaRounds(t *testing.T) {
	t.Parallel()
	c := newClient(t, fakegraph.Options{Users: 25, DeltaPageSize: 10})
	initial, deltaLink := c.all("/users/delta?$select=id,mail")
	if len(initial) != 25 || deltaLink == "" {
		t.Fatalf("initial round: %d users, delta link %q", len(initial), deltaLink)
	}
	var latest page
	c.get("/users/delta?$select=id,mail&$deltatoken=latest", &latest)
	if len(latest.Value) != 0 || latest.DeltaLink == "" {
		t.Fatalf("$deltatoken=latest returned %v", latest)
	}

	id := c.srv.UserAt(1).ID
	if err := c.srv.UpdateUser(id, func(u *fakegraph.User) { u.Mail = "new@contoso.example" }); err != nil {
		t.Fatal(err)
	}
	if err := c.srv.DeleteUser(c.srv.UserAt(2).ID, false); err != nil {
		t.Fatal(err)
	}
	for _, link := range []string{deltaLink, latest.DeltaLink} {
		changes, next := c.all(link)
		if len(changes) != 2 || next == "" {
			t.Fatalf("change round: %v, delta link %q", changes, next)
		}
		if changes[0]["mail"] != "new@contoso.example" || len(changes[0]) != 2 {
			t.Errorf("changed user is %v, want id and the new mail ($select carried by the token)", changes[0])
		}
		if rm, _ := changes[1]["@removed"].(map[string]any); rm["reason"] != "changed" {
			t.Errorf("soft-deleted user is %v", changes[1])
		}
		if again, _ := c.all(next); len(again) != 0 {
			t.Errorf("a round with no change returned %v", again)
		}
	}
	if users, _ := c.all("/users?$top=999"); len(users) != 24 {
		t.Errorf("/users lists %d users after a deletion, want 24", len(users))
	}

	c.srv.ExpireDeltaTokens()
	resp, body := c.get(deltaLink, nil)
	if code, _ := graphErrorCode(t, body); resp.StatusCode != http.StatusGone || code != "syncStateNotFound" {
		t.Errorf("stale delta token: %d %s", resp.StatusCode, body)
	}
}

func TestAuthAndTokenEndpoint(t *testing.T) {
	t.Parallel()
	c := newClient(t, fakegraph.Options{Users: 1})
	c.token = ""
	resp, body := c.get("/users", nil)
	if code, _ := graphErrorCode(t, body); resp.StatusCode != http.StatusUnauthorized || code != "InvalidAuthenticationToken" {
		t.Errorf("no token: %d %s", resp.StatusCode, body)
	}

	tokenURL := c.srv.AuthorityURL() + "/" + c.srv.TenantID() + "/oauth2/v2.0/token"
	post := func(secret string) (int, map[string]any) {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.srv.ClientID()}, "client_secret": {secret}, "scope": {"https://graph.microsoft.com/.default"}}
		resp, err := c.srv.Client().PostForm(tokenURL, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, out
	}
	status, out := post(c.srv.ClientSecret())
	if status != http.StatusOK || out["access_token"] == "" || out["token_type"] != "Bearer" {
		t.Fatalf("good secret: %d %v", status, out)
	}
	c.token = out["access_token"].(string)
	if resp, _ := c.get("/organization", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("issued token refused: %d", resp.StatusCode)
	}
	status, out = post("wrong")
	if desc, _ := out["error_description"].(string); status != http.StatusUnauthorized || out["error"] != "invalid_client" || !strings.HasPrefix(desc, "AADSTS7000215:") {
		t.Errorf("wrong secret: %d %v", status, out)
	}

	var oidc map[string]any
	resp, err := c.srv.Client().Get(c.srv.AuthorityURL() + "/" + c.srv.TenantID() + "/v2.0/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&oidc); err != nil || oidc["token_endpoint"] != tokenURL {
		t.Errorf("openid configuration: %v %v", err, oidc)
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	c := newClient(t, fakegraph.Options{Users: 5})
	c.srv.InjectFault(fakegraph.Fault{Path: "/v1.0/users", After: 1, Times: 2, Status: 429, RetryAfter: 1500 * time.Millisecond})
	var statuses []int
	for range 4 {
		resp, _ := c.get("/users", nil)
		statuses = append(statuses, resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "2" {
			t.Errorf("Retry-After %q, want 2 (whole seconds, rounded up)", resp.Header.Get("Retry-After"))
		}
	}
	if want := []int{200, 429, 429, 200}; !equal(statuses, want) {
		t.Errorf("statuses %v, want %v", statuses, want)
	}
	if resp, _ := c.get("/domains", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("a fault for /v1.0/users hit /domains: %d", resp.StatusCode)
	}

	c.srv.InjectFault(fakegraph.Fault{HTML: true, Status: 502})
	resp, body := c.get("/users", nil)
	if resp.StatusCode != 502 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(body), "<html>") {
		t.Errorf("HTML fault: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	c.srv.InjectFault(fakegraph.Fault{Truncate: true})
	resp, body = c.get("/users", nil)
	if resp.StatusCode != 200 || json.Valid(body) || len(body) == 0 {
		t.Errorf("truncated fault: %d, valid JSON %v", resp.StatusCode, json.Valid(body))
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
