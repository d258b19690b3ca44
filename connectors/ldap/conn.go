package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"syscall"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"selfserve/connectors"
)

// conn is one bound LDAP connection. Closing the context given to dial
// closes the connection, which ends any operation in flight; a connection
// of the write-back's pool outlives it (dialPooled), and each operation on
// it ends with its own context instead.
type conn struct {
	*goldap.Conn
	timeout time.Duration // for each request (one page of a search)
	stop    func() bool   // unregisters the context watch
	// wrote is set once a write was sent in the current operation: such an
	// operation is never run again. The write-back's operations share a
	// connection, each through its own copy (forOperation).
	wrote bool
}

// forOperation returns the connection as one operation sees it: the same
// LDAP connection, with the operation's own note of what it wrote.
func (c *conn) forOperation() *conn {
	op := *c
	op.wrote = false
	return &op
}

// modify sends a write, noting it, and waits for its answer, for at most
// the connection's timeout (go-ldap's, set on write-back connections) or
// until ctx ends. An answer nobody waits for any more is dropped: the write
// may or may not have been applied, as when a connection is cut.
func (c *conn) modify(ctx context.Context, req *goldap.ModifyRequest) error {
	c.wrote = true
	answer := make(chan error, 1)
	go func() { answer <- c.Modify(req) }()
	select {
	case err := <-answer:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close closes the connection.
func (c *conn) Close() {
	c.stop()
	_ = c.Conn.Close()
}

// dial connects, secures and binds a connection to the DC. Errors name the
// problem for a technician and wrap a connectors sentinel.
func (s *source) dial(ctx context.Context) (*conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg := s.cfg
	setupCtx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()

	raw, err := (&net.Dialer{}).DialContext(setupCtx, "tcp", cfg.addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, dialError(cfg.addr, cfg.timeout, err)
	}
	// The deadline bounds the TLS handshake and the bind; it is lifted
	// before searching.
	deadline, _ := setupCtx.Deadline()
	_ = raw.SetDeadline(deadline)

	var verifyErr error
	tlsConfig := s.tlsConfig(&verifyErr)
	var lc *goldap.Conn
	switch cfg.transport {
	case transportLDAPS:
		tc := tls.Client(raw, tlsConfig)
		if err := tc.HandshakeContext(setupCtx); err != nil {
			_ = raw.Close()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, s.tlsError(err, verifyErr)
		}
		lc = goldap.NewConn(tc, true)
		lc.Start()
	case transportStartTLS:
		lc = goldap.NewConn(raw, false)
		lc.Start()
		if err := lc.StartTLS(tlsConfig); err != nil {
			_ = lc.Close()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if verifyErr != nil || isHandshakeFailure(err) {
				return nil, s.tlsError(err, verifyErr)
			}
			return nil, fmt.Errorf("%w: StartTLS with %s refused: %s (use ldaps://, or check that the DC has a certificate)",
				connectors.ErrUnavailable, cfg.addr, ldapMessage(err))
		}
	default:
		lc = goldap.NewConn(raw, false)
		lc.Start()
	}
	// Requests are timed by pagedSearch with a context rather than with
	// go-ldap's SetTimeout, which arms a timer for every entry received.
	c := &conn{Conn: lc, timeout: cfg.timeout, stop: context.AfterFunc(ctx, func() { _ = lc.Close() })}

	if err := c.Bind(cfg.bindDN.Reveal(), cfg.bindPass.Reveal()); err != nil {
		c.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, s.bindError(err)
	}
	_ = raw.SetDeadline(time.Time{})
	return c, nil
}

// pendingConn is a connection being dialled in the background.
type pendingConn struct {
	done chan struct{}
	c    *conn
	err  error
}

// dialAsync starts dialling a connection; wait returns it, close releases it.
func (s *source) dialAsync(ctx context.Context) *pendingConn {
	p := &pendingConn{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.c, p.err = s.dial(ctx)
	}()
	return p
}

// wait returns the connection once it is dialled.
func (p *pendingConn) wait() (*conn, error) {
	<-p.done
	return p.c, p.err
}

// close waits for the dial to end and closes the connection, if any.
func (p *pendingConn) close() {
	<-p.done
	if p.c != nil {
		p.c.Close()
	}
}

// tlsConfig returns the TLS configuration for one connection. The chain and
// name are verified in VerifyConnection (with the same rules as crypto/tls)
// so that the precise x509 error survives go-ldap's StartTLS, which flattens
// it into a string.
func (s *source) tlsConfig(verifyErr *error) *tls.Config {
	name, roots := s.cfg.tlsName, s.cfg.roots
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: name,
		// Verification is not skipped: VerifyConnection below does it.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				*verifyErr = errors.New("the DC sent no certificate")
				return *verifyErr
			}
			opts := x509.VerifyOptions{
				DNSName:       name,
				Roots:         roots,
				Intermediates: x509.NewCertPool(),
				KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			}
			for _, ic := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(ic)
			}
			if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
				*verifyErr = certError{err: err, leaf: cs.PeerCertificates[0]}
				return *verifyErr
			}
			return nil
		},
	}
}

