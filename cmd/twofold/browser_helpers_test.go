package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/twofold-id/twofold/store/storetest"
)

// The real-browser tests drive Debian's chromium, headless, through
// chromedp. Locally they skip when chromium is missing; in CI (CI=true,
// set by .ci/run, which installs chromium) they never skip.

const (
	// chromeTimeout bounds a whole browser test, so a hang fails fast.
	chromeTimeout = 2 * time.Minute
	// chromeStepTimeout bounds one step: a click and the page it loads.
	chromeStepTimeout = 20 * time.Second
)

// chromiumPath returns the chromium binary, or skips the test (fails it
// in CI) when there is none.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed: the browser tests must run in CI (.ci/run installs it)")
	}
	t.Skip("chromium is not installed; install it (apt-get install chromium) to run the browser tests")
	return ""
}

// newBrowserTestServer starts twofold on SQLite with issuer
// http://localhost:PORT: WebAuthn needs a host name as relying party id,
// and browsers refuse an IP address.
func newBrowserTestServer(t *testing.T, opts testOptions) *testServer {
	t.Helper()
	mutate := opts.mutate
	opts.mutate = func(c *Config) {
		c.Issuer = strings.Replace(c.Issuer, "http://127.0.0.1:", "http://localhost:", 1)
		if mutate != nil {
			mutate(c)
		}
	}
	s := newTestServerWith(t, storetest.SQLite(), opts)
	if !strings.HasPrefix(s.a.cfg.Issuer, "http://localhost:") {
		t.Fatalf("issuer %q is not on localhost", s.a.cfg.Issuer)
	}
	s.issuer = s.a.cfg.Issuer
	return s
}

// screenshotDir is where a journey's screenshots go: docs/screenshots
// when UPDATE_SCREENSHOTS=1 (for the documentation), else a temporary
// directory removed with the test.
func screenshotDir(t *testing.T) string {
	t.Helper()
	if os.Getenv("UPDATE_SCREENSHOTS") != "1" {
		return t.TempDir()
	}
	dir := filepath.Join("..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// chromeTab is one tab of a fresh headless chromium. It records what the
// pages write to the console, so a step can fail on a script error or a
// CSP violation, and saves a screenshot of each step.
type chromeTab struct {
	t       *testing.T
	ctx     context.Context
	journey string
	dir     string
	shots   int
	markers int

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
	// errorStatus is the error status the step under way expects for
	// the page it loads (navigate sets it): the browser's console line
	// about that response is no fault of the page.
	errorStatus int64
	// broken is closed at the first console error, so the step that
	// waits fails at once, not at its timeout.
	broken     chan struct{}
	brokenOnce sync.Once
}

// newChromeTab starts chromium with a fresh profile and opens a tab;
// journey prefixes the screenshots' names. Everything stops when the test
// ends or after chromeTimeout.
func newChromeTab(t *testing.T, journey string) *chromeTab {
	t.Helper()
	bin := chromiumPath(t)
	profile := t.TempDir() // before the cleanup below, so removed after chromium exits
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(profile),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1024, 768),
	)
	timeout, cancelTimeout := context.WithTimeout(context.Background(), chromeTimeout)
	alloc, cancelAlloc := chromedp.NewExecAllocator(timeout, opts...)
	ctx, cancelTab := chromedp.NewContext(alloc)
	c := &chromeTab{t: t, ctx: ctx, journey: journey, dir: screenshotDir(t), broken: make(chan struct{})}

	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for chromium to exit
		cancelTimeout()
		wg.Wait()
	})
	if err := chromedp.Do(ctx); err != nil { // starts chromium and opens the tab
		t.Fatalf("start chromium (%s): %v", bin, err)
	}
	// Subscribe before the first page, so no message is lost.
	messages := chromedp.Console(ctx)
	wg.Go(func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			c.mu.Lock()
			expected := c.errorStatus != 0 && m.Source == "network" && m.Type == chromedp.ConsoleError &&
				strings.Contains(m.Text, fmt.Sprintf("the server responded with a status of %d ", c.errorStatus))
			if !expected {
				c.console = append(c.console, m)
			}
			c.mu.Unlock()
			if !expected && isProblem(m) {
				c.brokenOnce.Do(func() { close(c.broken) })
			}
		}
	})
	return c
}

