package graph

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	kiotaauth "github.com/microsoft/kiota-authentication-azure-go"
	khttp "github.com/microsoft/kiota-http-go"
	msgraphgocore "github.com/microsoftgraph/msgraph-sdk-go-core"
	"golang.org/x/time/rate"

	"selfserve/connectors"
	"selfserve/internal/redact"
)

// Defaults of Config.
const (
	DefaultGraphURL          = "https://graph.microsoft.com/v1.0"
	DefaultAuthorityURL      = "https://login.microsoftonline.com"
	DefaultPageSize          = 999
	DefaultRequestsPerSecond = 10
)

// Config is the configuration of an Entra ID (Azure AD / Office 365)
// connection, kind "azure". The connector signs in as an application with
// the client credentials grant (app-only), so the app registration needs the
// User.Read.All, Domain.Read.All and RoleManagement.Read.Directory (to find
// the privileged users, directory role holders) application permissions
// with admin consent, plus UserAuthenticationMethod.Read.All when
// fetch_auth_phone is on,
// and User-PasswordProfile.ReadWrite.All for self-serve password write-back
// to cloud-only users.
//
// Example (settings and secret as stored on a connection):
//
//	azure_tenant_id: 7d3c0a52-5c1e-4b8e-9a51-2f0c6f1e9b10   # or contoso.onmicrosoft.com
//	client_id: 0f8b5a3e-2c4d-4e6f-8a9b-1c2d3e4f5a6b
//	client_secret: "…"                                      # secret
//	graph_url: https://graph.microsoft.com/v1.0              # national clouds: https://graph.microsoft.us/v1.0
//	authority_url: https://login.microsoftonline.com         # national clouds: https://login.microsoftonline.us
//	page_size: 999
//	fetch_auth_phone: false
//	requests_per_second: 10
type Config struct {
	// AzureTenantID is the directory (tenant) id, a GUID or a verified
	// domain name. Required.
	AzureTenantID string `json:"azure_tenant_id" help:"Directory (tenant) ID from the app registration's Overview in the Entra admin center, or a verified domain."`
	// ClientID is the application (client) id of the app registration, a
	// GUID. Required.
	ClientID string `json:"client_id" help:"Application (client) ID from the app registration's Overview."`
	// ClientSecret is the app registration's client secret value (not its
	// secret id). Required; stored as a secret.
	ClientSecret redact.Secret `json:"client_secret" help:"The client secret's Value (not its Secret ID), from the app registration's Certificates & secrets."`
	// GraphURL is the Microsoft Graph base URL including the version.
	// Default "https://graph.microsoft.com/v1.0".
	GraphURL string `json:"graph_url" connector:"endpoint" help:"Microsoft Graph base URL. Default https://graph.microsoft.com/v1.0."`
	// AuthorityURL is the Microsoft identity platform host; tokens come from
	// {authority_url}/{azure_tenant_id}/oauth2/v2.0/token. Default
	// "https://login.microsoftonline.com".
	AuthorityURL string `json:"authority_url" connector:"endpoint" help:"Microsoft sign-in host. Default https://login.microsoftonline.com."`
	// CAFile is a PEM file of extra CA certificates to trust for both URLs
	// (a private cloud, a TLS-inspecting proxy, tests). Default none: the
	// system roots only.
	CAFile string `json:"ca_file" connector:"endpoint,file" help:"PEM file of extra CA certificates to trust (a TLS-inspecting proxy). Empty: the system's trusted roots."`
	// PageSize is the $top of user listings, 1..999. Default 999. Delta
	// queries ignore it: Graph chooses their page size.
	PageSize int `json:"page_size" help:"Users per page of a listing, 1 to 999. Default 999."`
	// FetchAuthPhone, when true, reads a user's registered authentication
	// phone methods (mobile, then alternate mobile) when mobilePhone is
	// empty: one extra request per such user, within the request budget.
	// Default false.
	FetchAuthPhone bool `json:"fetch_auth_phone" help:"When a user's mobile phone is empty, read their registered authentication phone (one more request per such user)."`
	// RequestsPerSecond is this connection's client-side budget of Graph
	// requests, with a burst of twice as many, so one big tenant cannot
	// starve others. Default 10.
	RequestsPerSecond float64 `json:"requests_per_second" help:"Graph requests per second on this connection. Default 10."`
}

var _ connectors.Config = (*Config)(nil)

