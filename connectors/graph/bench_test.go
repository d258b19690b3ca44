package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	jsonserialization "github.com/microsoft/kiota-serialization-json-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models"

	"selfserve/connectors"
	"selfserve/connectors/graph"
	"selfserve/connectors/graph/fakegraph"
	"selfserve/internal/redact"
)

const benchUsers = 100_000

var benchSelect = "id,userPrincipalName,mail,mobilePhone,businessPhones,accountEnabled,lastPasswordChangeDateTime,passwordPolicies," +
	"onPremisesSyncEnabled,onPremisesImmutableId,onPremisesSamAccountName,givenName,surname,displayName"

// rawUser is what the raw baseline decodes: the same properties, typed.
type rawUser struct {
	ID                         string   `json:"id"`
	UserPrincipalName          string   `json:"userPrincipalName"`
	Mail                       string   `json:"mail"`
	MobilePhone                string   `json:"mobilePhone"`
	BusinessPhones             []string `json:"businessPhones"`
	AccountEnabled             bool     `json:"accountEnabled"`
	LastPasswordChangeDateTime string   `json:"lastPasswordChangeDateTime"`
	PasswordPolicies           string   `json:"passwordPolicies"`
	OnPremisesSyncEnabled      *bool    `json:"onPremisesSyncEnabled"`
	OnPremisesImmutableID      string   `json:"onPremisesImmutableId"`
	OnPremisesSamAccountName   string   `json:"onPremisesSamAccountName"`
	GivenName                  string   `json:"givenName"`
	Surname                    string   `json:"surname"`
	DisplayName                string   `json:"displayName"`
}

// rawPages walks /users with net/http and hands each body to decode.
func rawPages(b *testing.B, srv *fakegraph.Server, token string, decode func(body io.Reader) (n int, next string)) int {
	client := srv.Client()
	link := srv.GraphURL() + "/users?$select=" + benchSelect + "&$top=999"
	total := 0
	for link != "" {
		req, _ := http.NewRequest(http.MethodGet, link, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, next := decode(resp.Body)
		resp.Body.Close()
		total += n
		link = next
	}
	return total
}

// BenchmarkUsers100k lists 100,000 users from fakegraph, $top=999:
//
//   - raw: net/http + encoding/json into a typed struct (the baseline);
//   - connector: Users() of this package (token, SDK request adapter and
//     middleware, request budget raised out of the way, mapping, expiry);
//   - sdk-models: net/http, then the SDK's own deserialization of each page
//     into models.UserCollectionResponse (what the connector avoids).
//
// Run each alone to read its peak RSS (the fake server shares the process):
//
//	go test -run '^$' -bench 'Users100k/raw' -benchtime 3x ./connectors/graph/
func BenchmarkUsers100k(b *testing.B) {
	srv := fakegraph.New(fakegraph.Options{Users: benchUsers})
	defer srv.Close()
	token := srv.IssueToken()
	var rawRate, connRate float64

	b.Run("raw", func(b *testing.B) {
		for b.Loop() {
			n := rawPages(b, srv, token, func(body io.Reader) (int, string) {
				var page struct {
					Value    []rawUser `json:"value"`
					NextLink string    `json:"@odata.nextLink"`
				}
				if err := json.NewDecoder(body).Decode(&page); err != nil {
					b.Fatal(err)
				}
				return len(page.Value), page.NextLink
			})
			if n != benchUsers {
				b.Fatalf("decoded %d users", n)
			}
		}
		rawRate = report(b)
	})

	b.Run("connector", func(b *testing.B) {
		ca, err := srv.WriteCAFile(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		cfg := graph.Config{
			AzureTenantID: srv.TenantID(), ClientID: srv.ClientID(), ClientSecret: redact.Secret(srv.ClientSecret()),
			GraphURL: srv.GraphURL(), AuthorityURL: srv.AuthorityURL(), CAFile: ca, RequestsPerSecond: 10_000,
		}
		src, err := cfg.Open(connectors.Env{ID: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		defer src.Close()
		us := src.(azureSource)
		for b.Loop() {
			n := 0
			for page, err := range us.Users(context.Background(), "") {
				if err != nil {
					b.Fatal(err)
				}
				n += len(page.Users) + len(page.Invalid)
			}
			if n != benchUsers {
				b.Fatalf("listed %d users", n)
			}
		}
		connRate = report(b)
	})

	b.Run("sdk-models", func(b *testing.B) {
		for b.Loop() {
			n := rawPages(b, srv, token, func(body io.Reader) (int, string) {
				raw, err := io.ReadAll(body)
				if err != nil {
					b.Fatal(err)
				}
				node, err := jsonserialization.NewJsonParseNode(raw)
				if err != nil {
					b.Fatal(err)
				}
				v, err := node.GetObjectValue(models.CreateUserCollectionResponseFromDiscriminatorValue)
				if err != nil {
					b.Fatal(err)
				}
				page := v.(models.UserCollectionResponseable)
				next := ""
				if l := page.GetOdataNextLink(); l != nil {
					next = *l
				}
				return len(page.GetValue()), next
			})
			if n != benchUsers {
				b.Fatalf("decoded %d users", n)
			}
		}
		report(b)
	})

	if rawRate > 0 && connRate > 0 {
		b.Logf("connector %.0f users/s, raw decode %.0f users/s: ratio %.2f", connRate, rawRate, connRate/rawRate)
	}
}

// report adds users/s and the process's peak RSS to a sub-benchmark and
// returns the rate.
func report(b *testing.B) float64 {
	rate := float64(benchUsers) * float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "users/s")
	b.ReportMetric(0, "ns/op")
	if mb := peakRSSMB(); mb > 0 {
		b.ReportMetric(mb, "peak-RSS-MB")
	}
	return rate
}

// peakRSSMB reads VmHWM (peak resident set size) from /proc/self/status.
func peakRSSMB() float64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(status) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(string(rest)), " kB"), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}