// do runs one step, bounded by chromeStepTimeout; on failure it saves a
// screenshot and reports where the browser was and what the console said.
func (c *chromeTab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	chromeRun(c, what, chromedp.Steps(actions...))
}

// chromeRun runs one step that returns a value, as chromeTab.do.
func chromeRun[T any](c *chromeTab, what string, action chromedp.Action[T]) T {
	c.t.Helper()
	ctx, cancel := c.stepContext()
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		c.fail("%s: %v", what, cmp.Or(context.Cause(ctx), err))
	}
	return v
}

// errConsole ends a step when the page logs an error.
var errConsole = errors.New("the page logged an error (see the console below)")

// stepContext bounds one step by chromeStepTimeout and ends it as soon
// as the page logs an error: a broken script fails the test at once.
func (c *chromeTab) stepContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(c.ctx)
	ctx, cancelTimeout := context.WithTimeout(ctx, chromeStepTimeout)
	stop := make(chan struct{})
	go func() {
		select {
		case <-c.broken:
			cancel(errConsole)
		case <-stop:
		}
	}()
	return ctx, func() { close(stop); cancelTimeout(); cancel(nil) }
}

// navigate loads a page with a click or by address and checks its status.
func (c *chromeTab) navigate(what string, wantStatus int64, actions ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	if wantStatus >= 400 {
		c.expectErrorStatus(wantStatus)
	}
	ctx, cancel := c.stepContext()
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, actions...)
	if err != nil {
		c.fail("%s: %v", what, cmp.Or(context.Cause(ctx), err))
	}
	if resp == nil {
		c.fail("%s: no response", what)
	}
	if resp.Status != wantStatus {
		c.fail("%s: status %d at %s, want %d", what, resp.Status, resp.URL, wantStatus)
	}
	if wantStatus >= 400 {
		c.syncConsole(what) // the browser's line about the status is in
		c.expectErrorStatus(0)
	}
}

func (c *chromeTab) expectErrorStatus(status int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errorStatus = status
}

// fail ends the test with the page's address, its text, the console, and
// a screenshot.
func (c *chromeTab) fail(format string, args ...any) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	// Kept after the test, unlike its temporary directories.
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		if f, err := os.CreateTemp("", "twofold-"+c.journey+"-failure-*.png"); err == nil {
			if _, err := f.Write(png); err == nil && f.Close() == nil {
				c.t.Logf("screenshot of the failure: %s", f.Name())
			}
		}
	}
	c.t.Fatalf("%s\nat %s:\n%.1500s\nconsole:\n%s", fmt.Sprintf(format, args...), loc, text, c.consoleText())
}

func (c *chromeTab) consoleText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, m := range c.console {
		if !strings.HasPrefix(m.Text, "chromeTab sync ") {
			fmt.Fprintf(&b, "  %s (%s %s:%d)\n", m, m.Source, m.URL, m.Line)
		}
	}
	return b.String()
}

// problems returns the console's errors and exceptions so far: a script
// that threw, a CSP violation, a resource that failed to load.
func (c *chromeTab) problems() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.console {
		if isProblem(m) {
			out = append(out, fmt.Sprintf("%s (%s %s:%d)", m, m.Source, m.URL, m.Line))
		}
	}
	return out
}

// isProblem tells an error or exception of the page's own from the
// browser's noise.
func isProblem(m chromedp.ConsoleMessage) bool {
	return m.Type == chromedp.ConsoleError || m.IsException()
}

// inlineCode finds script in the page itself: a <script> without src
// that is not a JSON data block, an on* handler attribute, or a
// javascript: address. The CSP forbids all of them.
const inlineCode = `(() => {
  const found = [];
  for (const s of document.scripts) {
    if (!s.src && s.type !== "application/json") found.push("inline <script>: " + s.textContent.slice(0, 80));
  }
  for (const el of document.querySelectorAll("*")) {
    for (const a of el.attributes) {
      if (a.name.startsWith("on")) found.push("<" + el.localName + " " + a.name + ">");
      if (/^\s*javascript:/i.test(a.value)) found.push("<" + el.localName + " " + a.name + "=javascript:>");
    }
  }
  return found;
})()`

