package main

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// runChild runs the CLI with args in a child process (TestMain) and returns
// its exit code and output. The child gets limit to exit by itself.
func runChild(t *testing.T, limit time.Duration, args ...string) (code int, output string) {
	t.Helper()
	c := startChild(t, "selfserve "+strings.Join(args, " "), os.Environ(), args...)
	if !c.exited(limit) {
		t.Fatalf("selfserve %s still running after %s; output:\n%s", strings.Join(args, " "), limit, c.out.String())
	}
	return c.code, c.out.String()
}

// TestServeExitsWhenAListenerCannotBind: `serve` whose admin address is
// taken exits 1 and says which listener failed and why, after stopping the
// worker and the scheduler it had started; the same with the public
// address taken.
func TestServeExitsWhenAListenerCannotBind(t *testing.T) {
	useDatabase(t)
	t.Setenv("SELFSERVE_REDIS_URL", "embedded")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()

	t.Setenv("SELFSERVE_ADMIN_ADDR", taken.Addr().String())
	t.Setenv("SELFSERVE_PUBLIC_ADDR", "127.0.0.1:0")
	code, errOut := runChild(t, time.Minute, "serve")
	if code != 1 || !strings.Contains(errOut, "selfserve serve: admin API: listen on "+taken.Addr().String()) || !strings.Contains(errOut, "address already in use") {
		t.Fatalf("serve with its admin address taken: exit %d, stderr:\n%s", code, errOut)
	}

	t.Setenv("SELFSERVE_ADMIN_ADDR", "127.0.0.1:0")
	t.Setenv("SELFSERVE_PUBLIC_ADDR", taken.Addr().String())
	code, errOut = runChild(t, time.Minute, "serve")
	if code != 1 || !strings.Contains(errOut, "selfserve serve: public listener: listen on "+taken.Addr().String()) {
		t.Fatalf("serve with its public address taken: exit %d, stderr:\n%s", code, errOut)
	}
}

// TestWorkerExitsWhenRedisIsGone: a worker whose Redis has been unreachable
// for --redis-down-limit exits 1 with the cause, for its orchestrator to
// restart it, instead of retrying forever while looking alive.
func TestWorkerExitsWhenRedisIsGone(t *testing.T) {
	useDatabase(t)
	mr := miniredis.RunT(t)
	t.Setenv("SELFSERVE_REDIS_URL", "redis://"+mr.Addr()+"/0")
	c := startChild(t, "worker", os.Environ(), "worker", "--redis-down-limit", "500ms")

	// The worker is up once asynq has registered its server in Redis.
	up := time.NewTicker(10 * time.Millisecond)
	defer up.Stop()
	for deadline := time.After(time.Minute); len(mr.Keys()) == 0; {
		select {
		case <-c.done:
			t.Fatalf("the worker exited before Redis went: exit %d\n%s", c.code, c.out.String())
		case <-deadline:
			t.Fatalf("the worker did not register in Redis; output:\n%s", c.out.String())
		case <-up.C:
		}
	}
	mr.Close()
	if !c.exited(time.Minute) {
		t.Fatalf("the worker still runs a minute after Redis went; output:\n%s", c.out.String())
	}
	if c.code != 1 || !strings.Contains(c.out.String(), "selfserve worker: redis: unreachable for ") {
		t.Fatalf("worker after Redis went: exit %d, output:\n%s", c.code, c.out.String())
	}
}
