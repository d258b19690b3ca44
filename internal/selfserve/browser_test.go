package selfserve_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"selfserve/internal/admin/link"
	"selfserve/internal/rules"
)

const chromiumPath = "/usr/bin/chromium"

// phone opens a headless Chromium (no sandbox, no background traffic) with
// a phone-sized window, for one test.
func phone(t *testing.T) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: -short")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skip("chromium is not installed (apt install chromium)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(390, 844),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel3)
	return ctx
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("browser at %s: %v", loc, err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

// shot runs axe-core on the page (no serious or critical violation) and
// saves a screenshot under the test's output folder.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if axe, err := os.ReadFile("../console/testdata/axe.min.js"); err == nil {
		do(t, ctx, chromedp.Evaluate[chromedp.Void](string(axe)))
		v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations.filter(v => v.impact === "serious" || v.impact === "critical").map(v => v.id + ": " + v.help))`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("axe: %v", err)
		}
		for _, x := range v {
			t.Errorf("axe on %s: %s", name, x)
		}
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(filepath.Join(t.ArtifactDir(), name+".png"), png, 0o644))
}

// TestBrowserPages walks the reset, unlock and enrolment pages in a
// phone-sized headless Chromium, without JavaScript of ours: a wrong code,
// a password the policy refuses, then the right ones.
func TestBrowserPages(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{st: storeForTest(t), demo: true})
	ctx := phone(t)
	base := h.srv.URL + "/acme"

	// Reset.
	do(t, ctx, chromedp.Navigate(base+"/change"), chromedp.WaitVisible(chromedp.CSS("#login")))
	if got := text(t, ctx, ".tenant"); got != "acme" {
		t.Errorf("tenant shown: %q", got)
	}
	if p := text(t, ctx, "#policy"); !strings.Contains(p, "at least 8 characters") {
		t.Errorf("policy before the password: %q", p)
	}
	shot(t, ctx, "reset-1-login")
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#login"), "alice@contoso.example"), chromedp.Submit(chromedp.CSS("#login")), chromedp.WaitVisible(chromedp.CSS("#code")))
	shot(t, ctx, "reset-2-code")
	files := waitCodes(t, h, 1)
	id := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(files[0]), "code-"), "-sms.txt")
	code, _ := h.code(id, "sms")
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#code"), "000000"), chromedp.Submit(chromedp.CSS("#code")), chromedp.WaitVisible(chromedp.CSS("#error")))
	if e := text(t, ctx, "#error"); !strings.Contains(e, "attempts left") {
		t.Errorf("wrong code: %q", e)
	}
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#code"), code), chromedp.Submit(chromedp.CSS("#code")), chromedp.WaitVisible(chromedp.CSS("#new_password")))
	shot(t, ctx, "reset-3-password")
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#new_password"), "password123"), chromedp.SendKeys(chromedp.CSS("#confirm"), "password123"),
		chromedp.Submit(chromedp.CSS("#new_password")), chromedp.WaitVisible(chromedp.CSS("#error")))
	if e := text(t, ctx, "#error"); !strings.Contains(e, "too common") {
		t.Errorf("refused password: %q", e)
	}
	shot(t, ctx, "reset-4-refused")
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#new_password"), "Tangerine-Orbit-4417"), chromedp.SendKeys(chromedp.CSS("#confirm"), "Tangerine-Orbit-4417"),
		chromedp.Submit(chromedp.CSS("#new_password")), chromedp.WaitVisible(chromedp.CSS("#done")))
	shot(t, ctx, "reset-5-done")

	// Unlock.
	do(t, ctx, chromedp.Navigate(base+"/unlock"), chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SendKeys(chromedp.CSS("#login"), "alice"), chromedp.Submit(chromedp.CSS("#login")), chromedp.WaitVisible(chromedp.CSS("#code")))
	files = waitCodes(t, h, 2)
	for _, f := range files {
		cid := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "code-"), "-sms.txt")
		if cid != id {
			code, _ = h.code(cid, "sms")
		}
	}
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#code"), code), chromedp.Submit(chromedp.CSS("#code")), chromedp.WaitVisible(chromedp.CSS("#unlock")))
	shot(t, ctx, "unlock-1-confirm")
	do(t, ctx, chromedp.Submit(chromedp.CSS("#unlock")), chromedp.WaitVisible(chromedp.CSS("#done")))
	shot(t, ctx, "unlock-2-done")

	// Enrolment through the welcome link.
	token := h.links.Sign(h.tenant.ID, h.users["erin"].ID, link.PurposeConfirmMobile, time.Now().Add(time.Hour))
	do(t, ctx, chromedp.Navigate(base+"/enrol?t="+token), chromedp.WaitVisible(chromedp.CSS("#mobile")))
	shot(t, ctx, "enrol-1-mobile")
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#mobile"), "07400 123106"), chromedp.Submit(chromedp.CSS("#mobile")), chromedp.WaitVisible(chromedp.CSS("#code")))
	files = waitCodes(t, h, 3)
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), "+447400123106") {
			cid := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "code-"), "-sms.txt")
			code, _ = h.code(cid, "sms")
		}
	}
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#code"), code), chromedp.Submit(chromedp.CSS("#code")), chromedp.WaitVisible(chromedp.CSS("#done")))
	shot(t, ctx, "enrol-2-done")
	u, err := h.st.EndUser(context.Background(), h.tenant.ID, h.users["erin"].ID)
	must(t, err)
	if u.Mobile != "+447400123106" || u.MobileSource != rules.ProvenanceEndUser {
		t.Errorf("enrolled mobile %q (%s)", u.Mobile, u.MobileSource)
	}
}

// waitCodes waits until n code messages are in the outbox.
func waitCodes(t *testing.T, h *harness, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f := h.codeFiles()
		if len(f) >= n {
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d code messages, want %d", len(f), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
