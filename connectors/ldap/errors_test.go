package ldap

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"selfserve/connectors"
	"selfserve/internal/redact"
)

// TestTLS: the fixture's CA is verified, over LDAPS and StartTLS; a wrong
// CA, a wrong name and an expired certificate are refused, naming the
// problem.
func TestTLS(t *testing.T) {
	f := dc(t)
	otherCA := writeCert(t, selfSigned(t, "some other CA", time.Now().Add(-time.Hour), time.Now().Add(time.Hour)))
	ok := []struct {
		name string
		cfg  Config
	}{
		{"LDAPS with the fixture's CA", Config{}},
		{"StartTLS with the fixture's CA", Config{URL: f.LDAPURL, StartTLS: true}},
		{"LDAPS by DNS name via server_name", Config{ServerName: "dc1." + f.realm}},
		{"plain LDAP when explicitly allowed", Config{URL: f.LDAPURL, AllowInsecure: true}},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cfg.AllowInsecure && f.PlainBinds != "allowed" {
				t.Skip("the fixture refuses plain simple binds")
			}
			src := f.userSource(t, tc.cfg)
			if err := src.Ping(context.Background()); err != nil {
				t.Fatal(err)
			}
			users, _, _, _, err := collect(t, src.Users(context.Background(), ""))
			if err != nil || len(users) != seedUsers {
				t.Fatalf("%d users, %v", len(users), err)
			}
		})
	}
	bad := []struct {
		name        string
		cfg         Config
		systemRoots bool
		want        []string
	}{
		{"LDAPS with another CA", Config{CAFile: otherCA}, false, []string{"unknown authority", "ca_file", "ad-dc.sh test CA"}},
		{"StartTLS with another CA", Config{URL: f.LDAPURL, StartTLS: true, CAFile: otherCA}, false, []string{"unknown authority"}},
		{"LDAPS with the system roots", Config{}, true, []string{"unknown authority", "set ca_file"}},
		{"wrong name", Config{ServerName: "wrong-name.example.test"}, false,
			[]string{"valid for", "dc1." + f.realm, f.host(), `not for "wrong-name.example.test"`, "server_name"}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			cfg := f.config(tc.cfg)
			if tc.systemRoots {
				cfg.CAFile = ""
			}
			src, err := cfg.Open(connectors.Env{ID: "test"})
			if err != nil {
				t.Fatal(err)
			}
			err = src.(*source).Ping(context.Background())
			if !errors.Is(err, connectors.ErrInvalidConfig) {
				t.Fatalf("got %v, want ErrInvalidConfig", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	t.Run("expired certificate", func(t *testing.T) {
		cert := selfSigned(t, "expired.test", time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
		addr := tlsServer(t, cert)
		cfg := f.config(Config{URL: "ldaps://" + addr, CAFile: writeCert(t, cert)})
		src, err := cfg.Open(connectors.Env{ID: "test"})
		if err != nil {
			t.Fatal(err)
		}
		err = src.(*source).Ping(context.Background())
		if !errors.Is(err, connectors.ErrInvalidConfig) || !strings.Contains(err.Error(), "expired on") {
			t.Fatalf("got %v, want an expired certificate named", err)
		}
	})
}

// TestPingErrors: each failure says what is wrong, with the right kind.
func TestPingErrors(t *testing.T) {
	f := dc(t)
	// The pure Go resolver answers "no such host" for .onion names without
	// asking a DNS server: the test stays on loopback.
	prefer := net.DefaultResolver.PreferGo
	net.DefaultResolver.PreferGo = true
	defer func() { net.DefaultResolver.PreferGo = prefer }()
	user := func(sam string) Config {
		return Config{BindDN: redact.Secret(sam + "@" + f.realm), BindPassword: redact.Secret(f.UserPass)}
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		kind error
		want []string
	}{
		{"wrong password", Config{BindPassword: "not-the-password"}, connectors.ErrUnauthorized, []string{"invalid credentials", "52e"}},
		{"unknown user", Config{BindDN: "nobody@" + redact.Secret(f.realm)}, connectors.ErrUnauthorized, []string{"52e"}},
		{"disabled account", user("user00011"), connectors.ErrUnauthorized, []string{"account disabled", "533"}},
		{"locked-out account", user("user00022"), connectors.ErrUnauthorized, []string{"account locked out", "775"}},
		{"expired password", user("user00021"), connectors.ErrUnauthorized, []string{"password expired", "532"}},
		{"must reset password", user("user00024"), connectors.ErrUnauthorized, []string{"must reset the password", "773"}},
		{"unknown host", Config{URL: "ldaps://dc1.selfserve-test.onion"}, connectors.ErrUnavailable, []string{"dc1.selfserve-test.onion:636", "cannot resolve"}},
		{"nothing listening", Config{URL: "ldaps://127.0.0.1:1"}, connectors.ErrUnavailable, []string{"127.0.0.1:1", "refused"}},
		{"bad base DN", Config{BaseDN: "OU=NoSuchOU," + f.BaseDN}, connectors.ErrNotFound, []string{"OU=NoSuchOU", "does not exist"}},
		{"bad group DN", Config{GroupDNs: []string{"CN=NoSuchGroup," + f.BaseDN}}, connectors.ErrNotFound, []string{"group_dns", "CN=NoSuchGroup"}},
		{"base outside the domain", Config{BaseDN: "DC=elsewhere,DC=test"}, connectors.ErrInvalidConfig, []string{"not in the domain"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := f.userSource(t, tc.cfg)
			err := src.Ping(context.Background())
			if !errors.Is(err, tc.kind) {
				t.Fatalf("got %v, want %v", err, tc.kind)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			for _, secret := range []string{f.BindPass, f.UserPass, "not-the-password"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q reveals a password", err)
				}
			}
			// a listing fails the same way
			_, _, _, _, lerr := collect(t, src.Users(context.Background(), ""))
			if !errors.Is(lerr, tc.kind) {
				t.Errorf("listing: got %v, want %v", lerr, tc.kind)
			}
		})
	}
}

// TestConnectionLost cuts the connection after the first page: the listing
// ends with ErrUnavailable, never as if it were complete.
func TestConnectionLost(t *testing.T) {
	f := dc(t)
	p := newProxy(t, strings.TrimPrefix(f.LDAPSURL, "ldaps://"))
	src := f.userSource(t, Config{URL: "ldaps://" + p.addr, ServerName: f.host()})
	pages := 0
	var last error
	for page, err := range src.Users(context.Background(), "") {
		if err != nil {
			last = err
			break
		}
		pages++
		if page.Cursor != "" {
			t.Fatal("a cut listing reached its last page")
		}
		p.cut()
	}
	if pages != 1 || !errors.Is(last, connectors.ErrUnavailable) {
		t.Fatalf("after %d pages: %v; want 1 page then ErrUnavailable", pages, last)
	}
	t.Log(last)
}

// TestListingConnections: a full listing reads its two halves on two
// connections and hands every page as it comes, only the last carrying the
// cursor; when the DC refuses a second connection the listing runs on one,
// complete; an incremental run uses one connection.
func TestListingConnections(t *testing.T) {
	f := dc(t)
	for _, tc := range []struct {
		name      string
		refuse    int
		wantConns int
	}{{"two connections", 0, 2}, {"second connection refused", 1, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProxy(t, strings.TrimPrefix(f.LDAPSURL, "ldaps://"))
			p.refuseAfter(tc.refuse)
			src := f.userSource(t, Config{URL: "ldaps://" + p.addr, ServerName: f.host()})
			seen := map[string]bool{}
			pages, cursor := 0, ""
			for page, err := range src.Users(context.Background(), "") {
				if err != nil {
					t.Fatal(err)
				}
				if cursor != "" {
					t.Fatalf("page %d came after the page carrying the cursor", pages+1)
				}
				pages++
				cursor = page.Cursor
				for _, u := range page.Users {
					if seen[u.ExternalID] {
						t.Fatalf("user %s listed twice", u.Username)
					}
					seen[u.ExternalID] = true
				}
			}
			if cursor == "" || len(seen) != seedUsers || pages < 3 {
				t.Fatalf("%d users in %d pages, cursor %q; want %d users in at least 3 pages, the last with a cursor", len(seen), pages, cursor, seedUsers)
			}
			if got := p.relayed(); got != tc.wantConns {
				t.Errorf("the full listing used %d connections, want %d", got, tc.wantConns)
			}
			p.refuseAfter(0)
			before := p.relayed()
			if _, _, _, _, err := collect(t, src.Changes(context.Background(), cursor)); err != nil {
				t.Fatal(err)
			}
			if got := p.relayed() - before; got != 1 {
				t.Errorf("the incremental run used %d connections, want 1", got)
			}
		})
	}
}

// TestCancelMidRun: cancelling during the listing ends it with the
// context's error.
func TestCancelMidRun(t *testing.T) {
	f := dc(t)
	src := f.userSource(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var last error
	for _, err := range src.Users(ctx, "") {
		if err != nil {
			last = err
			break
		}
		cancel()
	}
	if !errors.Is(last, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", last)
	}
}

// proxy is a TCP relay on loopback whose connections can be cut, and which
// can refuse connections beyond a number.
type proxy struct {
	addr     string
	mu       sync.Mutex
	conns    []net.Conn
	accepted int // connections relayed
	limit    int // connections relayed at most (0: no limit)
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	p := &proxy{addr: ln.Addr().String()}
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			refuse := p.limit > 0 && p.accepted >= p.limit
			if !refuse {
				p.accepted++
			}
			p.mu.Unlock()
			if refuse {
				_ = in.Close()
				continue
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				_ = in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); _ = out.Close() }()
			go func() { _, _ = io.Copy(in, out); _ = in.Close() }()
		}
	}()
	t.Cleanup(p.cut)
	return p
}

// refuseAfter makes the proxy close every connection after the first n.
func (p *proxy) refuseAfter(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.limit = n
}

// relayed is the number of connections relayed so far.
func (p *proxy) relayed() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// selfSigned makes a self-signed certificate for 127.0.0.1.
func selfSigned(t *testing.T, cn string, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func writeCert(t *testing.T, c tls.Certificate) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// tlsServer accepts TLS connections on loopback with cert (and does nothing
// else): enough to test the client's verification.
func tlsServer(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = c.(*tls.Conn).Handshake()
				_ = c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}
