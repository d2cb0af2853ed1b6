package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// hydraVersion is the Ory Hydra that -compare measures twofold against.
const hydraVersion = "v2.3.0"

// hydra is a running Ory Hydra in its default configuration (opaque
// tokens), on its own fresh database on the same PostgreSQL, with a
// minimal login and consent app that accepts everything.
type hydra struct {
	env           *env // its database; dir is the scratch directory
	srv           *server
	public, admin string // base URLs
	app           *http.Server
	appURL        string
	service, web  clientCreds
}

// installHydra builds Hydra as a Go tool in a scratch module outside this
// repository (its go.mod stays untouched), under the user's cache
// directory, once.
func installHydra(ctx context.Context) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "twofold-bench", "hydra-"+hydraVersion)
	bin := filepath.Join(dir, "hydra")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	logf("installing Ory Hydra %s into %s (once; a few minutes)", hydraVersion, dir)
	// Hydra's own go.mod swaps pop for Ory's fork; a replace directive
	// applies only in the main module, so the scratch module repeats it.
	steps := [][]string{
		{"go", "mod", "init", "scratch/hydra"},
		{"go", "mod", "edit", "-replace", "github.com/gobuffalo/pop/v6=github.com/ory/pop/v6@v6.2.1-0.20241121111754-e5dfc0f3344b"},
		{"go", "get", "-tool", "github.com/ory/hydra/v2@" + hydraVersion},
		{"go", "build", "-o", bin, "github.com/ory/hydra/v2"},
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
		steps = steps[2:]
	}
	for _, s := range steps {
		cmd := exec.CommandContext(ctx, s[0], s[1:]...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("%s: %v\n%s", strings.Join(s, " "), err, out)
		}
	}
	return bin, nil
}

// startHydra migrates a fresh database, starts `hydra serve all` and the
// login and consent app, and registers the benchmark's clients.
func startHydra(ctx context.Context, o options) (_ *hydra, err error) {
	bin, err := installHydra(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "hydra-bench-")
	if err != nil {
		return nil, err
	}
	hy := &hydra{env: &env{dir: dir, adminURL: o.pgURL, dbPrefix: "hydra_bench_"}}
	defer func() {
		if err != nil {
			err = errors.Join(err, hy.close(ctx))
		}
	}()
	if err := hy.env.createDatabase(ctx); err != nil {
		return nil, err
	}
	addrs, err := freeAddrs(3)
	if err != nil {
		return nil, err
	}
	pub, adm, app := addrs[0], addrs[1], addrs[2]
	hy.public, hy.admin, hy.appURL = "http://"+pub, "http://"+adm, "http://"+app
	if err := hy.startApp(app); err != nil {
		return nil, err
	}
	// Hydra's pool gets twofold's size (4 per core, at least 8) or one
	// connection per client, whichever is more: its code flow holds more
	// than one connection at a time, and with fewer its concurrent flows
	// stall for a minute waiting for them (seen with 8 at 32 clients).
	dsn, err := url.Parse(hy.env.dbURL)
	if err != nil {
		return nil, err
	}
	q := dsn.Query()
	conns := fmt.Sprint(max(8, 4*numCPU(), slices.Max(o.levels)))
	q.Set("max_conns", conns)
	q.Set("max_idle_conns", conns)
	dsn.RawQuery = q.Encode()
	environ := append(os.Environ(),
		"DSN="+dsn.String(),
		"SECRETS_SYSTEM="+rand.Text(),
		"URLS_SELF_ISSUER="+hy.public,
		"URLS_LOGIN="+hy.appURL+"/login",
		"URLS_CONSENT="+hy.appURL+"/consent",
		"SERVE_PUBLIC_HOST=127.0.0.1", "SERVE_PUBLIC_PORT="+portOf(pub),
		"SERVE_ADMIN_HOST=127.0.0.1", "SERVE_ADMIN_PORT="+portOf(adm),
		"LOG_LEVEL=warn",
	)
	migrate := exec.CommandContext(ctx, bin, "migrate", "sql", "up", "-e", "--yes")
	migrate.Env = environ
	if out, err := migrate.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("hydra migrate: %v\n%s", err, out)
	}
	hy.srv, err = startProcess(ctx, bin, []string{"serve", "all", "--dev"}, environ,
		filepath.Join(dir, "hydra.log"), hy.admin+"/health/ready")
	if err != nil {
		return nil, err
	}
	if hy.service, err = hy.createClient(ctx, map[string]any{"client_name": "Bench Service",
		"grant_types": []string{"client_credentials"}, "scope": "api",
		"token_endpoint_auth_method": "client_secret_basic"}); err != nil {
		return nil, err
	}
	hy.web, err = hy.createClient(ctx, map[string]any{"client_name": "Bench Web App",
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"scope": "openid email profile offline_access", "redirect_uris": []string{redirectURI},
		"token_endpoint_auth_method": "client_secret_basic"})
	return hy, err
}

// createClient registers a client through Hydra's admin API.
func (hy *hydra) createClient(ctx context.Context, c map[string]any) (clientCreds, error) {
	c["client_secret"] = rand.Text() + rand.Text()
	var out clientCreds
	err := hy.adminCall(ctx, http.MethodPost, "/admin/clients", c, &out)
	if err == nil && (out.ID == "" || out.Secret == "") {
		err = errors.New("hydra: client created without id or secret")
	}
	return out, err
}

// adminCall sends a JSON request to Hydra's admin API and decodes the
// answer into out.
func (hy *hydra) adminCall(ctx context.Context, method, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, hy.admin+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := appClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("hydra %s %s: status %d: %.300s", method, path, resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}

// appClient is the login and consent app's own client for Hydra's admin API.
var appClient = &http.Client{Timeout: 30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}}

// startApp serves the login and consent app: it accepts every login
// request for one user and every consent request for the scopes the
// benchmark's application asks, remembered, and sends the browser back.
func (hy *hydra) startApp(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	accept := func(kind, challenge string, body map[string]any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var out struct {
				RedirectTo string `json:"redirect_to"`
			}
			q := url.Values{challenge: {r.URL.Query().Get(challenge)}}
			err := hy.adminCall(r.Context(), http.MethodPut, "/admin/oauth2/auth/requests/"+kind+"/accept?"+q.Encode(), body, &out)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			http.Redirect(w, r, out.RedirectTo, http.StatusFound)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", accept("login", "login_challenge",
		map[string]any{"subject": "bench-user", "remember": true, "remember_for": 0}))
	mux.HandleFunc("GET /consent", accept("consent", "consent_challenge",
		map[string]any{"grant_scope": []string{"openid", "email", "profile", "offline_access"}, "remember": true, "remember_for": 0}))
	hy.app = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go hy.app.Serve(ln)
	return nil
}

// close stops Hydra and its app and drops its database.
func (hy *hydra) close(ctx context.Context) error {
	var errs []error
	if hy.srv != nil {
		errs = append(errs, hy.srv.stop())
	}
	if hy.app != nil {
		errs = append(errs, hy.app.Close())
	}
	return errors.Join(append(errs, hy.env.close(ctx))...)
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}
