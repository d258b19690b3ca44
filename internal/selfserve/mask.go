package selfserve

import (
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"unicode/utf8"
)

// Masked destinations: what the end user is told of where the codes went.
// A real challenge shows the last two digits of the mobile and the first
// letter of the email; a decoy (unknown or inactive login) shows made-up
// ones of the same shape, derived from the login under a secret key, so
// asking twice shows the same.

const dot = "•"

// maskMobile keeps the last two digits: "+•• •••• ••23". The country code is
// hidden too, so a made-up number cannot differ from a real one by it.
func maskMobile(e164 string) string {
	digits := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, e164)
	last := "00"
	if len(digits) >= 2 {
		last = digits[len(digits)-2:]
	}
	return "+" + dot + dot + " " + strings.Repeat(dot, 4) + " " + dot + dot + last
}

// maskEmail keeps the first letter of the mailbox only: "j•••@•••". The
// domain is hidden, so a made-up address cannot differ from a real one by
// it (an attacker knows the company's domain).
func maskEmail(addr string) string {
	local, _, _ := strings.Cut(strings.ToLower(addr), "@")
	if local == "" {
		local = "•"
	}
	return first(local) + dot + dot + dot + "@" + dot + dot + dot
}

func first(s string) string {
	r, _ := utf8.DecodeRuneInString(s)
	return string(r)
}

// decoyDestinations makes up, for a login that gets no code, the masked
// mobile and email a real end user would show: stable per tenant and login.
func (k keys) decoyDestinations(tenantID int64, login string) (mobile, email string) {
	login = strings.ToLower(strings.TrimSpace(login))
	h := hmac.New(sha256.New, k.decoy)
	h.Write([]byte(login))
	h.Write([]byte{byte(tenantID), byte(tenantID >> 8), byte(tenantID >> 16), byte(tenantID >> 24)})
	sum := h.Sum(nil)
	mobile = maskMobile(string([]byte{'0' + sum[0]%10, '0' + sum[1]%10}))
	name := login
	if _, user, ok := strings.Cut(login, `\`); ok && user != "" {
		name = user
	}
	if name == "" {
		name = string(rune('a' + sum[2]%26))
	}
	return mobile, maskEmail(name)
}
