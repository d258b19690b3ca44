package enrich

import (
	"fmt"
	"strings"
	"testing"

	"selfserve/connectors"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

func endUser(id int64, username, first, last, email, mobile string, mobileFrom rules.Provenance) store.EndUser {
	u := store.EndUser{ID: id, Username: username, FirstName: first, LastName: last, Email: email, Mobile: mobile, MobileSource: mobileFrom}
	if email != "" {
		u.EmailSource = rules.ProvenanceDirectory
	}
	return u
}

func contact(id, first, last string, emails, mobiles []string) connectors.Contact {
	return connectors.Contact{ExternalID: id, FirstName: first, LastName: last, Emails: emails, Mobiles: mobiles, Ref: "contact " + id}
}

type fillView map[int64]string

func fills(p plan) fillView {
	v := fillView{}
	for _, f := range p.fills {
		var parts []string
		if f.Email != nil {
			parts = append(parts, "email="+*f.Email)
		}
		if f.Mobile != nil {
			parts = append(parts, "mobile="+*f.Mobile)
		}
		v[f.EndUserID] = strings.Join(parts, " ")
	}
	return v
}

func problemsText(p plan) string {
	var b strings.Builder
	for _, pr := range p.problems {
		fmt.Fprintf(&b, "%s: %s\n", pr.Ref, pr.Reason)
	}
	return b.String()
}

func TestMatchContacts(t *testing.T) {
	t.Parallel()
	customer := store.Customer{ID: 1, Name: "Contoso", DefaultRegion: "GB"}
	users := []store.EndUser{
		endUser(1, "alice", "Alice", "Archer", "Alice.Archer@Contoso.example", "", ""),                            // by email, case aside
		endUser(2, "bob", "Bob", "Baker", "", "", ""),                                                             // by name: email and mobile
		endUser(3, "carol", "Carol", "Cole", "carol@contoso.example", "+447400123003", rules.ProvenanceDirectory), // directory mobile kept
		endUser(4, "dan", "Dan", "Dale", "dan@contoso.example", "+447400123004", rules.ProvenanceManual),          // typed mobile kept
		endUser(5, "erin1", "Erin", "Evans", "", "", ""),                                                          // two end users named Erin Evans
		endUser(6, "erin2", "erin", " EVANS ", "", "", ""),
		endUser(7, "fay", "Fay", "Fox", "fay@contoso.example", "", ""),                                // two contacts disagree
		endUser(8, "gus", "Gus", "Gray", "gus@contoso.example", "", ""),                               // unparsable mobile
		endUser(9, "hal", "Hal", "Hart", "hal@contoso.example", "+447400123009", rules.ProvenancePSA), // earlier PSA value replaced
		endUser(10, "ida", "Ida", "Ives", "ida@contoso.example", "", ""),                              // two contacts agree
		endUser(11, "jo", "Jo", "Jones", "shared@contoso.example", "", ""),                            // two end users share an address
		endUser(12, "kim", "Kim", "King", "shared@contoso.example", "", ""),
		endUser(13, "lee", "", "", "", "", ""), // display name only
	}
	users[12].DisplayName = "Lee  Lane"
	contacts := []connectors.Contact{
		contact("101", "A.", "Archer", []string{"home@a.example", "alice.archer@contoso.example"}, []string{"07400 123101"}),
		contact("102", "Bob", "BAKER", []string{"bob.baker@contoso.example"}, []string{"+44 7400 123102"}),
		contact("103", "Carol", "Cole", []string{"carol@contoso.example"}, []string{"07400123103"}),
		contact("104", "Dan", "Dale", []string{"dan@contoso.example"}, []string{"07400123104"}),
		contact("105", "Erin", "Evans", []string{"erin@elsewhere.example"}, []string{"07400123105"}),
		contact("106", "Fay", "Fox", []string{"fay@contoso.example"}, []string{"07400123106"}),
		contact("107", "Fay", "Fox", []string{"FAY@contoso.example"}, []string{"07400123107"}),
		contact("108", "Gus", "Gray", []string{"gus@contoso.example"}, []string{"12", "call me"}),
		contact("109", "Hal", "Hart", []string{"hal@contoso.example"}, []string{"07400123109"}),
		contact("110", "Ida", "Ives", []string{"ida@contoso.example"}, []string{"07400123110"}),
		contact("111", "Ida", "Ives", []string{"ida@contoso.example"}, []string{"+447400123110"}),
		contact("112", "Jo", "Jones", []string{"shared@contoso.example"}, []string{"07400123112"}),
		contact("113", "Nobody", "Known", []string{"nobody@contoso.example"}, []string{"07400123113"}),
		contact("114", "Lee", "Lane", []string{"not an address", "lee@contoso.example"}, []string{"07400123114"}),
		contact("115", "", "", nil, []string{"07400123115"}),
	}
	p := matchContacts(customer, users, contacts)
	want := fillView{
		1:  "mobile=+447400123101",
		2:  "email=bob.baker@contoso.example mobile=+447400123102",
		9:  "mobile=+447400123109",
		10: "mobile=+447400123110",
		13: "email=lee@contoso.example mobile=+447400123114",
	}
	got := fills(p)
	for id, w := range want {
		if got[id] != w {
			t.Errorf("end user %d: fill %q, want %q", id, got[id], w)
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("end user %d: unexpected fill %q", id, g)
		}
	}
	wantCounts := store.RunCounts{
		CountMatchedByEmail: 9, CountMatchedByName: 2, CountContactsUnmatched: 2, CountContactsAmbiguous: 2,
		CountEndUsersAmbiguous: 1, CountMobilesFilled: 4, CountEmailsFilled: 2, CountMobilesReplaced: 1,
		CountMobilesKept: 2, CountMobilesUnparsable: 1, CountEndUsersUpToDate: 0,
	}
	for code, n := range wantCounts {
		if p.counts[code] != n {
			t.Errorf("count %s = %d, want %d (all: %v)", code, p.counts[code], n, p.counts)
		}
	}
	problems := problemsText(p)
	for _, want := range []string{
		`Contoso: contact 105: no end user has its email addresses and 2 end users are named "Erin Evans" (erin1, erin2): not guessed`,
		`Contoso: contact 112: its email addresses belong to 2 end users (jo, kim)`,
		`Contoso: end user fay: contacts 106, 107 give different mobile numbers (+447400123106, +447400123107): not guessed`,
		`Contoso: contact 108: mobile not filled: invalid phone number "12"`,
		`contains letters`,
	} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems lack %q:\n%s", want, problems)
		}
	}
	if strings.Contains(problems, "not an address") {
		t.Errorf("an invalid address was reported although the contact had a valid one:\n%s", problems)
	}
	if s := Summary(p.counts); !strings.HasPrefix(s, "2 email addresses filled, 4 mobile numbers filled, 1 earlier PSA mobile number replaced") ||
		!strings.Contains(s, "2 contacts ambiguous (several end users match)") {
		t.Errorf("summary %q", s)
	}
}

