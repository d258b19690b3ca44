// Package bench is selfserve's benchmark harness. Every scenario measures
// our code and a baseline doing the same work the plainest way (raw
// ldapsearch, a bare SQL query, PostgreSQL COPY, a no-op queue handler) in
// the same run, and reports the ratio, so machine noise cancels out.
//
// Each measurement runs in a child process (the harness re-executes itself)
// so that its peak RSS is its own. Each scenario repeats at least three
// times and reports the median and the spread (min..max); data comes from a
// fixed seed, so every run measures the same work.
package bench

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Side names which half of a scenario a child process measures.
type Side string

// The two sides of a scenario.
const (
	SideBaseline Side = "baseline"
	SideOurs     Side = "ours"
)

// Scenario is one benchmark.
type Scenario struct {
	// Name identifies the scenario on the command line and in the report.
	Name string
	// Baseline and Ours describe the two sides in a few words.
	Baseline, Ours string
	// Size is the item count at full size, Quick at quick size (CI).
	Size, Quick int
	// Unit names the items ("users", "notices").
	Unit string
	// Target is the largest acceptable time ratio ours/baseline (0: none);
	// it is reported, never enforced.
	Target float64
	// Growth also runs the scenario at a tenth of its size.
	Growth bool
	// PerItem also reports the time per item of each side (for scenarios
	// whose items take well under a millisecond).
	PerItem bool
	// Needs lists what must be available ("postgres", "redis", "samba").
	Needs []string
	// Prepare runs once per size in the parent, before the repetitions
	// (seeding a directory, for example). May be nil.
	Prepare func(ctx context.Context, env *Env, size int) error
	// Measure runs one side once, in a child process, and returns the time
	// of the measured part only (setup excluded).
	Measure func(ctx context.Context, env *Env, side Side, size int) (time.Duration, error)
}

// Env is what scenarios may use: the servers of this run and a seed.
type Env struct {
	// PostgresURL is a PostgreSQL database the scenarios may create schemas
	// in.
	PostgresURL string
	// RedisURL is a Redis server whose DB 14 the scenarios may flush.
	RedisURL string
	// Seed makes generated data deterministic.
	Seed uint64
	// TempDir is scratch space that lives for the whole run.
	TempDir string
}

// Sample is one measured repetition of one side.
type Sample struct {
	Elapsed  time.Duration
	MaxRSSKB int64
}

// Stats summarises repetitions.
type Stats struct {
	Median, Min, Max time.Duration
	MaxRSSKB         int64
}

// Summarize computes the median, spread and peak RSS of samples.
func Summarize(samples []Sample) Stats {
	if len(samples) == 0 {
		return Stats{}
	}
	d := make([]time.Duration, len(samples))
	var rss int64
	for i, s := range samples {
		d[i] = s.Elapsed
		rss = max(rss, s.MaxRSSKB)
	}
	slices.Sort(d)
	med := d[len(d)/2]
	if len(d)%2 == 0 {
		med = (d[len(d)/2-1] + d[len(d)/2]) / 2
	}
	return Stats{Median: med, Min: d[0], Max: d[len(d)-1], MaxRSSKB: rss}
}

// Line is one reported scenario at one size.
type Line struct {
	Scenario string
	Size     int
	Unit     string
	Baseline Stats
	Ours     Stats
	Target   float64
	PerItem  bool
	Err      error
}

// Ratio is ours/baseline in time (lower is better; 1 = as fast as the
// baseline).
func (l Line) Ratio() float64 {
	if l.Baseline.Median <= 0 {
		return 0
	}
	return float64(l.Ours.Median) / float64(l.Baseline.Median)
}

// String formats the line for the report.
func (l Line) String() string {
	if l.Err != nil {
		return fmt.Sprintf("%-22s %9d %-8s FAILED: %v", l.Scenario, l.Size, l.Unit, l.Err)
	}
	target := "-"
	if l.Target > 0 {
		verdict := "met"
		if l.Ratio() > l.Target {
			verdict = "MISSED"
		}
		target = fmt.Sprintf("<=%.2f %s", l.Target, verdict)
	}
	s := fmt.Sprintf("%-22s %9d %-8s baseline %s  ours %s  ratio %.2f (target %s)  ours %s/s  peak RSS %d MB",
		l.Scenario, l.Size, l.Unit, spread(l.Baseline), spread(l.Ours), l.Ratio(), target,
		rate(l.Size, l.Ours.Median), l.Ours.MaxRSSKB/1024)
	if l.PerItem && l.Size > 0 {
		s += fmt.Sprintf("  per item: baseline %s, ours %s",
			l.Baseline.Median/time.Duration(l.Size), l.Ours.Median/time.Duration(l.Size))
	}
	return s
}

func spread(s Stats) string {
	return fmt.Sprintf("%8s [%s..%s]", round(s.Median), round(s.Min), round(s.Max))
}

func round(d time.Duration) time.Duration {
	switch {
	case d > 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d > time.Second:
		return d.Round(10 * time.Millisecond)
	default:
		return d.Round(time.Millisecond)
	}
}

func rate(n int, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(n)/d.Seconds())
}
