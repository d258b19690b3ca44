package bench

import (
	"context"
	"fmt"
	"iter"
	"math/rand/v2"
	"time"

	"selfserve/connectors"
)

// SyntheticSource is a directory that exists only in memory: n users made
// from a seed, yielded in pages. It stands in for a real directory when a
// scenario measures what happens after the source (normalising, storing).
type SyntheticSource struct {
	N, PageSize int
	Seed        uint64
	// Epoch anchors the generated password dates.
	Epoch time.Time
}

var _ connectors.UserSource = (*SyntheticSource)(nil)

// Close implements connectors.Source.
func (s *SyntheticSource) Close() error { return nil }

// Users implements connectors.UserSource.
func (s *SyntheticSource) Users(ctx context.Context, resume string) iter.Seq2[connectors.UserPage, error] {
	return func(yield func(connectors.UserPage, error) bool) {
		for start := 0; start < s.N; start += s.PageSize {
			if err := ctx.Err(); err != nil {
				yield(connectors.UserPage{}, err)
				return
			}
			page := connectors.UserPage{Users: make([]connectors.User, 0, s.PageSize)}
			for i := start; i < min(start+s.PageSize, s.N); i++ {
				page.Users = append(page.Users, SyntheticUser(s.Seed, i, s.Epoch))
			}
			if !yield(page, nil) {
				return
			}
		}
	}
}

// SyntheticUser is user i of the seed's population: about 8% never expire,
// 3% are disabled, 10% lack a mobile, expiry dates spread over 60 days
// around epoch.
func SyntheticUser(seed uint64, i int, epoch time.Time) connectors.User {
	r := rand.New(rand.NewPCG(seed, uint64(i)))
	name := fmt.Sprintf("user%07d", i)
	u := connectors.User{
		ExternalID:  fmt.Sprintf("synthetic-%d-%07d", seed, i),
		Username:    name,
		UPN:         name + "@corp.example",
		FirstName:   "First" + name[4:],
		LastName:    "Last" + name[4:],
		DisplayName: "User " + name[4:],
		Email:       name + "@corp.example",
		Mobile:      fmt.Sprintf("+4474%08d", r.IntN(100_000_000)),
		Enabled:     r.IntN(100) >= 3,
	}
	if r.IntN(100) < 10 {
		u.Mobile = ""
	}
	set := epoch.Add(-time.Duration(r.IntN(60*24)) * time.Hour).UTC().Truncate(time.Second)
	u.PasswordLastSet = set
	if r.IntN(100) < 8 {
		u.PasswordNeverExpires = true
	} else {
		u.PasswordExpiresAt = set.Add(42 * 24 * time.Hour)
	}
	return u
}
