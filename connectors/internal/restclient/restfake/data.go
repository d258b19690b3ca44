package restfake

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Rand generates a fake's data deterministically from a seed: the same seed
// gives the same companies, people and numbers on every run.
type Rand struct {
	r *rand.Rand
}

// NewRand returns a generator seeded with seed.
func NewRand(seed uint64) *Rand {
	return &Rand{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// IntN returns a number in [0, n).
func (g *Rand) IntN(n int) int { return g.r.IntN(n) }

var (
	firstNames = []string{"Jane", "Robert", "Amélie", "Sean", "Priya", "Lars", "Chloe", "Mateo", "Aisha", "Tom", "Ingrid", "Kenji", "Olivia", "Marek", "Fatima", "Noah"}
	lastNames  = []string{"Doe", "Storts", "Dubois", "O'Brien", "Patel", "Andersen", "Martin", "García", "Khan", "Smith", "Berg", "Tanaka", "Jones", "Nowak", "Haddad", "Müller"}
	companyA   = []string{"Happy", "Blue", "North", "Silver", "Quiet", "Bright", "Iron", "Green"}
	companyB   = []string{"Frog", "Harbour", "Peak", "Fern", "Anchor", "Falcon", "Brook", "Lantern"}
	companyC   = []string{"Ltd", "Inc", "GmbH", "& Co", "LLC", "Pty Ltd"}
)

// Person returns a first and last name.
func (g *Rand) Person() (first, last string) {
	return firstNames[g.r.IntN(len(firstNames))], lastNames[g.r.IntN(len(lastNames))]
}

// Company returns a company name; i keeps names distinct within a fake.
func (g *Rand) Company(i int) string {
	return fmt.Sprintf("%s %s %d %s", companyA[g.r.IntN(len(companyA))], companyB[g.r.IntN(len(companyB))], i, companyC[g.r.IntN(len(companyC))])
}

// Email returns an address for a person at a company domain; n keeps
// addresses distinct.
func Email(first, last, company string, n int) string {
	return fmt.Sprintf("%s.%s%d@%s.example", asciiLower(first), asciiLower(last), n, asciiLower(strings.Fields(company)[1]))
}

// Digits returns a 10-digit North American number in the 555 range, digits
// only, as IT Glue and ConnectWise store them.
func (g *Rand) Digits() string {
	return fmt.Sprintf("%03d555%04d", 200+g.r.IntN(800), g.r.IntN(10000))
}

// Time returns a time within a year after base, to the second, in UTC.
func (g *Rand) Time(base time.Time) time.Time {
	return base.Add(time.Duration(g.r.IntN(365*24*3600)) * time.Second).UTC()
}

func asciiLower(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
