package main

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/twofold-id/twofold/password"
	"github.com/twofold-id/twofold/provider"
	"github.com/twofold-id/twofold/seal"
	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

// testPasswordParams make argon2id cheap in tests; the code path is the same.
var testPasswordParams = password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

// testServer is a real twofold, wired by buildServer, on a loopback port.
type testServer struct {
	*httptest.Server
	t      *testing.T
	a      *app
	srv    *server
	db     *store.DB
	issuer string
}

// newTestServer starts twofold on backend b; mutate adjusts the config.
func newTestServer(t *testing.T, b storetest.Backend, mutate func(*Config)) *testServer {
	t.Helper()
	return newTestServerWith(t, b, testOptions{mutate: mutate})
}

// testOptions adjust a test server: its configuration, and the clock of
// twofold's own rules.
type testOptions struct {
	mutate func(*Config)
	now    func() time.Time
	// logs, when set, gets the server's log as twofold writes it to
	// standard error: in the configured log_format and log_level.
	logs io.Writer
}

// newTestServerWith starts twofold on backend b with opts. When an SMTP
// server is configured, the outbox worker runs until the test ends.
func newTestServerWith(t *testing.T, b storetest.Backend, opts testOptions) *testServer {
	t.Helper()
	mutate := opts.mutate
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	cfg, err := LoadConfig("", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Issuer, cfg.DatabaseURL, cfg.DataDir = issuer, b.URL(t), t.TempDir()
	cfg.SecretKey = rand.Text() + rand.Text()
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	db := storetest.OpenURL(t, cfg.databaseURL())
	key, _ := decodeSecretKey(cfg.SecretKey)
	sealer, err := seal.New(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	if opts.logs != nil {
		log = newLogger(cfg, opts.logs)
	}
	a := &app{cfg: cfg, log: log, sealer: sealer, db: db, passwordParams: testPasswordParams, now: time.Now}
	if opts.now != nil {
		a.now = opts.now
	}
	srv, err := buildServer(context.Background(), a)
	if err != nil {
		t.Fatalf("build server: %v", err)
	}
	ts.Config.Handler = srv.handler
	ts.Start()
	t.Cleanup(ts.Close)
	if srv.worker != nil {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); srv.worker.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	return &testServer{Server: ts, t: t, a: a, srv: srv, db: db, issuer: issuer}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// testUser is a seeded user with a known password.
type testUser struct {
	store.User
	Password string
}

// createUser adds a user with a random password.
func (s *testServer) createUser(email string) testUser {
	s.t.Helper()
	pw := rand.Text()
	hash, err := password.New(testPasswordParams, 1).Hash(context.Background(), pw)
	if err != nil {
		s.t.Fatal(err)
	}
	u := store.User{ID: uuid.NewString(), Email: email, EmailVerified: true, Name: "User " + email, PasswordHash: hash, CreatedAt: time.Now()}
	if err := s.db.CreateUser(context.Background(), u); err != nil {
		s.t.Fatal(err)
	}
	return testUser{User: u, Password: pw}
}

// createClient registers c (defaults filled in) and returns its secret.
func (s *testServer) createClient(c store.Client) (store.Client, string) {
	s.t.Helper()
	if c.ID == "" {
		c.ID = "client-" + strings.ToLower(rand.Text()[:8])
	}
	if c.Name == "" {
		c.Name = "Test App"
	}
	if c.GrantTypes == nil {
		c.GrantTypes = []string{"authorization_code", "refresh_token"}
	}
	if c.Scopes == nil {
		c.Scopes = []string{"openid", "email", "profile", "offline_access"}
	}
	if c.RedirectURIs == nil {
		c.RedirectURIs = []string{"http://127.0.0.1:5555/callback"}
	}
	c.CreatedAt = time.Now()
	secret := ""
	if !c.Public {
		secret = newClientSecret()
		c.SecretHash = provider.HashClientSecret(s.a.sealer, secret)
	}
	if err := s.db.CreateClient(context.Background(), c); err != nil {
		s.t.Fatal(err)
	}
	return c, secret
}

// browser is a cookie-keeping HTTP client that follows redirects within
// twofold but stops at any other host, as a user agent reaching the
// relying party's redirect URI would.
type browser struct {
	t      *testing.T
	issuer string
	c      *http.Client
}

func (s *testServer) newBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{t: s.t, issuer: s.issuer}
	b.c = &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if !strings.HasPrefix(req.URL.String(), b.issuer+"/") || len(via) > 20 {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

// page is a fetched response with its body read.
type page struct {
	status   int
	url      *url.URL // where the browser ended up
	location string   // set when stopped at a redirect leaving twofold
	body     string
	header   http.Header
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := page{status: resp.StatusCode, url: resp.Request.URL, body: string(body), header: resp.Header}
	if resp.StatusCode/100 == 3 {
		p.location = resp.Header.Get("Location")
	}
	return p
}

func (b *browser) get(u string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// post submits a form as a same-origin page would.
func (b *browser) post(u string, form url.Values) page {
	b.t.Helper()
	if strings.HasPrefix(u, "/") {
		u = b.issuer + u
	}
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Origin", b.issuer)
	return b.do(req)
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// hidden returns the page's hidden form fields.
func (p page) hidden() url.Values {
	v := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(p.body, -1) {
		v.Set(m[1], htmlUnescape(m[2]))
	}
	return v
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&#39;", "'", "&quot;", `"`).Replace(s)
}

// login submits the sign-in form on p (which must be the login page).
func (b *browser) login(p page, email, pw string) page {
	b.t.Helper()
	if !strings.Contains(p.body, `name="password"`) {
		b.t.Fatalf("expected the sign-in page, got %d at %s:\n%s", p.status, p.url, p.body)
	}
	form := p.hidden()
	form.Set("email", email)
	form.Set("password", pw)
	return b.post("/login", form)
}

// consent answers the consent page on p.
func (b *browser) consent(p page, decision string) page {
	b.t.Helper()
	if !strings.Contains(p.body, `name="decision"`) {
		b.t.Fatalf("expected the consent page, got %d at %s:\n%s", p.status, p.url, p.body)
	}
	form := p.hidden()
	form.Set("decision", decision)
	return b.post("/consent", form)
}