// certError is a failed certificate verification with the certificate.
type certError struct {
	err  error
	leaf *x509.Certificate
}

func (e certError) Error() string { return e.err.Error() }
func (e certError) Unwrap() error { return e.err }

// tlsError explains a failed TLS handshake.
func (s *source) tlsError(err, verifyErr error) error {
	addr := s.cfg.addr
	var ce certError
	if errors.As(verifyErr, &ce) {
		return fmt.Errorf("%w: TLS with %s: %s", connectors.ErrInvalidConfig, addr, describeCertError(ce, s.cfg.tlsName, s.cfg.roots != nil))
	}
	if verifyErr != nil {
		return fmt.Errorf("%w: TLS with %s: %v", connectors.ErrInvalidConfig, addr, verifyErr)
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) || strings.Contains(err.Error(), "does not look like a TLS handshake") {
		return fmt.Errorf("%w: TLS with %s failed: the server did not answer with TLS (use ldaps:// on port 636, or ldap:// with start_tls on port 389)",
			connectors.ErrInvalidConfig, addr)
	}
	return fmt.Errorf("%w: TLS handshake with %s failed: %v", connectors.ErrUnavailable, addr, ldapMessage(err))
}

// describeCertError names the certificate problem and the fix.
func describeCertError(ce certError, name string, customCA bool) string {
	leaf := ce.leaf
	subject := leaf.Subject.CommonName
	if subject == "" {
		subject = leaf.Subject.String()
	}
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(ce.err, &ua):
		fix := "set ca_file to the PEM file of the CA that issued it"
		if customCA {
			fix = "ca_file does not hold the CA that issued it: use the issuing CA's certificate"
		}
		return fmt.Sprintf("the DC's certificate (%q, issued by %q) is signed by an unknown authority: %s",
			subject, leaf.Issuer.CommonName, fix)
	case errors.As(ce.err, &he):
		names := append([]string{}, leaf.DNSNames...)
		for _, ip := range leaf.IPAddresses {
			names = append(names, ip.String())
		}
		if len(names) == 0 {
			names = []string{leaf.Subject.CommonName}
		}
		return fmt.Sprintf("the DC's certificate is valid for %s, not for %q: put one of those names in the url, or set server_name",
			strings.Join(names, ", "), name)
	case errors.As(ce.err, &ci) && ci.Reason == x509.Expired:
		now := time.Now()
		if now.Before(leaf.NotBefore) {
			return fmt.Sprintf("the DC's certificate %q is not valid before %s (check the clocks)", subject, leaf.NotBefore.UTC().Format(time.RFC3339))
		}
		return fmt.Sprintf("the DC's certificate %q expired on %s: renew it on the DC", subject, leaf.NotAfter.UTC().Format(time.RFC3339))
	case errors.As(ce.err, &ci):
		return fmt.Sprintf("the DC's certificate %q is not valid: %v", subject, ci)
	}
	return fmt.Sprintf("the DC's certificate %q cannot be verified: %v", subject, ce.err)
}

func isHandshakeFailure(err error) bool {
	return strings.Contains(err.Error(), "TLS handshake failed")
}

