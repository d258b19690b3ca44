package fakegraph_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"selfserve/connectors/graph/fakegraph"
)

// patch sends PATCH /users/{id} with body, gzip-compressed when zip is set
// (as the Graph SDKs send it), and returns the status and Graph's error.
func (c *client) patch(id, body string, zip bool) (int, string, string) {
	c.t.Helper()
	var buf bytes.Buffer
	if zip {
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write([]byte(body))
		_ = zw.Close()
	} else {
		buf.WriteString(body)
	}
	req, err := http.NewRequest(http.MethodPatch, c.srv.GraphURL()+"/users/"+id, &buf)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	if zip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := c.srv.Client().Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var env struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if resp.StatusCode != http.StatusNoContent {
		if err := json.Unmarshal(raw, &env); err != nil {
			c.t.Fatalf("PATCH answered %d with a body that is not Graph's envelope: %s", resp.StatusCode, raw)
		}
	} else if len(raw) != 0 {
		c.t.Fatalf("204 with a body: %s", raw)
	}
	return resp.StatusCode, env.Error.Code, env.Error.Message
}

func TestPatchPasswordProfile(t *testing.T) {
	c := newClient(t, fakegraph.Options{})
	cloud := c.srv.AddUser(fakegraph.User{UserPrincipalName: "cloud@contoso.example", AccountEnabled: true})
	synced := c.srv.AddUser(fakegraph.User{UserPrincipalName: "synced@contoso.example", OnPremisesSyncEnabled: true})
	good := `{"passwordProfile":{"password":"Tulip-Harbor-93","forceChangePasswordNextSignIn":false}}`
	for _, tc := range []struct {
		name, id, body string
		zip            bool
		status         int
		code, message  string
	}{
		{"accepted", cloud.ID, good, false, http.StatusNoContent, "", ""},
		{"accepted gzip", cloud.ID, good, true, http.StatusNoContent, "", ""},
		{"too short", cloud.ID, `{"passwordProfile":{"password":"Ab1-x"}}`, false, http.StatusBadRequest, "Request_BadRequest", fakegraph.MessageWeakPassword},
		{"two classes", cloud.ID, `{"passwordProfile":{"password":"alllowercase1"}}`, false, http.StatusBadRequest, "Request_BadRequest", fakegraph.MessageWeakPassword},
		{"unicode", cloud.ID, `{"passwordProfile":{"password":"Pässwort-123"}}`, false, http.StatusBadRequest, "Request_BadRequest", fakegraph.MessageWeakPassword},
		{"synced user", synced.ID, good, false, http.StatusBadRequest, "Request_BadRequest", fakegraph.MessageSyncedUser},
		{"unknown user", "00000000-0000-4000-8000-00000000ffff", good, false, http.StatusNotFound, "Request_ResourceNotFound", ""},
		{"no password", cloud.ID, `{"passwordProfile":{}}`, false, http.StatusBadRequest, "Request_BadRequest", ""},
		{"other property", cloud.ID, `{"displayName":"x"}`, false, http.StatusBadRequest, "Request_BadRequest", ""},
		{"not JSON", cloud.ID, `password=x`, false, http.StatusBadRequest, "Request_BadRequest", ""},
	} {
		status, code, msg := c.patch(tc.id, tc.body, tc.zip)
		if status != tc.status || code != tc.code || (tc.message != "" && msg != tc.message) {
			t.Errorf("%s: %d %s %q, want %d %s %q", tc.name, status, code, msg, tc.status, tc.code, tc.message)
		}
	}
	changes := c.srv.PasswordChanges()
	if len(changes) != 2 || changes[0].UserID != cloud.ID || changes[0].Password != "Tulip-Harbor-93" || changes[0].ForceChangePasswordNextSignIn {
		t.Fatalf("recorded %+v", changes)
	}

	c.srv.DenyPasswordWrites(true)
	if status, code, msg := c.patch(cloud.ID, good, false); status != http.StatusForbidden || code != "Authorization_RequestDenied" ||
		msg != "Insufficient privileges to complete the operation." {
		t.Errorf("without the permission: %d %s %q", status, code, msg)
	}
	if len(c.srv.PasswordChanges()) != 2 {
		t.Error("a refused PATCH was recorded")
	}
}

func TestGetUserByID(t *testing.T) {
	c := newClient(t, fakegraph.Options{})
	u := c.srv.AddUser(fakegraph.User{UserPrincipalName: "ann@contoso.example", OnPremisesSyncEnabled: true})
	var got map[string]any
	resp, _ := c.get("/users/"+u.ID+"?$select=id,userPrincipalName,onPremisesSyncEnabled", &got)
	if resp.StatusCode != http.StatusOK || got["id"] != u.ID || got["userPrincipalName"] != "ann@contoso.example" ||
		got["onPremisesSyncEnabled"] != true || got["@odata.context"] == nil || len(got) != 4 {
		t.Fatalf("GET /users/{id}: %d %v", resp.StatusCode, got)
	}
	if resp, body := c.get("/users/00000000-0000-4000-8000-00000000ffff", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown user: %d %s", resp.StatusCode, body)
	}
}
