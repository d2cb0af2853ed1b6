package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/twofold-id/twofold/store/storetest"
)

// TestHostileInput sends malformed, oversized and hostile input to every
// route of a real twofold, on each backend: every hostile value in every
// field a route reads (in the query or the form), with and without a
// signed-in browser or a live sign-in flow past the route's guards, raw
// bodies of every shape and content type, bad cookies and Authorization
// headers, hostile path segments and every method. It asserts that no
// answer is a 5xx, that no answer shows a stack trace, a Go or a database
// error, or reflects markup unescaped, and that the database is as it was
// except for what such requests may change: audit events of failures,
// rate-limit counters, sign-in flows started or ended and their failure
// counts, security-key challenges issued or spent, sessions' idle clocks,
// and the sessions signed out through POST /logout.
//
// The routes are read from the server's router: a route added without a
// spec in hostileRoutes fails the test until it is covered.
func TestHostileInput(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		t.Parallel()
		h := newHostile(t, b, true)
		specs := h.routes()
		var reqs []hostileReq
		for _, rt := range walkRoutes(t, h.s.srv.router) {
			spec, ok := specs[rt]
			if !ok {
				t.Errorf("route %s has no spec in hostileRoutes: say what it reads and who may call it", rt)
				continue
			}
			reqs = append(reqs, h.requests(rt, spec)...)
		}
		for _, path := range h.paths(specs) {
			reqs = append(reqs, h.methodSweep(path)...)
		}
		h.run(reqs)
	})
}

// TestHostileInputNoKeys sends the same to the routes of security keys on
// a server whose issuer is an IP address, where keys are unavailable: the
// forms are refused as such, never with a 5xx.
func TestHostileInputNoKeys(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		t.Parallel()
		h := newHostile(t, b, false)
		specs := h.routes()
		var reqs []hostileReq
		for _, rt := range []route{{"POST", "/login/2fa/key"}, {"POST", "/login/enroll/key"}, {"GET", "/settings/security/keys/new"},
			{"POST", "/settings/security/keys"}} {
			reqs = append(reqs, h.requests(rt, specs[rt])...)
		}
		h.run(reqs)
	})
}

// TestHostileInputDev does the same to the development-only routes: the
// demo relying party and the mail outbox viewer.
func TestHostileInputDev(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		t.Parallel()
		h := newHostileServer(t, newTestServer(t, b, func(c *Config) { c.Dev = true }))
		specs := map[route]routeSpec{
			{"GET", "/demo"}:          {},
			{"GET", "/demo/login"}:    {},
			{"GET", "/demo/callback"}: {fields: []string{"code", "state", "error", "error_description", "iss"}},
			{"GET", "/demo/logout"}:   {},
			{"GET", "/dev/mail"}:      {},
			{"GET", "/dev/mail/{id}"}: {vars: map[string]string{"id": "1"}},
		}
		var reqs []hostileReq
		for _, rt := range walkRoutes(t, h.s.srv.router) {
			if spec, ok := specs[rt]; ok {
				reqs = append(reqs, h.requests(rt, spec)...)
			} else if strings.HasPrefix(rt.path, "/demo") || strings.HasPrefix(rt.path, "/dev/") {
				t.Errorf("development route %s has no spec", rt)
			}
		}
		for _, path := range h.paths(specs) {
			reqs = append(reqs, h.methodSweep(path)...)
		}
		h.run(reqs)
	})
}

// route is a method and a path template of the router.
type route struct{ method, path string }

func (r route) String() string { return r.method + " " + r.path }