// dialError explains why the TCP connection failed.
func dialError(addr string, timeout time.Duration, err error) error {
	var dnsErr *net.DNSError
	var addrErr *net.AddrError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return fmt.Errorf("%w: cannot resolve the host of %s (no such host): check the url", connectors.ErrUnavailable, addr)
	case errors.As(err, &addrErr):
		return fmt.Errorf("%w: cannot resolve the host of %s (%s): check the url", connectors.ErrUnavailable, addr, addrErr.Err)
	case errors.As(err, &dnsErr):
		return fmt.Errorf("%w: cannot resolve the host of %s: %v", connectors.ErrUnavailable, addr, dnsErr)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: %s refused the connection: is the DC up, and is the port right (636 for ldaps, 389 for ldap)?", connectors.ErrUnavailable, addr)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return fmt.Errorf("%w: no answer from %s within %s (firewall, or wrong host?)", connectors.ErrUnavailable, addr, timeout)
	case errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH):
		return fmt.Errorf("%w: %s is unreachable (no route to host)", connectors.ErrUnavailable, addr)
	}
	return fmt.Errorf("%w: cannot connect to %s: %v", connectors.ErrUnavailable, addr, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// AD puts a Win32 error code in the diagnostic message of a failed bind:
// "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error,
// data 52e, v1db1".
var adDataCodeRE = regexp.MustCompile(`data ([0-9a-fA-F]+)`)

// adBindReasons maps AD's bind data codes to words.
var adBindReasons = map[string]string{
	"525": "user not found",
	"52e": "invalid credentials (wrong password, or no such user)",
	"530": "not permitted to log on at this time (logon hours restriction)",
	"531": "not permitted to log on from this workstation",
	"532": "password expired",
	"533": "account disabled",
	"568": "too many security IDs in the token",
	"701": "account expired",
	"773": "user must reset the password before logging on",
	"775": "account locked out",
}

// bindError explains a failed bind. The bind DN is a secret: it is named by
// its setting, never quoted.
func (s *source) bindError(err error) error {
	var le *goldap.Error
	if errors.As(err, &le) {
		msg := ldapMessage(err)
		switch le.ResultCode {
		case goldap.LDAPResultInvalidCredentials:
			if m := adDataCodeRE.FindStringSubmatch(msg); m != nil {
				code := strings.ToLower(m[1])
				reason, ok := adBindReasons[code]
				if !ok {
					reason = "refused"
				}
				return fmt.Errorf("%w: the DC %s refused the bind_dn/bind_password credentials: %s (AD data code %s)",
					connectors.ErrUnauthorized, s.cfg.addr, reason, code)
			}
			return fmt.Errorf("%w: the DC %s refused the bind_dn/bind_password credentials: invalid credentials", connectors.ErrUnauthorized, s.cfg.addr)
		case goldap.LDAPResultStrongAuthRequired, goldap.LDAPResultConfidentialityRequired:
			return fmt.Errorf("%w: the DC %s requires an encrypted connection for a simple bind: use ldaps:// or start_tls", connectors.ErrInvalidConfig, s.cfg.addr)
		case goldap.LDAPResultInappropriateAuthentication, goldap.LDAPResultInsufficientAccessRights, goldap.LDAPResultUnwillingToPerform:
			return fmt.Errorf("%w: the DC %s refused the bind: %s", connectors.ErrUnauthorized, s.cfg.addr, msg)
		case goldap.ErrorEmptyPassword:
			return fmt.Errorf("%w: bind_password is empty", connectors.ErrInvalidConfig)
		}
	}
	return s.opError("binding", err)
}

// opError classifies a failed LDAP operation; what says what was being done
// ("reading the RootDSE").
func (s *source) opError(what string, err error) error {
	addr := s.cfg.addr
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("ad %s while %s: %w", addr, what, err)
	}
	var le *goldap.Error
	if !errors.As(err, &le) {
		// go-ldap reports a broken connection as a plain error
		return fmt.Errorf("%w: connection to %s lost while %s: %v", connectors.ErrUnavailable, addr, what, err)
	}
	msg := ldapMessage(err)
	switch le.ResultCode {
	case goldap.ErrorNetwork:
		return fmt.Errorf("%w: connection to %s lost while %s: %s", connectors.ErrUnavailable, addr, what, msg)
	case goldap.LDAPResultNoSuchObject:
		return fmt.Errorf("%w: %s while %s: no such object (matched up to %q)", connectors.ErrNotFound, addr, what, le.MatchedDN)
	case goldap.LDAPResultInsufficientAccessRights, goldap.LDAPResultInvalidCredentials:
		return fmt.Errorf("%w: %s while %s: the bind account lacks the right: %s", connectors.ErrUnauthorized, addr, what, msg)
	case goldap.LDAPResultFilterError, goldap.ErrorFilterCompile, goldap.LDAPResultInvalidDNSyntax, goldap.LDAPResultInvalidAttributeSyntax:
		return fmt.Errorf("%w: %s while %s: %s", connectors.ErrInvalidConfig, addr, what, msg)
	case goldap.ErrorUnexpectedMessage, goldap.ErrorUnexpectedResponse, goldap.LDAPResultProtocolError, goldap.LDAPResultDecodingError:
		return fmt.Errorf("%w: %s while %s: %s", connectors.ErrBadResponse, addr, what, msg)
	}
	return fmt.Errorf("%w: %s while %s: %s (LDAP result %d)", connectors.ErrUnavailable, addr, what, msg, le.ResultCode)
}

// ldapMessage is the server's or library's message without go-ldap's
// "LDAP Result Code 49 \"Invalid Credentials\": " prefix.
func ldapMessage(err error) string {
	var le *goldap.Error
	if errors.As(err, &le) && le.Err != nil {
		name := goldap.LDAPResultCodeMap[le.ResultCode]
		if m := strings.TrimSpace(le.Err.Error()); m != "" {
			if name != "" {
				return name + ": " + m
			}
			return m
		}
		return name
	}
	return err.Error()
}
