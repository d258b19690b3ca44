package passwords

import (
	"errors"
	"strings"
	"testing"

	"selfserve/connectors"
)

func TestCheck(t *testing.T) {
	ad := connectors.PasswordPolicy{MinLength: 7, Complexity: true, History: 24}
	plain := connectors.PasswordPolicy{MinLength: 8}
	ann := Identity{Username: "alee", UPN: "ann.lee@contoso.example", DisplayName: "Ann-Marie Lee, O'Brien"}
	tests := []struct {
		name     string
		policy   connectors.PasswordPolicy
		password string
		who      Identity
		want     Rule // "" = accepted
	}{
		// accepted
		{"complex enough", ad, "Tulip-Harbor-93", ann, ""},
		{"no complexity asked", plain, "tulip harbor ninety", ann, ""},
		{"exactly the minimum", connectors.PasswordPolicy{MinLength: 12, Complexity: true}, "Zq7-wVx4-Rr2", ann, ""},
		{"exactly the maximum", connectors.PasswordPolicy{}, strings.Repeat("Zq7!", MaxLength/4), ann, ""},
		{"zero policy still accepts one character", connectors.PasswordPolicy{}, "\u00e9", Identity{}, ""},
		{"name parts under 3 characters ignored", ad, "Al-Ed-Le-Tx99!", Identity{Username: "al", DisplayName: "Al Ed Le"}, ""},
		{"caseless letters are AD's fifth category", ad, "密码Tulip9", ann, ""},

		// encoding
		{"invalid UTF-8", ad, "Tulip-\xff-Harbor-93", ann, RuleEncoding},
		{"NUL byte", ad, "Tulip\x00Harbor93", ann, RuleEncoding},
		{"line break", ad, "Tulip\nHarbor93", ann, RuleEncoding},
		{"tab", ad, "Tulip\tHarbor93", ann, RuleEncoding},

		// max length
		{"257 characters", connectors.PasswordPolicy{}, strings.Repeat("a", MaxLength+1), ann, RuleMaxLength},
		{"one megabyte", ad, strings.Repeat("Zq7!", 1<<18), ann, RuleMaxLength},
		{"257 multibyte characters", connectors.PasswordPolicy{}, strings.Repeat("é", MaxLength+1), ann, RuleMaxLength},

		// min length
		{"empty with zero policy", connectors.PasswordPolicy{}, "", ann, RuleMinLength},
		{"one short", ad, "Zq7-wV", ann, RuleMinLength},
		{"counted in characters, not bytes", connectors.PasswordPolicy{MinLength: 8}, "ééééééé", ann, RuleMinLength},

		// complexity
		{"lower and digits only", ad, "tulipharbor93", ann, RuleComplexity},
		{"upper and lower only", ad, "TulipHarborSea", ann, RuleComplexity},
		{"currency signs are no symbol", ad, "tulip€harbor£", ann, RuleComplexity},
		{"space is no symbol", ad, "tulip harbor 93", ann, RuleComplexity},

		// names
		{"username", ad, "Xalee-Tulip9", ann, RuleName},
		{"username ignoring case", ad, "ALEE!Tulip9", ann, RuleName},
		{"UPN local part", ad, "Zann.lee9!", ann, RuleName},
		{"display name part", ad, "Marie-Tulip-9", ann, RuleName},
		{"display name part after comma", ad, "Tulip-O'brien9", ann, RuleName},
		{"DOMAIN backslash username", ad, "Jdoe!Tulip9x", Identity{Username: `CORP\jdoe`}, RuleName},
		{"names checked without complexity", plain, "ann-lee-tulip-harbor", Identity{DisplayName: "Ann Lee"}, RuleName},

		// blocklist
		{"common password", connectors.PasswordPolicy{MinLength: 6}, "123456", ann, RuleBlocklist},
		{"common password ignoring case", plain, "Baseball", ann, RuleBlocklist},
		{"common password passing complexity", ad, "Password1", ann, RuleBlocklist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.policy, tc.password, tc.who)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check = %v, want accepted", err)
				}
				return
			}
			var re *RuleError
			if !errors.As(err, &re) {
				t.Fatalf("Check = %v, want a *RuleError %s", err, tc.want)
			}
			if re.Rule != tc.want {
				t.Fatalf("rule %s (%q), want %s", re.Rule, re.Message, tc.want)
			}
			if re.Message == "" || (len(tc.password) > 3 && strings.Contains(re.Message, tc.password)) {
				t.Fatalf("message %q is empty or quotes the password", re.Message)
			}
		})
	}
}

func TestCheckMessagesNameTheRule(t *testing.T) {
	err := Check(connectors.PasswordPolicy{MinLength: 10}, "Zq7-wV", Identity{})
	if err == nil || !strings.Contains(err.Error(), "at least 10 characters") {
		t.Fatalf("Check = %v, want the minimum length in the message", err)
	}
}