func TestMatchWithoutRegionReportsNationalNumbers(t *testing.T) {
	t.Parallel()
	customer := store.Customer{ID: 1, Name: "No Region"}
	users := []store.EndUser{endUser(1, "alice", "Alice", "Archer", "alice@example.com", "", "")}
	p := matchContacts(customer, users, []connectors.Contact{contact("1", "Alice", "Archer", []string{"alice@example.com"}, []string{"07400 123101"})})
	if len(p.fills) != 0 || p.counts[CountMobilesUnparsable] != 1 || !strings.Contains(problemsText(p), "no default region") {
		t.Fatalf("fills %v counts %v problems %s", fills(p), p.counts, problemsText(p))
	}
	p = matchContacts(customer, users, []connectors.Contact{contact("1", "Alice", "Archer", []string{"alice@example.com"}, []string{"+44 7400 123101"})})
	if fills(p)[1] != "mobile=+447400123101" {
		t.Fatalf("an international number was not filled without a region: %v", fills(p))
	}
}

func TestSummary(t *testing.T) {
	t.Parallel()
	if s := Summary(store.RunCounts{CountMobilesFilled: 37, CountContactsAmbiguous: 4, "future_reason": 2, CountEmailsFilled: 1}); s !=
		"1 email address filled, 37 mobile numbers filled, 4 contacts ambiguous (several end users match), future_reason: 2" {
		t.Errorf("summary %q", s)
	}
	if s := Summary(nil); s != "nothing to do" {
		t.Errorf("empty summary %q", s)
	}
}
