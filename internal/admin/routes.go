package admin

import "net/http"

// route is one endpoint: its method, ServeMux path pattern, who may call
// it and its handler. The OpenAPI document lists exactly these.
type route struct {
	method string
	path   string
	access access
	handle func(a *api, w http.ResponseWriter, r *http.Request, p *principal) error
}

// routes is every endpoint of the API.
func (a *api) routes() []route {
	return []route{
		{"GET", "/openapi.json", accessPublic, (*api).openAPI},

		{"GET", "/v1/tenant", accessLogin, (*api).getTenant},
		{"PATCH", "/v1/tenant", accessSettings, (*api).patchTenant},

		{"GET", "/v1/tokens", accessLogin, (*api).listTokens},
		{"POST", "/v1/tokens", accessLogin, (*api).createToken},
		{"DELETE", "/v1/tokens/{id}", accessLogin, (*api).revokeToken},

		{"PATCH", "/v1/logins/{id}", accessSuper, (*api).setLoginRole},

		{"GET", "/v1/app-clients", accessSettings, (*api).listAppClients},
		{"POST", "/v1/app-clients", accessSettings, (*api).createAppClient},
		{"DELETE", "/v1/app-clients/{id}", accessSettings, (*api).revokeAppClient},

		{"GET", "/v1/customers", accessLogin, (*api).listCustomers},
		{"POST", "/v1/customers", accessLogin, (*api).createCustomer},
		{"GET", "/v1/customers/{id}", accessLogin, (*api).getCustomer},
		{"POST", "/v1/customers/{id}/link", accessLogin, (*api).linkCustomer},
		{"POST", "/v1/customers/import", accessLogin, (*api).importCustomers},
		{"GET", "/v1/customers/{id}/end-users", accessLogin, (*api).listEndUsers},

		{"GET", "/v1/connections", accessLogin, (*api).listConnections},
		{"POST", "/v1/connections", accessSettings, (*api).createConnection},
		{"GET", "/v1/connections/{id}", accessLogin, (*api).getConnection},
		{"PATCH", "/v1/connections/{id}", accessSettings, (*api).patchConnection},
		{"POST", "/v1/connections/{id}/test", accessSettings, (*api).testConnection},
		{"POST", "/v1/connections/{id}/sync", accessLogin, (*api).startSync},
		{"GET", "/v1/connections/{id}/runs", accessLogin, (*api).listRuns},
		{"GET", "/v1/runs/{id}", accessLogin, (*api).getRun},

		{"GET", "/v1/agents", accessLogin, (*api).listAgents},
		{"GET", "/v1/connections/{id}/agent", accessLogin, (*api).getAgent},
		{"POST", "/v1/connections/{id}/agent/install-code", accessSettings, (*api).createInstallCode},
		{"DELETE", "/v1/connections/{id}/agent", accessSettings, (*api).revokeAgent},

		{"GET", "/v1/end-users/{id}", accessLogin, (*api).getEndUser},
		{"PATCH", "/v1/end-users/{id}", accessLogin, (*api).patchEndUser},
		{"PUT", "/v1/end-users/{id}/self-serve", accessLogin, (*api).setSelfServe},
		{"POST", "/v1/end-users/self-serve", accessLogin, (*api).bulkSelfServe},
		{"POST", "/v1/end-users/{id}/welcome", accessLogin, (*api).sendWelcome},
		{"GET", "/v1/end-users/{id}/notices", accessLogin, (*api).listNotices},

		{"GET", "/v1/notices/preview", accessLogin, (*api).previewNotices},
		{"GET", "/v1/audit", accessLogin, (*api).auditLog},

		{"POST", "/v1/app/end-users/{id}/first-access", accessApp, (*api).firstAccess},
	}
}