func TestCategoryCount(t *testing.T) {
	for pw, want := range map[string]int{
		"":           0,
		"abc":        1,
		"ABC":        1,
		"123":        1,
		"!?/":        1,
		"aB3":        3,
		"aB3!":       4,
		"aB3!密":      5,
		"ÉÀ":         1, // upper case beyond ASCII
		"éà9":        2,
		"€£ ":        0,
		"ΣΦ σφ":      2, // Greek upper and lower
		"Пароль":     2, // Cyrillic
		"パスワード":      1,
		"abc~`|\\()": 2,
	} {
		if got := categories(pw); got != want {
			t.Errorf("categories(%q) = %d, want %d", pw, got, want)
		}
	}
}

func TestIdentityOf(t *testing.T) {
	got := IdentityOf(connectors.Account{ExternalID: "x", Username: "u", UPN: "u@x", DisplayName: "U X"})
	if got != (Identity{Username: "u", UPN: "u@x", DisplayName: "U X"}) {
		t.Fatalf("IdentityOf = %+v", got)
	}
}

func TestBlocklist(t *testing.T) {
	if n := BlocklistSize(); n < 100_000 {
		t.Fatalf("blocklist has %d entries, want at least 100,000", n)
	}
	for _, pw := range []string{"123456", "password", "PASSWORD", "qwerty", "iloveyou", "dragon", "letmein", "monkey"} {
		if !Blocked(pw) {
			t.Errorf("Blocked(%q) = false, want true", pw)
		}
	}
	for _, pw := range []string{"Tulip-Harbor-93", "zq7-wvx4-rr2-unlisted", ""} {
		if Blocked(pw) {
			t.Errorf("Blocked(%q) = true, want false", pw)
		}
	}
	entries, err := BlocklistEntries()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < BlocklistSize() {
		t.Fatalf("%d entries listed, %d distinct", len(entries), BlocklistSize())
	}
	// every listed entry is found, however it was hashed
	for i := 0; i < len(entries); i += 997 {
		if !Blocked(entries[i]) || !Blocked(strings.ToUpper(entries[i])) {
			t.Fatalf("entry %d %q is not blocked", i, entries[i])
		}
	}
}

func TestParseBlocklistRejectsBrokenData(t *testing.T) {
	if _, err := parseBlocklist([]byte("not gzip")); err == nil {
		t.Fatal("parseBlocklist accepted data that is not gzip")
	}
	if _, err := parseBlocklist(blocklistGz[:len(blocklistGz)/2]); err == nil {
		t.Fatal("parseBlocklist accepted a truncated file")
	}
}

// BenchmarkBlocked measures one lookup in the blocklist; BenchmarkMapLookup
// does the same lookups in a plain map of the same entries.
func BenchmarkBlocked(b *testing.B) {
	probes := benchProbes(b)
	BlocklistSize() // load outside the timer
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		Blocked(probes[i%len(probes)])
	}
}

func BenchmarkMapLookup(b *testing.B) {
	probes := benchProbes(b)
	entries, err := BlocklistEntries()
	if err != nil {
		b.Fatal(err)
	}
	set := make(map[string]struct{}, len(entries))
	for _, e := range entries {
		set[e] = struct{}{}
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_, _ = set[probes[i%len(probes)]]
	}
}

// benchProbes is half listed and half unlisted passwords.
func benchProbes(b *testing.B) []string {
	entries, err := BlocklistEntries()
	if err != nil {
		b.Fatal(err)
	}
	var probes []string
	for i := 0; i < len(entries); i += 101 {
		probes = append(probes, entries[i], entries[i]+"-not-listed")
	}
	return probes
}

// FuzzCheck: any input gets nil or a *RuleError with a message, never a
// panic, and a rule error never quotes the password.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"", "Tulip-Harbor-93", "\xff\xfe", "password", "Ann-Lee-99!", strings.Repeat("é", 300)} {
		f.Add(s, "alee", "Ann Lee", 7, true)
	}
	f.Fuzz(func(t *testing.T, pw, user, display string, minLen int, complexity bool) {
		err := Check(connectors.PasswordPolicy{MinLength: minLen % 300, Complexity: complexity}, pw, Identity{Username: user, DisplayName: display})
		if err == nil {
			return
		}
		var re *RuleError
		if !errors.As(err, &re) || re.Rule == "" || re.Message == "" {
			t.Fatalf("Check = %#v", err)
		}
		if len(pw) >= 12 && strings.Contains(re.Message, pw) {
			t.Fatalf("the message quotes the password: %q", re.Message)
		}
	})
}