var (
	guidPattern   = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	domainPattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$`)
)

// Open validates the configuration, fills in defaults and returns the
// connection's source. It makes no network request: Ping tests the
// connection.
func (c *Config) Open(env connectors.Env) (connectors.Source, error) {
	id, logger := env.ID, env.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var problems []string
	tenant := strings.TrimSpace(c.AzureTenantID)
	switch {
	case tenant == "":
		problems = append(problems, "azure_tenant_id is required (the directory id of the customer's tenant)")
	case isMultiTenantAlias(tenant):
		problems = append(problems, fmt.Sprintf("azure_tenant_id %q is not a tenant: give the customer's directory (tenant) id", tenant))
	case !guidPattern.MatchString(tenant) && !domainPattern.MatchString(tenant):
		problems = append(problems, fmt.Sprintf("azure_tenant_id %q is neither a GUID nor a domain name", tenant))
	}
	clientID := strings.TrimSpace(c.ClientID)
	switch {
	case clientID == "":
		problems = append(problems, "client_id is required (the application (client) id of the app registration)")
	case !guidPattern.MatchString(clientID):
		problems = append(problems, fmt.Sprintf("client_id %q is not a GUID: give the application (client) id", clientID))
	}
	if c.ClientSecret == "" {
		problems = append(problems, "client_secret is required (the client secret value of the app registration)")
	}
	graphURL, err := baseURL("graph_url", c.GraphURL, DefaultGraphURL, true)
	if err != nil {
		problems = append(problems, err.Error())
	}
	authorityURL, err := baseURL("authority_url", c.AuthorityURL, DefaultAuthorityURL, false)
	if err != nil {
		problems = append(problems, err.Error())
	}
	pageSize := c.PageSize
	switch {
	case pageSize == 0:
		pageSize = DefaultPageSize
	case pageSize < 1 || pageSize > 999:
		problems = append(problems, fmt.Sprintf("page_size %d is out of range: Graph accepts 1 to 999", pageSize))
	}
	rps := c.RequestsPerSecond
	switch {
	case rps == 0:
		rps = DefaultRequestsPerSecond
	case rps < 0 || math.IsNaN(rps) || math.IsInf(rps, 0):
		problems = append(problems, fmt.Sprintf("requests_per_second %v must be positive", c.RequestsPerSecond))
	}
	roots, err := certPool(c.CAFile)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", connectors.ErrInvalidConfig, strings.Join(problems, "; "))
	}

	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	base.MaxIdleConnsPerHost = 4

	cred, err := azidentity.NewClientSecretCredential(tenant, clientID, c.ClientSecret.Reveal(), &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: authorityURL.String() + "/"},
			Transport: &http.Client{Transport: base, Timeout: time.Minute},
			// One quick retry of the token request; a longer outage fails
			// the run as ErrUnavailable and the worker retries it later.
			Retry: policy.RetryOptions{MaxRetries: 1, RetryDelay: 200 * time.Millisecond, MaxRetryDelay: 2 * time.Second},
		},
		// The authority is configured explicitly (national clouds, tests):
		// no instance discovery against login.microsoftonline.com.
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		// The SDK checks the tenant id's characters; its message quotes no secret.
		return nil, fmt.Errorf("%w: azure connection %s: %w", connectors.ErrInvalidConfig, id, err)
	}
	// Tokens go only to the Graph host; the scope defaults to
	// {scheme}://{host}/.default of each request, right for national clouds.
	auth, err := kiotaauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(cred, nil, []string{graphURL.Hostname()})
	if err != nil {
		return nil, fmt.Errorf("%w: azure connection %s: %w", connectors.ErrInvalidConfig, id, err)
	}

	s := &source{
		id:             id,
		logger:         logger,
		graphURL:       graphURL,
		pageSize:       int32(pageSize),
		fetchAuthPhone: c.FetchAuthPhone,
		transport:      base,
		cred:           cred,
	}
	limiter := rate.NewLimiter(rate.Limit(rps), int(math.Max(1, math.Ceil(2*rps))))
	middlewares, err := khttp.GetDefaultMiddlewaresWithOptions(&khttp.RetryHandlerOptions{
		MaxRetries:   maxRetries,
		DelaySeconds: 1,
		ShouldRetry:  s.shouldRetry,
	})
	if err != nil {
		return nil, fmt.Errorf("azure connection %s: building the Graph client: %w", id, err)
	}
	httpClient := &http.Client{
		Transport: khttp.NewCustomTransportWithParentTransport(&limitedTransport{next: base, limiter: limiter}, middlewares...),
		Timeout:   requestTimeout,
		// kiota's redirect middleware follows redirects itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	adapter, err := msgraphgocore.NewGraphRequestAdapterBaseWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(
		auth, msgraphgocore.GraphClientOptions{}, nil, nil, httpClient)
	if err != nil {
		return nil, fmt.Errorf("azure connection %s: building the Graph client: %w", id, err)
	}
	// The adapter, not a GraphServiceClient, is the handle: the client's
	// GetAdapter panics (api-facts §4) and its package drags in every
	// request builder of Graph.
	adapter.SetBaseUrl(graphURL.String())
	s.adapter = adapter
	return s, nil
}

func isMultiTenantAlias(t string) bool {
	switch strings.ToLower(t) {
	case "common", "organizations", "consumers":
		return true
	}
	return false
}

// baseURL parses a base URL setting. Graph may be plain http only on a
// loopback address (a local fake); the identity platform must be https.
func baseURL(name, raw, def string, loopbackHTTP bool) (*url.URL, error) {
	raw = strings.TrimRight(strings.TrimSpace(raw), "/")
	if raw == "" {
		raw = def
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("%s %q is not an absolute URL such as %s", name, raw, def)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && loopbackHTTP && isLoopback(u.Hostname()):
	default:
		return nil, fmt.Errorf("%s %q must use https", name, raw)
	}
	return u, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// certPool returns the system roots plus the certificates of caFile.
func certPool(caFile string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile == "" {
		return pool, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file %s holds no PEM certificate", caFile)
	}
	return pool, nil
}
