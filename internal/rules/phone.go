package rules

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"

	"github.com/nyaruka/phonenumbers"
)

// ErrInvalidPhone is wrapped by NormalizePhone's errors.
var ErrInvalidPhone = errors.New("invalid phone number")

// ErrInvalidEmail is wrapped by NormalizeEmail's errors.
var ErrInvalidEmail = errors.New("invalid email address")

// NormalizePhone returns raw in E.164 form ("+441632960961"). Numbers without
// a country code are read in region (ISO 3166 alpha-2, e.g. "GB"). An empty
// raw gives "" and no error. Letters are refused (the phone library would
// read "1-800-FLOWERS" as digits and drop "ext. 12"; neither makes a mobile
// number). Errors wrap ErrInvalidPhone, quote raw and say why.
func NormalizePhone(raw, region string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", nil
	}
	if strings.IndexFunc(raw, unicode.IsLetter) >= 0 {
		return "", fmt.Errorf("%w %q: contains letters; write the number with digits only", ErrInvalidPhone, raw)
	}
	region = strings.ToUpper(strings.TrimSpace(region))
	num, err := phonenumbers.Parse(raw, region)
	if err != nil {
		reason := err.Error()
		if errors.Is(err, phonenumbers.ErrInvalidCountryCode) {
			switch {
			case strings.HasPrefix(raw, "+"):
				reason = "unknown country code"
			case region == "":
				reason = "no country code and the customer has no default region"
			case !ValidRegion(region):
				reason = fmt.Sprintf("no country code and the default region %q is unknown", region)
			}
		}
		return "", fmt.Errorf("%w %q: %s", ErrInvalidPhone, raw, reason)
	}
	if !phonenumbers.IsValidNumber(num) {
		return "", fmt.Errorf("%w %q: not a valid number in %s", ErrInvalidPhone, raw, regionOf(num, region))
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}

// ValidRegion reports whether region is a two-letter region the phone library
// knows ("" is allowed: no default region).
func ValidRegion(region string) bool {
	if region == "" {
		return true
	}
	return phonenumbers.GetCountryCodeForRegion(strings.ToUpper(region)) != 0
}

func regionOf(num *phonenumbers.PhoneNumber, fallback string) string {
	if r := phonenumbers.GetRegionCodeForNumber(num); r != "" && r != "ZZ" {
		return r
	}
	if fallback != "" {
		return fallback
	}
	return fmt.Sprintf("country code +%d", num.GetCountryCode())
}

// NormalizeEmail trims raw and checks it is a single bare address
// (local@domain). An empty raw gives "" and no error.
func NormalizeEmail(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", nil
	}
	addr, err := mail.ParseAddress(raw)
	if err != nil || addr.Address != raw || addr.Name != "" {
		return "", fmt.Errorf("%w %q: expected a bare address such as name@example.com", ErrInvalidEmail, raw)
	}
	at := strings.LastIndexByte(raw, '@')
	if at <= 0 || !strings.Contains(raw[at+1:], ".") {
		return "", fmt.Errorf("%w %q: the domain must be fully qualified", ErrInvalidEmail, raw)
	}
	return raw, nil
}
