package admin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// openAPIDoc is the part of an OpenAPI 3 document the checks read.
type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Info       struct{ Title, Version string }       `json:"info"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		SecuritySchemes map[string]json.RawMessage `json:"securitySchemes"`
		Schemas         map[string]json.RawMessage `json:"schemas"`
		Responses       map[string]json.RawMessage `json:"responses"`
	} `json:"components"`
}

type openAPIOp struct {
	OperationID string                     `json:"operationId"`
	Responses   map[string]json.RawMessage `json:"responses"`
	Parameters  []struct {
		Name, In string
		Required bool
		Schema   json.RawMessage
	} `json:"parameters"`
	Security *[]map[string][]string `json:"security"`
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// TestOpenAPIDocument checks that openapi.json is a well-formed OpenAPI 3
// document (required fields, resolvable $refs, unique operation ids,
// declared path parameters, valid response codes) and lists exactly the
// registered routes, with the auth each route really has.
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	dec := json.NewDecoder(bytes.NewReader(OpenAPI))
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	var doc openAPIDoc
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !regexp.MustCompile(`^3\.\d+\.\d+$`).MatchString(doc.OpenAPI) || doc.Info.Title == "" || doc.Info.Version == "" || doc.Paths == nil {
		t.Fatalf("not an OpenAPI 3 document: openapi=%q info=%+v", doc.OpenAPI, doc.Info)
	}
	// Every $ref resolves.
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				if !resolves(raw, ref) {
					t.Errorf("$ref %q does not resolve", ref)
				}
			}
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	walk(raw)

	documented := map[string]openAPIOp{}
	ids := map[string]bool{}
	paramRE := regexp.MustCompile(`\{([^}]+)\}`)
	for path, item := range doc.Paths {
		for method, rawOp := range item {
			if !slices.Contains(httpMethods, method) {
				if method != "parameters" && method != "summary" && method != "description" {
					t.Errorf("%s: unknown key %q in a path item", path, method)
				}
				continue
			}
			var op openAPIOp
			if err := json.Unmarshal(rawOp, &op); err != nil {
				t.Errorf("%s %s: %v", method, path, err)
				continue
			}
			key := strings.ToUpper(method) + " " + path
			documented[key] = op
			if op.OperationID == "" || ids[op.OperationID] {
				t.Errorf("%s: operationId %q missing or not unique", key, op.OperationID)
			}
			ids[op.OperationID] = true
			if len(op.Responses) == 0 {
				t.Errorf("%s: no responses", key)
			}
			for code := range op.Responses {
				if n, err := strconv.Atoi(code); (err != nil || n < 100 || n > 599) && code != "default" {
					t.Errorf("%s: response code %q", key, code)
				}
			}
			var declared []string
			for _, p := range op.Parameters {
				if !slices.Contains([]string{"path", "query", "header", "cookie"}, p.In) || p.Name == "" || len(p.Schema) == 0 {
					t.Errorf("%s: bad parameter %+v", key, p)
				}
				if p.In == "path" {
					if !p.Required {
						t.Errorf("%s: path parameter %s must be required", key, p.Name)
					}
					declared = append(declared, p.Name)
				}
			}
			var inPath []string
			for _, m := range paramRE.FindAllStringSubmatch(path, -1) {
				inPath = append(inPath, m[1])
			}
			slices.Sort(declared)
			slices.Sort(inPath)
			if !slices.Equal(declared, inPath) {
				t.Errorf("%s: path parameters declared %v, in the path %v", key, declared, inPath)
			}
			if op.Security != nil {
				for _, req := range *op.Security {
					for name := range req {
						if _, ok := doc.Components.SecuritySchemes[name]; !ok {
							t.Errorf("%s: unknown security scheme %q", key, name)
						}
					}
				}
			}
		}
	}

	// The document lists exactly the registered routes.
	a := &api{}
	registered := map[string]bool{}
	for _, rt := range a.routes() {
		key := routeKey(rt)
		registered[key] = true
		op, ok := documented[key]
		if !ok {
			t.Errorf("route %s is registered but missing from openapi.json", key)
			continue
		}
		var schemes []string
		if op.Security != nil {
			for _, req := range *op.Security {
				for name := range req {
					schemes = append(schemes, name)
				}
			}
		}
		want := map[access][]string{accessLogin: {"bearerToken"}, accessSettings: {"bearerToken"}, accessSuper: {"bearerToken"}, accessApp: {"appToken"}}[rt.access]
		if op.Security == nil {
			schemes = []string{"bearerToken"} // the document's default
		}
		if !slices.Equal(schemes, want) {
			t.Errorf("%s: documented security %v, want %v", key, schemes, want)
		}
		if rt.access == accessSettings || rt.access == accessSuper {
			if _, ok := op.Responses["403"]; !ok {
				t.Errorf("%s: restricted to some roles but no 403 documented", key)
			}
		}
	}
	for key := range documented {
		if !registered[key] {
			t.Errorf("openapi.json documents %s, which is not registered", key)
		}
	}
}

// resolves reports whether a local $ref ("#/a/b") names a node of doc.
func resolves(doc map[string]any, ref string) bool {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return false
	}
	var cur any = doc
	for _, part := range strings.Split(rest, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		if cur, ok = m[part]; !ok {
			return false
		}
	}
	return true
}

// TestOpenAPIServed: the document is served at /openapi.json without a
// token.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	b := sqliteOnly(t)
	r := b.do("GET", "/openapi.json", "", nil)
	if r.status != http.StatusOK || !bytes.Equal(r.raw, OpenAPI) || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Errorf("GET /openapi.json: %d, %d bytes", r.status, len(r.raw))
	}
}
