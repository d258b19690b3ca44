package enrich

import (
	"fmt"
	"slices"
	"strings"

	"selfserve/connectors"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// plan is what enriching one customer's end users from its contacts would
// write, with the counts and problems of the matching.
type plan struct {
	fills []store.ContactFill
	// intents says, per end user written, which values were meant, to tell
	// after the write whether one was refused because it changed meanwhile.
	intents  map[int64]intent
	counts   store.RunCounts
	problems []store.Problem
}

// intent is what a fill means to store for one end user.
type intent struct {
	user   store.EndUser
	email  string // "" when the email is left alone
	mobile string // "" when the mobile is left alone
	// emailCode and mobileCode are the counts the values went to (filled or
	// replaced).
	emailCode, mobileCode string
}

// matchContacts matches a customer's contacts with its existing end users and
// decides what to fill. A contact matches the end user whose email is one
// of the contact's addresses (case aside); failing that, the one end user
// whose first and last name are the contact's (case and spaces aside). A
// contact whose addresses or name fit several end users is ambiguous and
// reported; so is an end user matched by several contacts that give
// different values. Mobiles are normalised to E.164 in the customer's
// region; a contact whose mobiles all fail is reported. Values merge under
// rules.MergeContactField: a PSA value fills an empty field or replaces an
// earlier PSA value, never a directory, manual or end-user one.
func matchContacts(customer store.Customer, users []store.EndUser, contacts []connectors.Contact) plan {
	p := plan{intents: map[int64]intent{}, counts: store.RunCounts{}}
	byEmail := map[string][]int{}
	byName := map[string][]int{}
	for i, u := range users {
		if key := foldEmail(u.Email); key != "" {
			byEmail[key] = append(byEmail[key], i)
		}
		if key := userNameKey(u); key != "" {
			byName[key] = append(byName[key], i)
		}
	}

	// candidate is one contact's offer for one end user.
	type candidate struct {
		contact connectors.Contact
		byEmail bool
	}
	offers := map[int][]candidate{} // by index in users
	for _, c := range contacts {
		ref := contactRef(customer, c)
		hits := map[int]bool{}
		for _, e := range c.Emails {
			for _, i := range byEmail[foldEmail(e)] {
				hits[i] = true
			}
		}
		switch {
		case len(hits) == 1:
			for i := range hits {
				offers[i] = append(offers[i], candidate{c, true})
			}
			p.counts.Add(CountMatchedByEmail, 1)
			continue
		case len(hits) > 1:
			p.counts.Add(CountContactsAmbiguous, 1)
			p.problem(ref, "its email addresses belong to %d end users (%s): not guessed; fix the duplicate address in the directory or in the PSA",
				len(hits), userList(users, keys(hits)))
			continue
		}
		key := nameKey(c.FirstName, c.LastName)
		if key == "" {
			p.counts.Add(CountContactsUnmatched, 1)
			continue
		}
		switch named := byName[key]; len(named) {
		case 0:
			p.counts.Add(CountContactsUnmatched, 1)
		case 1:
			offers[named[0]] = append(offers[named[0]], candidate{c, false})
			p.counts.Add(CountMatchedByName, 1)
		default:
			p.counts.Add(CountContactsAmbiguous, 1)
			p.problem(ref, "no end user has its email addresses and %d end users are named %q (%s): not guessed",
				len(named), strings.TrimSpace(c.FirstName+" "+c.LastName), userList(users, named))
		}
	}

	matched := make([]int, 0, len(offers))
	for i := range offers {
		matched = append(matched, i)
	}
	slices.Sort(matched)
	for _, i := range matched {
		u := users[i]
		reported := len(p.problems)
		var emails, mobiles []string // distinct offered values
		var emailFrom, mobileFrom []string
		matchedByEmail := false
		for _, cand := range offers[i] {
			ref := contactRef(customer, cand.contact)
			if cand.byEmail {
				matchedByEmail = true
			} else if email, ok := p.firstEmail(ref, cand.contact); ok && !slices.Contains(emails, email) {
				emails = append(emails, email)
				emailFrom = append(emailFrom, contactID(cand.contact))
			}
			if mobile, ok := p.firstMobile(ref, cand.contact, customer.DefaultRegion); ok && !slices.Contains(mobiles, mobile) {
				mobiles = append(mobiles, mobile)
				mobileFrom = append(mobileFrom, contactID(cand.contact))
			}
		}
		who := endUserRef(customer, u)
		if matchedByEmail {
			// The end user's address is one of a contact's already: the
			// other contacts' addresses are not offered.
			emails = nil
		}
		ambiguous := false
		if len(emails) > 1 {
			ambiguous = true
			p.problem(who, "contacts %s give different email addresses (%s): not guessed", strings.Join(emailFrom, ", "), strings.Join(emails, ", "))
			emails = nil
		}
		if len(mobiles) > 1 {
			ambiguous = true
			p.problem(who, "contacts %s give different mobile numbers (%s): not guessed", strings.Join(mobileFrom, ", "), strings.Join(mobiles, ", "))
			mobiles = nil
		}
		if ambiguous {
			p.counts.Add(CountEndUsersAmbiguous, 1)
		}
		in := intent{user: u}
		kept := false
		if len(emails) == 1 {
			in.email, in.emailCode = p.merge(u.Email, u.EmailSource, emails[0], true)
			kept = in.emailCode == CountEmailsKept
		}
		if len(mobiles) == 1 {
			in.mobile, in.mobileCode = p.merge(u.Mobile, u.MobileSource, mobiles[0], false)
			kept = kept || in.mobileCode == CountMobilesKept
		}
		if in.email == "" && in.mobile == "" {
			if !kept && len(p.problems) == reported {
				p.counts.Add(CountEndUsersUpToDate, 1)
			}
			continue
		}
		fill := store.ContactFill{EndUserID: u.ID}
		if in.email != "" {
			fill.Email = &in.email
		}
		if in.mobile != "" {
			fill.Mobile = &in.mobile
		}
		p.fills = append(p.fills, fill)
		p.intents[u.ID] = in
	}
	return p
}

// merge applies the provenance rule to an offered value. It returns the
// value when it is to be written ("" otherwise) and the count it went to:
// filled, replaced, kept (a directory, manual or end-user value stays), or
// "" when the value is there already.
func (p *plan) merge(current string, currentFrom rules.Provenance, offered string, isEmail bool) (string, string) {
	if current == offered || isEmail && strings.EqualFold(current, offered) {
		return "", ""
	}
	value, from := rules.MergeContactField(current, currentFrom, offered, rules.ProvenancePSA)
	kept, code := CountMobilesKept, CountMobilesReplaced
	if isEmail {
		kept, code = CountEmailsKept, CountEmailsReplaced
	}
	switch {
	case from != rules.ProvenancePSA:
		p.counts.Add(kept, 1)
		return "", kept
	case current == "" && isEmail:
		code = CountEmailsFilled
	case current == "":
		code = CountMobilesFilled
	}
	p.counts.Add(code, 1)
	return value, code
}

// firstEmail returns the contact's first valid address. Invalid ones are
// reported when none is valid.
func (p *plan) firstEmail(ref string, c connectors.Contact) (string, bool) {
	var reasons []string
	for _, raw := range c.Emails {
		email, err := rules.NormalizeEmail(raw)
		if err != nil {
			reasons = append(reasons, err.Error())
			continue
		}
		if email != "" {
			return email, true
		}
	}
	if len(reasons) > 0 {
		p.counts.Add(CountEmailsInvalid, 1)
		p.problem(ref, "email not filled: %s", strings.Join(reasons, "; "))
	}
	return "", false
}

// firstMobile returns the contact's first mobile that normalises in region.
// Unparsable ones are reported, and not stored, when none is usable.
func (p *plan) firstMobile(ref string, c connectors.Contact, region string) (string, bool) {
	var reasons []string
	for _, raw := range c.Mobiles {
		mobile, err := rules.NormalizePhone(raw, region)
		if err != nil {
			reasons = append(reasons, err.Error())
			continue
		}
		if mobile != "" {
			return mobile, true
		}
	}
	if len(reasons) > 0 {
		p.counts.Add(CountMobilesUnparsable, 1)
		p.problem(ref, "mobile not filled: %s", strings.Join(reasons, "; "))
	}
	return "", false
}

func (p *plan) problem(ref, format string, args ...any) {
	p.problems = append(p.problems, store.Problem{Ref: ref, Reason: fmt.Sprintf(format, args...)})
}

// foldEmail is the form addresses are matched in.
func foldEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

// nameKey is the form names are matched in: first and last name, case and
// spaces aside; "" when either is missing.
func nameKey(first, last string) string {
	first, last = strings.Join(strings.Fields(first), " "), strings.Join(strings.Fields(last), " ")
	if first == "" || last == "" {
		return ""
	}
	return strings.ToLower(first + " " + last)
}

// userNameKey is an end user's name key: its first and last name, or, when
// the directory gave neither, its display name of two words or more.
func userNameKey(u store.EndUser) string {
	if key := nameKey(u.FirstName, u.LastName); key != "" {
		return key
	}
	if u.FirstName == "" && u.LastName == "" {
		if words := strings.Fields(u.DisplayName); len(words) >= 2 {
			return strings.ToLower(strings.Join(words, " "))
		}
	}
	return ""
}

func contactID(c connectors.Contact) string {
	if c.ExternalID != "" {
		return c.ExternalID
	}
	return c.Ref
}

func contactRef(customer store.Customer, c connectors.Contact) string {
	ref := c.Ref
	if ref == "" {
		ref = "contact " + c.ExternalID
	}
	return customer.Name + ": " + ref
}

func endUserRef(customer store.Customer, u store.EndUser) string {
	return customer.Name + ": end user " + userName(u)
}

// userName names an end user for a technician.
func userName(u store.EndUser) string {
	for _, s := range []string{u.Username, u.UPN, u.Email, u.DisplayName} {
		if s != "" {
			return s
		}
	}
	return fmt.Sprintf("#%d", u.ID)
}

func userList(users []store.EndUser, idx []int) string {
	names := make([]string, len(idx))
	for i, j := range idx {
		names[i] = userName(users[j])
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func keys(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
