// Command bench runs selfserve's benchmark scenarios and prints one line per
// scenario and size: the baseline and our figure measured in the same run,
// the time ratio, the rate and the peak RSS.
//
//	go run ./cmd/bench              every scenario at full size (make bench)
//	go run ./cmd/bench -quick       small sizes, same code paths (make bench-quick, CI)
//	go run ./cmd/bench -run ad-full,scan -reps 5
//
// It exits non-zero when a scenario fails to run, never because of a figure.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"selfserve/connectors"
	"selfserve/connectors/graph"
	"selfserve/internal/bench"
)

func scenarios() []bench.Scenario {
	return []bench.Scenario{
		bench.ADFull(),
		bench.ADIncremental(),
		bench.ADFullSQLite(),
		bench.AgentFull(),
		bench.StoreUpsert(),
		bench.GraphImport(func() connectors.Config { return new(graph.Config) }),
		bench.Scan(),
		bench.Notices(),
		bench.Blocklist(),
		bench.ChallengeVerify(),
		bench.UnlockStorm(),
		bench.ConsolePage(),
		bench.ConsoleSearch(),
	}
}

// childResult is what a child process reports on stdout.
type childResult struct {
	ElapsedNS int64  `json:"elapsed_ns"`
	Error     string `json:"error,omitempty"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	quick := flag.Bool("quick", false, "small sizes, same code paths (CI)")
	only := flag.String("run", "", "comma-separated scenario names (default: all)")
	reps := flag.Int("reps", 3, "repetitions of each side (median and spread reported)")
	seed := flag.Uint64("seed", 20261124, "seed of the generated data")
	child := flag.String("child", "", "internal: measure one side of this scenario")
	side := flag.String("side", "", "internal: baseline or ours")
	size := flag.Int("size", 0, "internal: the size to measure")
	tmp := flag.String("tmp", "", "internal: the run's scratch directory")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of each measured \"ours\" side to this path (suffixed by its repetition)")
	flag.Parse()

	env := &bench.Env{
		PostgresURL: envOr("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"),
		RedisURL:    envOr("TEST_REDIS_URL", "redis://127.0.0.1:6379/14"),
		Seed:        *seed,
		TempDir:     *tmp,
	}
	if *child != "" {
		os.Exit(runChild(ctx, env, *child, bench.Side(*side), *size, *cpuProfile))
	}
	if *reps < 3 {
		fmt.Fprintln(os.Stderr, "bench: -reps must be at least 3")
		os.Exit(2)
	}
	dir, err := os.MkdirTemp("", "selfserve-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	env.TempDir = dir

	selected := map[string]bool{}
	for _, n := range strings.Split(*only, ",") {
		if n = strings.TrimSpace(n); n != "" {
			selected[n] = true
		}
	}
	mode := "full"
	if *quick {
		mode = "quick"
	}
	fmt.Printf("selfserve benchmarks (%s, %d repetitions each, seed %d, %s)\n", mode, *reps, *seed, time.Now().UTC().Format(time.RFC3339))
	failed := 0
	for _, sc := range scenarios() {
		if len(selected) > 0 && !selected[sc.Name] {
			continue
		}
		sizes := []int{sc.Size}
		if *quick {
			sizes = []int{sc.Quick}
		} else if sc.Growth {
			sizes = []int{sc.Size / 10, sc.Size}
		}
		for _, n := range sizes {
			line := measure(ctx, env, sc, n, *reps, *cpuProfile)
			fmt.Println(line)
			if line.Err != nil {
				failed++
			}
		}
	}
	if failed > 0 {
		fmt.Printf("%d scenario run(s) failed\n", failed)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// measure prepares a scenario at one size and runs each side reps times,
// alternating sides so drift affects both alike.
func measure(ctx context.Context, env *bench.Env, sc bench.Scenario, size, reps int, cpuProfile string) bench.Line {
	line := bench.Line{Scenario: sc.Name, Size: size, Unit: sc.Unit, Target: sc.Target, PerItem: sc.PerItem}
	if sc.Prepare != nil {
		if err := sc.Prepare(ctx, env, size); err != nil {
			line.Err = fmt.Errorf("prepare: %w", err)
			return line
		}
	}
	var base, ours []bench.Sample
	for rep := range reps {
		for _, side := range []bench.Side{bench.SideBaseline, bench.SideOurs} {
			profile := ""
			if cpuProfile != "" && side == bench.SideOurs {
				profile = fmt.Sprintf("%s.%s.%d", cpuProfile, sc.Name, rep+1)
			}
			s, err := runSide(ctx, env, sc.Name, side, size, profile)
			if err != nil {
				line.Err = fmt.Errorf("%s: %w", side, err)
				return line
			}
			if side == bench.SideBaseline {
				base = append(base, s)
			} else {
				ours = append(ours, s)
			}
		}
	}
	line.Baseline, line.Ours = bench.Summarize(base), bench.Summarize(ours)
	return line
}

// runSide re-executes this program to measure one side in a fresh process.
func runSide(ctx context.Context, env *bench.Env, name string, side bench.Side, size int, cpuProfile string) (bench.Sample, error) {
	exe, err := os.Executable()
	if err != nil {
		return bench.Sample{}, err
	}
	cmd := exec.CommandContext(ctx, exe, "-child", name, "-side", string(side), "-size", strconv.Itoa(size),
		"-seed", strconv.FormatUint(env.Seed, 10), "-tmp", env.TempDir, "-cpuprofile", cpuProfile)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	runErr := cmd.Run()
	var res childResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return bench.Sample{}, fmt.Errorf("child: %v %s", runErr, strings.TrimSpace(errOut.String()))
	}
	if res.Error != "" {
		return bench.Sample{}, fmt.Errorf("%s", res.Error)
	}
	s := bench.Sample{Elapsed: time.Duration(res.ElapsedNS)}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		s.MaxRSSKB = ru.Maxrss
	}
	return s, nil
}

func runChild(ctx context.Context, env *bench.Env, name string, side bench.Side, size int, cpuProfile string) int {
	for _, sc := range scenarios() {
		if sc.Name != name {
			continue
		}
		if cpuProfile != "" {
			stop, err := startCPUProfile(cpuProfile)
			if err != nil {
				json.NewEncoder(os.Stdout).Encode(childResult{Error: err.Error()})
				return 1
			}
			defer stop()
		}
		d, err := sc.Measure(ctx, env, side, size)
		res := childResult{ElapsedNS: int64(d)}
		if err != nil {
			res.Error = err.Error()
		}
		json.NewEncoder(os.Stdout).Encode(res)
		return 0
	}
	json.NewEncoder(os.Stdout).Encode(childResult{Error: "no scenario " + name})
	return 1
}

// startCPUProfile profiles this process into path until the returned
// function is called (the whole child: set-up and measured part).
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
