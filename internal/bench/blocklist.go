package bench

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"selfserve/internal/passwords"
)

// Blocklist measures the offline blocklist lookup the password checks make
// (internal/passwords.Blocked: hash the lower-cased password, search a
// sorted slice of hashes) against a plain Go map of the same lower-cased
// entries, over the same n probes, half listed and half not, drawn from the
// run's seed. Loading either structure is outside the measured time; the
// report gives the time per lookup of each side.
func Blocklist() Scenario {
	return Scenario{
		Name:     "blocklist",
		Baseline: "map[string]struct{} of the same entries",
		Ours:     "passwords.Blocked (sorted maphash hashes)",
		Size:     1_000_000, Quick: 100_000, Unit: "lookups", PerItem: true,
		Measure: measureBlocklist,
	}
}

func measureBlocklist(_ context.Context, env *Env, side Side, size int) (time.Duration, error) {
	entries, err := passwords.BlocklistEntries()
	if err != nil {
		return 0, err
	}
	rng := rand.New(rand.NewPCG(env.Seed, 0xb10c))
	probes := make([]string, size)
	for i := range probes {
		probes[i] = entries[rng.IntN(len(entries))]
		if i%2 == 1 {
			probes[i] += "-not-listed"
		}
	}
	var lookup func(string) bool
	if side == SideBaseline {
		set := make(map[string]struct{}, len(entries))
		for _, e := range entries {
			set[e] = struct{}{}
		}
		lookup = func(p string) bool { _, ok := set[p]; return ok }
	} else {
		passwords.BlocklistSize() // load the list outside the timer
		lookup = passwords.Blocked
	}
	found := 0
	start := time.Now()
	for _, p := range probes {
		if lookup(p) {
			found++
		}
	}
	elapsed := time.Since(start)
	if found != (size+1)/2 {
		return elapsed, errors.New("the lookups found a different number of listed passwords than were probed")
	}
	return elapsed, nil
}
