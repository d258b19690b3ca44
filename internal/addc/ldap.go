package addc

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"os"
	"unicode/utf16"

	goldap "github.com/go-ldap/ldap/v3"
)

// Dial opens an LDAPS connection to the DC, trusting its CA.
func (i Info) Dial() (*goldap.Conn, error) {
	pem, err := os.ReadFile(i.CACert)
	if err != nil {
		return nil, fmt.Errorf("addc: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("addc: no certificate in %s", i.CACert)
	}
	return goldap.DialURL(i.LDAPSURL, goldap.DialWithTLSConfig(&tls.Config{RootCAs: pool}))
}

// Binds reports whether the DC takes password as user's in a bind over
// LDAPS: false when it refuses them (invalid credentials, which is also
// what a locked-out or disabled account gets), an error when it could not
// say.
func (i Info) Binds(user, password string) (bool, error) {
	c, err := i.Dial()
	if err != nil {
		return false, err
	}
	defer c.Close()
	switch err := c.Bind(user, password); {
	case err == nil:
		return true, nil
	case goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials):
		return false, nil
	default:
		return false, fmt.Errorf("addc: bind as %s: %w", user, err)
	}
}

// ModifyUser applies change to the entry of the user whose
// userPrincipalName is upn, as the domain administrator.
func (i Info) ModifyUser(upn string, change func(*goldap.ModifyRequest)) error {
	c, err := i.Dial()
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Bind(i.BindDN, i.BindPass); err != nil {
		return fmt.Errorf("addc: bind as the administrator: %w", err)
	}
	res, err := c.Search(goldap.NewSearchRequest(i.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 2, 0, false,
		"(userPrincipalName="+goldap.EscapeFilter(upn)+")", []string{"1.1"}, nil))
	if err != nil {
		return fmt.Errorf("addc: find %s: %w", upn, err)
	}
	if len(res.Entries) != 1 {
		return fmt.Errorf("addc: %d entries for %s, want 1", len(res.Entries), upn)
	}
	req := goldap.NewModifyRequest(res.Entries[0].DN, nil)
	change(req)
	if err := c.Modify(req); err != nil {
		return fmt.Errorf("addc: modify %s: %w", upn, err)
	}
	return nil
}

// SetPassword sets the password of the user whose userPrincipalName is
// upn, as the domain administrator.
func (i Info) SetPassword(upn, password string) error {
	return i.ModifyUser(upn, func(r *goldap.ModifyRequest) { r.Replace("unicodePwd", []string{unicodePwd(password)}) })
}

// unicodePwd is password as AD's unicodePwd takes it: in double quotes,
// UTF-16LE.
func unicodePwd(password string) string {
	u := utf16.Encode([]rune(`"` + password + `"`))
	b := make([]byte, 2*len(u))
	for i, r := range u {
		binary.LittleEndian.PutUint16(b[2*i:], r)
	}
	return string(b)
}
