package fakegraph

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"sort"
	"time"
)

// User is one Entra ID user as the fake stores it. String fields left empty
// are served as JSON null, as Graph does for unset properties.
type User struct {
	ID                string
	UserPrincipalName string
	Mail              string
	MobilePhone       string
	BusinessPhones    []string
	AccountEnabled    bool
	// LastPasswordChangeDateTime is served verbatim, so a test can plant a
	// malformed date. Graph's format is RFC 3339 in UTC ("2026-05-01T08:00:00Z").
	LastPasswordChangeDateTime string
	// PasswordPolicies is "", "DisablePasswordExpiration",
	// "DisableStrongPassword" or both comma-joined.
	PasswordPolicies         string
	OnPremisesSyncEnabled    bool
	OnPremisesImmutableID    string
	OnPremisesSamAccountName string
	GivenName                string
	Surname                  string
	DisplayName              string
	// PhoneMethods are the user's registered authentication phones, served at
	// /users/{id}/authentication/phoneMethods.
	PhoneMethods []PhoneMethod
}

// PhoneMethod is a registered authentication phone (phoneAuthenticationMethod).
type PhoneMethod struct {
	// PhoneType is "mobile", "alternateMobile" or "office".
	PhoneType string
	// PhoneNumber is in Graph's format: "+44 7401123456".
	PhoneNumber string
}

// Domain is a domain of the tenant as /domains serves it.
type Domain struct {
	ID string
	// PasswordValidityPeriodInDays is nil when unset (Graph then applies 90
	// days); 2147483647 means passwords never expire.
	PasswordValidityPeriodInDays *int32
	IsDefault                    bool
}

// NeverExpires is the passwordValidityPeriodInDays Graph uses for "passwords
// never expire" (Int32 max).
const NeverExpires int32 = 2147483647

// phoneMethodIDs are the fixed ids Graph gives each phone type.
var phoneMethodIDs = map[string]string{
	"mobile":          "3179e48a-750b-4051-897c-87b9720928f7",
	"alternateMobile": "b6332ec1-7057-4abe-9331-3d72feddfe41",
	"office":          "e37fc753-ff3b-4958-9484-eaa9425c82bc",
}

// DefaultDomains are the domains a Server has unless Options.Domains says
// otherwise: one with the validity unset (90 days), one with 180 days, one
// that never expires. Generated users are spread over them in turn.
func DefaultDomains() []Domain {
	days := int32(180)
	never := NeverExpires
	return []Domain{
		{ID: "contoso.example", IsDefault: true},
		{ID: "fabrikam.example", PasswordValidityPeriodInDays: &days},
		{ID: "never.example", PasswordValidityPeriodInDays: &never},
	}
}

