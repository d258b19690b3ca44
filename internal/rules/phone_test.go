package rules_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"selfserve/internal/rules"
)

func TestNormalizePhone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		raw    string
		region string
		want   string
		// wantErr, when set, is a part of the expected error message (the
		// reason); the message must also quote the input.
		wantErr string
	}{
		// United States.
		{name: "US national with parentheses", raw: "(201) 555-0123", region: "US", want: "+12015550123"},
		{name: "US national with dashes", raw: "201-555-0123", region: "US", want: "+12015550123"},
		{name: "US national with dots", raw: "201.555.0123", region: "US", want: "+12015550123"},
		{name: "US digits only", raw: "2015550123", region: "US", want: "+12015550123"},
		{name: "US with trunk 1", raw: "1 201 555 0123", region: "US", want: "+12015550123"},
		{name: "US with country code and no region", raw: "+1 (201) 555-0123", region: "", want: "+12015550123"},
		{name: "US with country code in another region", raw: "+1 201-555-0123", region: "GB", want: "+12015550123"},
		{name: "US from GB with international prefix", raw: "00 1 201 555 0123", region: "GB", want: "+12015550123"},
		{name: "region in lower case", raw: "201 555 0123", region: "us", want: "+12015550123"},
		{name: "surrounding spaces", raw: "  201 555 0123\t", region: " US ", want: "+12015550123"},

		// United Kingdom.
		{name: "GB landline national", raw: "020 7946 0958", region: "GB", want: "+442079460958"},
		{name: "GB mobile national", raw: "07400 123456", region: "GB", want: "+447400123456"},
		{name: "GB mobile with dashes", raw: "07400-123-456", region: "GB", want: "+447400123456"},
		{name: "GB with country code", raw: "+44 7400 123456", region: "", want: "+447400123456"},
		{name: "GB +44 (0) form", raw: "+44 (0) 20 7946 0958", region: "", want: "+442079460958"},
		{name: "GB +44 (0) form without space", raw: "+44 (0)7400 123456", region: "US", want: "+447400123456"},
		{name: "GB with country code given the region", raw: "+44 20 7946 0958", region: "GB", want: "+442079460958"},

		// Australia.
		{name: "AU mobile national", raw: "0412 345 678", region: "AU", want: "+61412345678"},
		{name: "AU landline with area code in parentheses", raw: "(02) 9876 5432", region: "AU", want: "+61298765432"},
		{name: "AU with country code", raw: "+61 412 345 678", region: "", want: "+61412345678"},
		{name: "AU +61 (0) form", raw: "+61 (0) 412 345 678", region: "GB", want: "+61412345678"},

		// Empty input is not an error: the field is simply unset.
		{name: "empty", raw: "", region: "GB", want: ""},
		{name: "blank", raw: "   ", region: "", want: ""},

		// Invalid numbers.
		{name: "too short", raw: "123", region: "US", wantErr: "not a valid number in US"},
		{name: "GB too short", raw: "020 79", region: "GB", wantErr: "GB"},
		{name: "letters only", raw: "abc", region: "US", wantErr: "letters"},
		{name: "letters inside a number", raw: "0412 34A 678", region: "AU", wantErr: "letters"},
		{name: "vanity letters", raw: "020 7946 ABCD", region: "GB", wantErr: "letters"},
		{name: "vanity letters with country code", raw: "+1 800 FLOWERS", region: "", wantErr: "letters"},
		{name: "extension", raw: "201 555 0123 ext 5", region: "US", wantErr: "letters"},
		{name: "US one digit short", raw: "201 555 012", region: "US", wantErr: "not a valid number in US"},
		{name: "US one digit long", raw: "201 555 01234", region: "US", wantErr: "not a valid number in US"},
		{name: "GB one digit long", raw: "020 7946 09588", region: "GB", wantErr: "not a valid number in GB"},
		{name: "AU one digit long", raw: "0412 345 6789", region: "AU", wantErr: "not a valid number in AU"},
		{name: "GB number read as US", raw: "020 7946 0958", region: "US", wantErr: "not a valid number in US"},
		{name: "no region and no country code", raw: "2015550123", region: "", wantErr: "no country code"},
		{name: "no region and a national GB number", raw: "07400 123456", region: "", wantErr: "no default region"},
		{name: "unknown country code", raw: "+999 1234 5678", region: "", wantErr: "unknown country code"},
		{name: "unknown region", raw: "2015550123", region: "XX", wantErr: `"XX"`},
		{name: "punctuation only", raw: "()-", region: "US", wantErr: "not a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := rules.NormalizePhone(tt.raw, tt.region)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("NormalizePhone(%q, %q) error: %v", tt.raw, tt.region, err)
				}
				if got != tt.want {
					t.Errorf("NormalizePhone(%q, %q) = %q, want %q", tt.raw, tt.region, got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("NormalizePhone(%q, %q) = %q, want an error", tt.raw, tt.region, got)
			}
			if got != "" {
				t.Errorf("NormalizePhone(%q, %q) returned %q with its error", tt.raw, tt.region, got)
			}
			if !errors.Is(err, rules.ErrInvalidPhone) {
				t.Errorf("error %v does not wrap ErrInvalidPhone", err)
			}
			msg := err.Error()
			if quoted := strconv.Quote(strings.TrimSpace(tt.raw)); !strings.Contains(msg, quoted) {
				t.Errorf("error %q does not name the input %s", msg, quoted)
			}
			if !strings.Contains(msg, tt.wantErr) {
				t.Errorf("error %q does not say %q", msg, tt.wantErr)
			}
		})
	}
}