// walkRoutes lists the router's endpoints. A prefix route without methods
// (the static files) is listed with method "*".
func walkRoutes(t *testing.T, r *mux.Router) []route {
	t.Helper()
	var out []route
	err := r.Walk(func(rt *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		if rt.GetHandler() == nil {
			return nil // a subrouter
		}
		path, err := rt.GetPathTemplate()
		if err != nil {
			return err
		}
		methods, err := rt.GetMethods()
		if err != nil {
			methods = []string{"*"}
		}
		for _, m := range methods {
			if m != http.MethodHead { // HEAD is GET's, and swept as a method
				out = append(out, route{m, path})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 40 {
		t.Fatalf("walked only %d routes: %v", len(out), out)
	}
	return out
}

// routeSpec says what a route reads and who may call it.
type routeSpec struct {
	// fields are what the handler reads from the query or the form.
	fields []string
	// contexts are who sends the hostile values besides an anonymous
	// client (see hostile.context): a signed-in owner, a browser in the
	// middle of a sign-in flow, a client with its credentials...
	contexts []string
	// valid are fields kept valid in those contexts' requests, so that the
	// other fields' hostile values get past the first checks.
	valid map[string]string
	// vars are valid values of the path's variables.
	vars map[string]string
}

// routes is the spec of every route of the server.
func (h *hostile) routes() map[route]routeSpec {
	authorize := []string{"client_id", "response_type", "redirect_uri", "scope", "state", "nonce", "code_challenge",
		"code_challenge_method", "prompt", "max_age", "login_hint", "acr_values", "response_mode", "flow", "request",
		"request_uri", "id_token_hint", "claims", "ui_locales", "display", "audience", "resource"}
	validAuthorize := map[string]string{"client_id": h.client.ID, "response_type": "code", "redirect_uri": h.client.RedirectURIs[0],
		"code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"}
	token := []string{"grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "client_id", "client_secret",
		"scope", "audience", "client_assertion", "client_assertion_type"}
	endSession := []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state", "logout_hint", "ui_locales"}
	member := map[string]string{"user": h.member.ID}
	settings := []string{"owner", "stale"}
	return map[route]routeSpec{
		{"*", "/static/"}:                               {vars: map[string]string{"": "style.css"}},
		{"GET", "/metrics"}:                             {},
		{"GET", "/healthz"}:                             {},
		{"GET", "/readyz"}:                              {},
		{"GET", "/.well-known/openid-configuration"}:    {},
		{"GET", "/.well-known/jwks.json"}:               {},
		{"GET", "/oauth2/auth"}:                         {fields: authorize, contexts: []string{"owner", "flow:consent"}, valid: validAuthorize},
		{"POST", "/oauth2/auth"}:                        {fields: authorize, contexts: []string{"owner"}, valid: validAuthorize},
		{"GET", "/oauth2/sessions/logout"}:              {fields: endSession, contexts: []string{"hint", "owner"}},
		{"POST", "/oauth2/sessions/logout"}:             {fields: endSession, contexts: []string{"hint"}},
		{"POST", "/oauth2/token"}:                       {fields: token, contexts: []string{"client", "client:refresh", "public"}},
		{"POST", "/oauth2/revoke"}:                      {fields: []string{"token", "token_type_hint", "client_id", "client_secret"}, contexts: []string{"client"}},
		{"POST", "/oauth2/introspect"}:                  {fields: []string{"token", "token_type_hint", "scope"}, contexts: []string{"client", "bearer"}},
		{"GET", "/userinfo"}:                            {fields: []string{"access_token"}, contexts: []string{"bearer"}},
		{"POST", "/userinfo"}:                           {fields: []string{"access_token"}, contexts: []string{"bearer"}},
		{"GET", "/"}:                                    {contexts: []string{"owner"}},
		{"GET", "/login"}:                               {fields: []string{"flow", "return", "reauth"}, contexts: []string{"flow:login", "owner"}},
		{"POST", "/login"}:                              {fields: []string{"flow", "email", "password"}, contexts: []string{"flow:login", "flow:login+email"}},
		{"GET", "/login/continue"}:                      {fields: []string{"flow"}, contexts: []string{"flow:2fa"}},
		{"GET", "/login/2fa"}:                           {fields: []string{"flow"}, contexts: []string{"flow:2fa"}},
		{"POST", "/login/2fa"}:                          {fields: []string{"flow", "code"}, contexts: []string{"flow:2fa"}},
		{"POST", "/login/2fa/key"}:                      {fields: []string{"flow", "ceremony", "response"}, contexts: []string{"flow:2fa", "flow:2fa+key"}},
		{"GET", "/login/enroll"}:                        {fields: []string{"flow"}, contexts: []string{"flow:enroll"}},
		{"POST", "/login/enroll"}:                       {fields: []string{"flow", "code"}, contexts: []string{"flow:enroll"}},
		{"POST", "/login/enroll/key"}:                   {fields: []string{"flow", "ceremony", "name", "response"}, contexts: []string{"flow:enroll", "flow:enroll+key"}},
		{"GET", "/consent"}:                             {fields: []string{"flow"}, contexts: []string{"flow:consent"}},
		{"POST", "/consent"}:                            {fields: []string{"flow", "decision"}, contexts: []string{"flow:consent"}},
		{"GET", "/logout"}:                              {fields: []string{"client_id", "post_logout_redirect_uri", "state"}, contexts: []string{"owner"}},
		{"POST", "/logout"}:                             {fields: []string{"request"}, contexts: []string{"disposable"}},
		{"GET", "/settings/security"}:                   {fields: []string{"done"}, contexts: settings},
		{"GET", "/settings/security/totp"}:              {contexts: settings},
		{"POST", "/settings/security/totp"}:             {fields: []string{"code"}, contexts: settings},
		{"POST", "/settings/security/backup-codes"}:     {contexts: []string{"stale"}}, // reads nothing: from a recent sign-in, any POST is the action
		{"POST", "/settings/security/disable"}:          {contexts: []string{"stale"}}, // the same
		{"GET", "/settings/security/keys/new"}:          {contexts: settings},
		{"POST", "/settings/security/keys"}:             {fields: []string{"ceremony", "name", "response"}, contexts: []string{"owner", "owner+key", "stale"}},
		{"POST", "/settings/security/keys/{id}/rename"}: {fields: []string{"name"}, contexts: settings, vars: map[string]string{"id": "AAAA"}},
		{"POST", "/settings/security/keys/{id}/remove"}: {contexts: settings, vars: map[string]string{"id": "AAAA"}},
		{"GET", "/reset/{token}"}:                       {vars: map[string]string{"token": "x"}},
		{"POST", "/reset/{token}"}:                      {vars: map[string]string{"token": "x"}},
		{"GET", "/settings/members"}:                    {fields: []string{"org", "done"}, contexts: settings},
		{"GET", "/settings/audit"}:                      {fields: []string{"org"}, contexts: settings},
		{"GET", "/settings/members/{user}/reset"}:       {fields: []string{"org"}, contexts: settings, vars: member},
		{"POST", "/settings/members/{user}/reset"}:      {fields: []string{"org"}, contexts: settings, vars: member},
		{"POST", "/settings/members/{user}/resend"}:     {fields: []string{"org"}, contexts: settings, vars: member},
		{"POST", "/settings/organization/require-2fa"}:  {fields: []string{"org", "require"}, contexts: settings},
		{"GET", "/api/orgs/{org}/members"}:              {contexts: []string{"bearer"}, vars: map[string]string{"org": h.org}},
		// Reads nothing but its path: with a fresh token any request is the
		// reset, so the valid path names the owner, whom it refuses.
		{"POST", "/api/orgs/{org}/members/{user}/reset-2fa"}: {contexts: []string{"bearer"},
			vars: map[string]string{"org": h.org, "user": h.owner.ID}},
	}
}

// paths are the distinct paths of specs, variables filled in validly.
func (h *hostile) paths(specs map[route]routeSpec) []string {
	var out []string
	for rt, spec := range specs {
		p := fillPath(rt.path, spec.vars, "", "")
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// fillPath fills the template's variables from vars, except variable
// name, which gets value. The static files' prefix has variable "".
func fillPath(tpl string, vars map[string]string, name, value string) string {
	if strings.HasSuffix(tpl, "/") && tpl != "/" {
		if name == "" && value != "" {
			return tpl + value
		}
		return tpl + vars[""]
	}
	for k, v := range vars {
		if k == name && value != "" {
			v = value
		}
		tpl = strings.ReplaceAll(tpl, "{"+k+"}", v)
	}
	return tpl
}

// requestTimeout bounds one hostile request; none should come near it.
const requestTimeout = 30 * time.Second
