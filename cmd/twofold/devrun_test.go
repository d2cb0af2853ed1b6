package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildTwofold compiles ./cmd/twofold, as `make build` does, into a
// temporary directory and returns the binary's path.
func buildTwofold(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the twofold binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build twofold: %v", err)
	}
	gomod, err := exec.Command(goTool, "env", "GOMOD").Output()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(gomod)), "go.mod") {
		t.Fatalf("find the module root: %q, %v", gomod, err)
	}
	bin := filepath.Join(t.TempDir(), "twofold")
	cmd := exec.Command(goTool, "build", "-o", bin, "./cmd/twofold")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// childEnv is the test's environment without any TWOFOLD_ setting, plus vars.
func childEnv(vars ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TWOFOLD_") {
			env = append(env, kv)
		}
	}
	return append(env, vars...)
}

// freeLoopbackAddr returns a loopback address with a port nobody listens on.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// syncBuffer collects a child's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// devProcess is a running `twofold serve --dev`.
type devProcess struct {
	t              *testing.T
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{} // closed when the process has exited
	err            error         // its exit, once done is closed
}

// startDevProcess runs `twofold serve --dev` in dir, listening on addr,
// and waits until it serves discovery and has printed its demo accounts.
// The process is killed when the test ends, whatever happens.
func startDevProcess(t *testing.T, bin, dir, addr string) *devProcess {
	t.Helper()
	issuer := "http://" + addr
	p := &devProcess{t: t, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve", "--dev")
	p.cmd.Dir = dir
	p.cmd.Env = childEnv("TWOFOLD_LISTEN="+addr, "TWOFOLD_ISSUER="+issuer)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("twofold stdout:\n%s\ntwofold stderr:\n%s", p.stdout, p.stderr)
		}
	})

	deadline := time.Now().Add(20 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-p.done:
			t.Fatalf("twofold serve --dev exited early (%v):\n%s", p.err, p.stderr)
		default:
		}
		if resp, err := client.Get(issuer + "/.well-known/openid-configuration"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(p.stdout.String(), "change on every start") {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("twofold serve --dev did not come up on %s within 20s:\n%s", addr, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and checks the process shuts down cleanly, with exit
// status 0, within a few seconds.
func (p *devProcess) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Fatal("twofold did not exit within 10s of SIGTERM")
	}
	if p.err != nil {
		p.t.Fatalf("twofold exited with %v after SIGTERM, want status 0:\n%s", p.err, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "shutting down") {
		p.t.Errorf("no shutdown in the log:\n%s", p.stderr)
	}
}

// devCredentials are what development mode prints for this run.
type devCredentials struct {
	ownerEmail, ownerPassword string
	clientID, clientSecret    string
}

var (
	devOwnerLine  = regexp.MustCompile(`(?m)^\s*Owner:\s+(\S+@\S+)\s+password\s+(\S+)\s*$`)
	devClientLine = regexp.MustCompile(`(?m)^\s*Demo client:\s+client_id\s+(\S+)\s+client_secret\s+(\S+)\s*$`)
)

func (p *devProcess) credentials() devCredentials {
	p.t.Helper()
	out := p.stdout.String()
	owner, client := devOwnerLine.FindStringSubmatch(out), devClientLine.FindStringSubmatch(out)
	if owner == nil || client == nil {
		p.t.Fatalf("no owner or demo client in the start-up banner:\n%s", out)
	}
	return devCredentials{ownerEmail: owner[1], ownerPassword: owner[2], clientID: client[1], clientSecret: client[2]}
}

// newDevBrowser is a browser with a cookie jar on the development server;
// every redirect of the demo stays on that origin.
func newDevBrowser(t *testing.T, issuer string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, issuer: issuer, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

// assertDemoSignedIn checks that p is the demo relying party's page after
// a verified sign-in of email with a password alone.
func assertDemoSignedIn(t *testing.T, p page, email string) {
	t.Helper()
	if p.status != http.StatusOK || p.url.Path != "/demo" {
		t.Fatalf("ended at %d %s, want 200 /demo:\n%.3000s", p.status, p.url, p.body)
	}
	for _, want := range []string{"<dt>Signed in as</dt><dd>" + email + "</dd>", "<dt>Methods (amr)</dt><dd>pwd</dd>"} {
		if !strings.Contains(p.body, want) {
			t.Fatalf("demo page lacks %q:\n%.3000s", want, p.body)
		}
	}
	if strings.Contains(p.body, `class="error"`) {
		t.Fatalf("demo page shows an error:\n%.3000s", p.body)
	}
}

// tokenEndpointStatus presents the client's credentials at the token
// endpoint with a made-up code: authenticated, the client is told the
// grant is invalid (400); with a wrong secret, that it is unknown (401).
func tokenEndpointStatus(t *testing.T, issuer, clientID, secret string) int {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {"not-a-code"}, "redirect_uri": {issuer + "/demo/callback"}}
	req, err := http.NewRequest(http.MethodPost, issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestDevServer is the `make run` path: a newcomer starts `twofold serve
// --dev` in an empty directory, signs in to the demo application with the
// printed owner account, stops the server, starts it again.
func TestDevServer(t *testing.T) {
	bin := buildTwofold(t)
	dir := t.TempDir()
	addr := freeLoopbackAddr(t)
	issuer := "http://" + addr

	first := startDevProcess(t, bin, dir, addr)
	creds := first.credentials()
	if creds.ownerEmail != "owner@example.com" || creds.clientID != "demo" || !strings.Contains(first.stdout.String(), issuer+"/demo") {
		t.Fatalf("start-up banner:\n%s", first.stdout)
	}
	// The process sizes its garbage collector for password hashing unless
	// the environment chose (memory.go); tests that serve in-process never do.
	if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" && !strings.Contains(first.stderr.String(), "garbage collector sized for password hashing") {
		t.Errorf("no collector plan in the log:\n%s", first.stderr)
	}

	// The demo relying party walks the code flow through the network and
	// verifies the ID token with go-oidc; the browser only follows it.
	b := newDevBrowser(t, issuer)
	p := b.login(b.get(issuer+"/demo/login"), creds.ownerEmail, creds.ownerPassword)
	assertDemoSignedIn(t, b.consent(p, "allow"), creds.ownerEmail)

	if got := tokenEndpointStatus(t, issuer, creds.clientID, creds.clientSecret); got != http.StatusBadRequest {
		t.Errorf("the printed client secret: token endpoint answered %d, want 400 (client authenticated, bad code)", got)
	}
	if got := tokenEndpointStatus(t, issuer, creds.clientID, creds.clientSecret+"x"); got != http.StatusUnauthorized {
		t.Errorf("a wrong client secret: token endpoint answered %d, want 401", got)
	}

	// Generated secrets are owner-only.
	data := filepath.Join(dir, "data")
	for _, f := range []struct {
		path string
		mode fs.FileMode
	}{{data, fs.ModeDir | 0o700}, {filepath.Join(data, "secret.key"), 0o600}, {filepath.Join(data, "twofold.db"), 0o600}} {
		st, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != f.mode {
			t.Errorf("%s has mode %s, want %s", f.path, st.Mode(), f.mode)
		}
	}
	checkNoGroupOrOtherAccess(t, data)
	key, err := os.ReadFile(filepath.Join(data, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeSecretKey(string(key)); err != nil {
		t.Fatalf("generated secret key: %v", err)
	}

	first.stop()

	second := startDevProcess(t, bin, dir, addr)
	again := second.credentials()
	if again.ownerPassword == creds.ownerPassword || again.clientSecret == creds.clientSecret {
		t.Fatalf("the second start printed the same password or client secret:\n%s", second.stdout)
	}
	if key2, err := os.ReadFile(filepath.Join(data, "secret.key")); err != nil || !bytes.Equal(key2, key) {
		t.Fatalf("the secret key changed across starts (err %v)", err)
	}

	b = newDevBrowser(t, issuer)
	p = b.login(b.get(issuer+"/demo/login"), again.ownerEmail, creds.ownerPassword)
	if p.status != http.StatusUnauthorized || !strings.Contains(p.body, `name="password"`) {
		t.Fatalf("the old password: got %d at %s, want the sign-in page again with 401:\n%.2000s", p.status, p.url, p.body)
	}
	p = b.login(p, again.ownerEmail, again.ownerPassword)
	if strings.Contains(p.body, `name="decision"`) { // consent is remembered, but need not be
		p = b.consent(p, "allow")
	}
	assertDemoSignedIn(t, p, again.ownerEmail)

	if got := tokenEndpointStatus(t, issuer, again.clientID, creds.clientSecret); got != http.StatusUnauthorized {
		t.Errorf("the first run's client secret: token endpoint answered %d, want 401", got)
	}
	if got := tokenEndpointStatus(t, issuer, again.clientID, again.clientSecret); got != http.StatusBadRequest {
		t.Errorf("the new client secret: token endpoint answered %d, want 400", got)
	}
	second.stop()
}

// checkNoGroupOrOtherAccess fails for any file under dir (the SQLite WAL
// and shared-memory files included) that others may read.
func checkNoGroupOrOtherAccess(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %s; want no access for group or others", path, info.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBinaryExitStatus: main turns run's result into the exit status and
// messages an operator's script sees.
func TestBinaryExitStatus(t *testing.T) {
	bin := buildTwofold(t)
	key := fmt.Sprintf("TWOFOLD_SECRET_KEY=%x", randomKey(32))
	tests := []struct {
		name       string
		args       []string
		env        []string
		wantStatus int
		wantStdout string
		wantStderr []string
	}{
		{"version", []string{"version"}, nil, 0, "twofold dev\n", nil},
		{"unknown command", []string{"nope"}, nil, 2, "", []string{`unknown command "nope"`, "Usage:"}},
		{"client problems are shown, not only the usage", []string{"clients", "create", "--name", "A", "--public",
			"--redirect-uri", "http://app.example.com/cb", "--grant-types", "client_credentials"}, []string{key}, 2, "",
			[]string{"twofold: a public client cannot use client_credentials", `redirect URI "http://app.example.com/cb" must be https`, "Usage:"}},
		{"bad configuration", []string{"migrate"}, []string{key, "TWOFOLD_ISSUER=ftp://x", "TWOFOLD_LOG_FORMAT=xml"}, 1, "",
			[]string{"twofold: invalid configuration", `issuer: "ftp://x"`, `log_format: "xml"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, tt.args...)
			cmd.Dir = t.TempDir()
			cmd.Env = childEnv(append(tt.env, "TWOFOLD_DATA_DIR="+filepath.Join(cmd.Dir, "data"))...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			status := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				status = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if status != tt.wantStatus || stdout.String() != tt.wantStdout {
				t.Fatalf("exit %d, stdout %q; want %d, %q\nstderr:\n%s", status, stdout.String(), tt.wantStatus, tt.wantStdout, stderr.String())
			}
			for _, want := range tt.wantStderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
		})
	}
}