var (
	givenNames = []string{"Ada", "Bram", "Chloe", "Dmitri", "Elif", "Farah", "Goran", "Hana", "Ines", "Jonas", "Keiko", "Luis", "Mira", "Nils", "Olu", "Priya"}
	surnames   = []string{"Adams", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ivanova", "Jansen", "Kim", "Larsen", "Moreau", "Novak", "Okafor", "Patel"}
)

// mix is splitmix64: a cheap, stateless hash that makes user i of a seed
// reproducible without storing anything.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// userID is the object id of the user at index i: a GUID whose last twelve
// hex digits are i, so ids are unique and map back to their index.
func userID(seed int64, i int) string {
	h := mix(uint64(seed))
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", uint32(h>>32), uint16(h>>16), uint16(h)&0xfff, uint16(h>>48)&0xfff, i)
}

// indexOf returns the index encoded in an id made by userID.
func indexOf(id string) (int, bool) {
	if len(id) != 36 {
		return 0, false
	}
	var i int
	if _, err := fmt.Sscanf(id[24:], "%012x", &i); err != nil {
		return 0, false
	}
	return i, true
}

// generate builds the generated user at index i. Everything derives from
// (seed, i) so a 100,000-user tenant costs no memory.
func generate(seed int64, i int, domains []Domain, now time.Time) User {
	r := mix(uint64(seed)*0x100000001b3 ^ uint64(i))
	given := givenNames[r%uint64(len(givenNames))]
	sur := surnames[(r>>8)%uint64(len(surnames))]
	domain := "contoso.example"
	if len(domains) > 0 {
		domain = domains[i%len(domains)].ID
	}
	local := fmt.Sprintf("user%06d", i)
	u := User{
		ID:                userID(seed, i),
		UserPrincipalName: local + "@" + domain,
		GivenName:         given,
		Surname:           sur,
		DisplayName:       given + " " + sur,
		AccountEnabled:    (r>>16)%20 != 0, // 1 in 20 disabled
		// Passwords changed 0..119 days before now, at a whole minute.
		LastPasswordChangeDateTime: now.Add(-time.Duration((r>>24)%(120*24*60)) * time.Minute).UTC().Format(time.RFC3339),
	}
	if (r>>40)%10 != 0 { // 9 in 10 have a mailbox
		u.Mail = local + "@" + domain
	}
	switch (r >> 44) % 10 {
	case 0, 1: // no mobile, but a registered authentication phone
		u.PhoneMethods = []PhoneMethod{{PhoneType: "mobile", PhoneNumber: fmt.Sprintf("+44 7401 %06d", i%1000000)}}
	case 2: // no phone at all
	default:
		u.MobilePhone = fmt.Sprintf("+44 7400 %06d", i%1000000)
	}
	if (r>>48)%3 == 0 {
		u.BusinessPhones = []string{fmt.Sprintf("+44 20 3%03d %04d", (i/10000)%1000, i%10000)}
	}
	switch (r >> 52) % 20 {
	case 0:
		u.PasswordPolicies = "DisablePasswordExpiration"
	case 1:
		u.PasswordPolicies = "DisableStrongPassword"
	case 2:
		u.PasswordPolicies = "DisablePasswordExpiration, DisableStrongPassword"
	}
	if (r>>56)%4 == 0 { // 1 in 4 synced from on-premises AD
		u.OnPremisesSyncEnabled = true
		u.OnPremisesSamAccountName = local
		var guid [16]byte
		binary.LittleEndian.PutUint64(guid[:8], mix(r))
		binary.LittleEndian.PutUint64(guid[8:], uint64(i))
		u.OnPremisesImmutableID = base64.StdEncoding.EncodeToString(guid[:])
	}
	return u
}

// removal is a deleted user: soft-deleted ("changed") or gone ("deleted").
type removal struct {
	permanent bool
}

// change is one entry of the change log that delta queries read.
type change struct {
	seq   uint64
	index int
}

// directory holds the tenant's users: count generated ones plus those added
// by tests, overrides for changed ones, tombstones for deleted ones and a
// change log. Callers hold Server.mu.
type directory struct {
	seed    int64
	count   int
	now     time.Time
	domains []Domain

	added     []User        // index count+k
	overrides map[int]*User // changed users
	deleted   map[int]removal
	seq       uint64         // last change sequence number
	latest    map[int]uint64 // index -> seq of its latest change
	log       []change       // in seq order; superseded entries are skipped
}

func newDirectory(seed int64, count int, domains []Domain, now time.Time) *directory {
	return &directory{
		seed: seed, count: count, now: now, domains: domains,
		overrides: map[int]*User{},
		deleted:   map[int]removal{},
		latest:    map[int]uint64{},
	}
}

// size is the number of indexes ever used (live or deleted).
func (d *directory) size() int { return d.count + len(d.added) }

// at returns the user at index i, whether deleted or not.
func (d *directory) at(i int) User {
	if u, ok := d.overrides[i]; ok {
		return *u
	}
	if i >= d.count {
		return d.added[i-d.count]
	}
	return generate(d.seed, i, d.domains, d.now)
}

// lookup finds the index of id.
func (d *directory) lookup(id string) (int, bool) {
	i, ok := indexOf(id)
	if !ok || i < 0 || i >= d.size() {
		return 0, false
	}
	if i >= d.count {
		return i, d.added[i-d.count].ID == id
	}
	return i, userID(d.seed, i) == id
}

func (d *directory) record(i int) {
	d.seq++
	d.latest[i] = d.seq
	d.log = append(d.log, change{seq: d.seq, index: i})
}

// changesAfter returns the indexes changed in (after, upto], each once at its
// latest change, in change order, at most limit of them, and the seq of the
// last one returned.
func (d *directory) changesAfter(after, upto uint64, limit int) ([]int, uint64, bool) {
	start := sort.Search(len(d.log), func(k int) bool { return d.log[k].seq > after })
	var out []int
	last := after
	for k := start; k < len(d.log) && d.log[k].seq <= upto; k++ {
		c := d.log[k]
		if d.latest[c.index] != c.seq {
			continue // changed again later: reported at its latest change
		}
		if len(out) == limit {
			return out, last, true
		}
		out = append(out, c.index)
		last = c.seq
	}
	return out, last, false
}