func TestValidRegion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		region string
		want   bool
	}{
		{"", true},
		{"GB", true},
		{"us", true},
		{"AU", true},
		{"XX", false},
		{"UK", false},
		{"GBR", false},
	}
	for _, tt := range tests {
		t.Run(tt.region, func(t *testing.T) {
			t.Parallel()
			if got := rules.ValidRegion(tt.region); got != tt.want {
				t.Errorf("ValidRegion(%q) = %v, want %v", tt.region, got, tt.want)
			}
		})
	}
}

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		raw     string
		want    string
		wantErr string
	}{
		{name: "simple", raw: "ann.lee@contoso.example", want: "ann.lee@contoso.example"},
		{name: "plus tag and subdomain", raw: "Ann.Lee+it@mail.contoso.co.uk", want: "Ann.Lee+it@mail.contoso.co.uk"},
		{name: "surrounding spaces trimmed", raw: "  ann@contoso.example\t", want: "ann@contoso.example"},
		{name: "empty", raw: "", want: ""},
		{name: "blank", raw: "   ", want: ""},

		{name: "display name", raw: "Ann Lee <ann@contoso.example>", wantErr: "bare address"},
		{name: "quoted display name", raw: `"Lee, Ann" <ann@contoso.example>`, wantErr: "bare address"},
		{name: "angle brackets only", raw: "<ann@contoso.example>", wantErr: "bare address"},
		{name: "trailing comment", raw: "ann@contoso.example (Ann)", wantErr: "bare address"},
		{name: "two addresses", raw: "ann@contoso.example, bob@contoso.example", wantErr: "bare address"},
		{name: "missing domain dot", raw: "ann@localhost", wantErr: "fully qualified"},
		{name: "space in local part", raw: "ann lee@contoso.example", wantErr: "bare address"},
		{name: "space in domain", raw: "ann@contoso .example", wantErr: "bare address"},
		{name: "no at sign", raw: "ann.contoso.example", wantErr: "bare address"},
		{name: "no local part", raw: "@contoso.example", wantErr: "bare address"},
		{name: "no domain", raw: "ann@", wantErr: "bare address"},
		{name: "two at signs", raw: "ann@lee@contoso.example", wantErr: "bare address"},
		{name: "domain ends with a dot", raw: "ann@contoso.", wantErr: "bare address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := rules.NormalizeEmail(tt.raw)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("NormalizeEmail(%q) error: %v", tt.raw, err)
				}
				if got != tt.want {
					t.Errorf("NormalizeEmail(%q) = %q, want %q", tt.raw, got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("NormalizeEmail(%q) = %q, want an error", tt.raw, got)
			}
			if got != "" {
				t.Errorf("NormalizeEmail(%q) returned %q with its error", tt.raw, got)
			}
			if !errors.Is(err, rules.ErrInvalidEmail) {
				t.Errorf("error %v does not wrap ErrInvalidEmail", err)
			}
			msg := err.Error()
			if quoted := strconv.Quote(strings.TrimSpace(tt.raw)); !strings.Contains(msg, quoted) {
				t.Errorf("error %q does not name the input %s", msg, quoted)
			}
			if !strings.Contains(msg, tt.wantErr) {
				t.Errorf("error %q does not say %q", msg, tt.wantErr)
			}
		})
	}
}