// check asserts the page the tab shows is clean: no inline script, no
// console error or exception since the tab opened, a label and an
// autocomplete attribute on every field, and no serious accessibility
// violation (axe-core).
func (c *chromeTab) check(what string) {
	c.t.Helper()
	inline := chromeRun(c, what+": look for inline script", chromedp.Evaluate[[]string](inlineCode))
	if len(inline) > 0 {
		c.fail("%s: the page has inline script: %v", what, inline)
	}
	c.syncConsole(what)
	if p := c.problems(); len(p) > 0 {
		c.fail("%s: the console has errors:\n  %s", what, strings.Join(p, "\n  "))
	}
	c.checkFields(what)
	c.axe(what)
}

// syncConsole writes a marker to the page's console and waits until the
// recorder has it: the console keeps its order, so every message the page
// wrote before is recorded too.
func (c *chromeTab) syncConsole(what string) {
	c.t.Helper()
	c.markers++
	marker := fmt.Sprintf("chromeTab sync %d", c.markers)
	chromeRun(c, what+": console", chromedp.Evaluate[chromedp.Void](fmt.Sprintf("console.debug(%q)", marker)))
	deadline := time.Now().Add(5 * time.Second)
	for !c.seen(marker) {
		if time.Now().After(deadline) {
			c.fail("%s: the console marker never arrived", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *chromeTab) seen(marker string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.console) - 1; i >= 0; i-- {
		if c.console[i].Type == chromedp.ConsoleDebug && c.console[i].Text == marker {
			return true
		}
	}
	return false
}

// screenshot saves the page as <journey>-NN-<name>.png.
func (c *chromeTab) screenshot(name string) {
	c.t.Helper()
	png := chromeRun(c, "screenshot "+name, chromedp.FullScreenshot(100))
	c.shots++
	base := fmt.Sprintf("%s-%02d-%s.png", c.journey, c.shots, name)
	if err := os.WriteFile(filepath.Join(c.dir, base), png, 0o644); err != nil {
		c.t.Fatal(err)
	}
	producedShots.add(base)
}

// expectPage checks the page's address and heading, that it is clean,
// and saves its screenshot as name.
func (c *chromeTab) expectPage(name, urlPrefix, heading string) {
	c.t.Helper()
	loc := chromeRun(c, name+": location", chromedp.Location())
	if !strings.HasPrefix(loc, urlPrefix) {
		c.fail("%s: at %s, want %s", name, loc, urlPrefix)
	}
	h1 := chromeRun(c, name+": heading", chromedp.Text(chromedp.CSS("h1")))
	if strings.TrimSpace(h1) != heading {
		c.fail("%s: heading %q, want %q", name, h1, heading)
	}
	c.check(name)
	c.screenshot(name)
}

// addVirtualAuthenticator plugs Chrome's virtual authenticator (the
// DevTools WebAuthn domain) into the tab; it answers the page's WebAuthn
// ceremonies as a security key would, across the tab's navigations.
func (c *chromeTab) addVirtualAuthenticator(opts cdpwebauthn.VirtualAuthenticatorOptions) cdpwebauthn.AuthenticatorID {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, chromeStepTimeout)
	defer cancel()
	if _, err := chromedp.Call(ctx, cdpwebauthn.Enable, cdpwebauthn.EnableParams{}); err != nil {
		c.t.Fatalf("enable the WebAuthn domain: %v", err)
	}
	res, err := chromedp.Call(ctx, cdpwebauthn.AddVirtualAuthenticator, cdpwebauthn.AddVirtualAuthenticatorParams{Options: &opts})
	if err != nil {
		c.t.Fatalf("add a virtual authenticator: %v", err)
	}
	return res.AuthenticatorID
}

// credentials returns the credentials the virtual authenticator holds.
func (c *chromeTab) credentials(id cdpwebauthn.AuthenticatorID) []*cdpwebauthn.Credential {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, chromeStepTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, cdpwebauthn.GetCredentials, cdpwebauthn.GetCredentialsParams{AuthenticatorID: id})
	if err != nil {
		c.t.Fatalf("read the virtual authenticator's credentials: %v", err)
	}
	return res.Credentials
}

// signIn types u's email and password on the sign-in page, as a person
// would, and submits it.
func (c *chromeTab) signIn(u testUser) {
	c.t.Helper()
	c.do("type email and password",
		chromedp.SendKeys(chromedp.ID("email"), u.Email),
		chromedp.SendKeys(chromedp.ID("password"), u.Password))
	c.navigate("sign in", http.StatusOK, chromedp.Click(chromedp.CSS(`form[action="/login"] button[type="submit"]`)))
}
