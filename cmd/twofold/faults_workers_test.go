package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// The traffic of TestDatabaseOutage: workers that keep signing in and
// asking for tokens, and the rules their answers must follow.

// attempt is one sign-in or token request and how it went.
type attempt struct {
	worker     string
	start, end time.Time
	ok         bool
	// problem is set when the answer itself was wrong: a 500, internals
	// shown, a 4xx page for a fault that is not the user's, a code
	// without the second factor.
	problem string
}

// The phases of the outage.
const (
	phaseBefore = iota
	phaseOutage
	phaseRestoring
	phaseBack
)

// phase is where the outage is, and when each phase began.
type phase struct {
	mu sync.Mutex
	n  int
	at [phaseBack + 1]time.Time
}

func (p *phase) get() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func (p *phase) set(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n, p.at[n] = n, time.Now()
}

// since is when phase n began.
func (p *phase) since(n int) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.at[n]
}

// workers run the traffic. Each loops one kind of request until it has
// succeeded twice after the outage.
type workers struct {
	t        *testing.T
	ph       phase
	ctx      context.Context
	cancel   context.CancelFunc
	wg, warm sync.WaitGroup

	mu           sync.Mutex
	attempts     []attempt
	ccTokens     int    // client-credentials answers with a token
	rotated      int    // refresh answers with a new refresh token
	refreshToken string // the newest; the refresh worker's own until wait
}

// startWorkers starts three sign-in workers (each with its own users), a
// client-credentials worker and a refresh worker.
func (o *outageScene) startWorkers() *workers {
	w := &workers{t: o.t, refreshToken: o.grant.token.RefreshToken}
	w.ctx, w.cancel = context.WithTimeout(context.Background(), 40*time.Second)
	for i, users := range o.signers {
		sw := &signInWorker{s: o.s, rp: o.rp, users: users}
		w.run(fmt.Sprintf("sign-in %d", i), sw.try)
	}
	w.run("client credentials", func() (bool, string, bool) {
		st, body, err := tokenCall(o.s.issuer, o.svc.ID, o.svcSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"reports.read"}})
		if err != nil {
			return false, err.Error(), true
		}
		if st == http.StatusOK && body["access_token"] != nil {
			w.count(&w.ccTokens)
			return true, "", true
		}
		return false, oauthErrorProblem(st, body), true
	})
	w.run("refresh", func() (bool, string, bool) {
		st, body, err := o.refresh(w.refreshToken)
		if err != nil {
			return false, err.Error(), true
		}
		if next, _ := body["refresh_token"].(string); st == http.StatusOK && next != "" {
			w.refreshToken = next
			w.count(&w.rotated)
			return true, "", true
		}
		return false, oauthErrorProblem(st, body), true
	})
	return w
}

func (w *workers) count(n *int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	*n++
}

// run loops try (which reports tried false when it had nothing to do yet)
// until it has succeeded twice after the database's return.
func (w *workers) run(name string, try func() (ok bool, problem string, tried bool)) {
	w.warm.Add(1)
	w.wg.Go(func() {
		warmed, after := false, 0
		defer func() {
			if !warmed {
				w.warm.Done()
			}
		}()
		for w.ctx.Err() == nil && after < 2 {
			start := time.Now()
			back := w.ph.get() == phaseBack
			ok, problem, tried := try()
			if !tried {
				time.Sleep(250 * time.Millisecond) // no fresh TOTP step yet
				continue
			}
			w.mu.Lock()
			w.attempts = append(w.attempts, attempt{worker: name, start: start, end: time.Now(), ok: ok, problem: problem})
			w.mu.Unlock()
			if ok && !warmed {
				warmed = true
				w.warm.Done()
			}
			if ok && back {
				after++
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// warmUp waits until every worker has succeeded once.
func (w *workers) warmUp() {
	w.t.Helper()
	w.warm.Wait()
	if w.ctx.Err() != nil {
		w.t.Fatal("the workers did not get going before the outage")
	}
}

// wait waits until every worker has succeeded twice after the outage.
func (w *workers) wait() {
	w.t.Helper()
	w.wg.Wait()
	if w.ctx.Err() != nil {
		w.t.Fatal("the workers did not succeed twice each after the outage in time")
	}
}

func (w *workers) stop() {
	w.cancel()
	w.wg.Wait()
}

// judge applies the outage's rules to every attempt: no wrong answer ever;
// nothing succeeds while the database is surely away, and every worker
// tried then; everything succeeds from recoveryGrace after its return.
func (w *workers) judge() {
	t := w.t
	t.Helper()
	cut, restoring, back := w.ph.since(phaseOutage), w.ph.since(phaseRestoring), w.ph.since(phaseBack)
	during, first := map[string]int{}, map[string]time.Duration{}
	for _, a := range w.attempts {
		if a.problem != "" {
			t.Errorf("%s at %s: %s", a.worker, a.start.Format("15:04:05.000"), a.problem)
		}
		if a.start.After(cut) && a.end.Before(restoring) {
			during[a.worker]++
			if a.ok {
				t.Errorf("%s succeeded without a database (%s–%s)", a.worker, a.start.Format("15:04:05.000"), a.end.Format("15:04:05.000"))
			}
		}
		if a.start.After(back.Add(recoveryGrace)) && !a.ok {
			t.Errorf("%s failed %v after the database's return", a.worker, a.start.Sub(back).Round(time.Millisecond))
		}
		if _, seen := first[a.worker]; a.ok && a.start.After(back) && !seen {
			first[a.worker] = a.start.Sub(back).Round(time.Millisecond)
		}
	}
	for name, d := range first {
		if during[name] == 0 {
			t.Errorf("%s made no attempt during the outage", name)
		}
		t.Logf("%s: %d attempts refused during the outage; first success %v after it", name, during[name], d)
	}
}

// signInUser is a user and their authenticator app.
type signInUser struct {
	testUser
	app *authenticator
}

// signInWorker signs its users in, one after another, each time in a new
// browser: password, TOTP, code, tokens, verified ID token.
type signInWorker struct {
	s     *testServer
	rp    *relyingParty
	users []signInUser
	next  int
}

func (w *signInWorker) try() (ok bool, problem string, tried bool) {
	// A user with a fresh time step; the step is taken only at the second
	// factor, so an attempt refused earlier wastes none.
	var u signInUser
	for range w.users {
		if c := w.users[w.next%len(w.users)]; c.app.hasNext() {
			u = c
			break
		}
		w.next++
	}
	if u.app == nil {
		return false, "", false
	}
	s, rp := w.s, w.rp
	b := s.newBrowser()
	ar := rp.authRequest()
	p := b.request(http.MethodGet, strings.TrimPrefix(ar.url, s.issuer), nil, nil)
	if !strings.Contains(p.body, `name="password"`) {
		return false, pageProblem(p, rp), true
	}
	form := p.hidden()
	form.Set("email", u.Email)
	form.Set("password", u.Password)
	if p = b.request(http.MethodPost, "/login", form, nil); !strings.HasSuffix(p.url.Path, "/login/2fa") || p.status != http.StatusOK {
		if strings.HasPrefix(p.header.Get("Location"), rp.conf.RedirectURL) {
			return false, "the password alone was sent back to the application: " + p.header.Get("Location"), true
		}
		return false, pageProblem(p, rp), true
	}
	code, fresh := u.app.tryNext()
	if !fresh {
		return false, "", false
	}
	form = p.hidden()
	form.Set("code", code)
	p = b.request(http.MethodPost, "/login/2fa", form, nil)
	loc, err := url.Parse(p.header.Get("Location"))
	if p.status != http.StatusSeeOther && p.status != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), rp.conf.RedirectURL) {
		return false, pageProblem(p, rp), true
	}
	q := loc.Query()
	if q.Get("state") != ar.state {
		return false, "state mismatch in " + loc.String(), true
	}
	if q.Get("code") == "" {
		if q.Get("error") == "" {
			return false, "a redirect to the application with neither code nor error: " + loc.String(), true
		}
		return false, "", true // an OAuth error for the application
	}
	tok, err := rp.conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(ar.verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) {
			return false, "exchange: " + err.Error(), true
		}
		var body map[string]any
		json.Unmarshal(re.Body, &body)
		return false, oauthErrorProblem(re.Response.StatusCode, body), true
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(context.Background(), raw)
	if err != nil {
		return false, "ID token: " + err.Error(), true
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil || c.Sub != u.ID || !slices.Contains(c.AMR, "otp") || !slices.Contains(c.AMR, "mfa") {
		return false, fmt.Sprintf("signed in as %s with amr %v (%v), want %s with the second factor", c.Sub, c.AMR, err, u.ID), true
	}
	return true, "", true
}

// pageProblem says what is wrong with p as the answer to a sign-in step
// that did not go through: only the plain 503 page, or an OAuth error sent
// to the application, is right when the fault is the server's.
func pageProblem(p page, rp *relyingParty) string {
	switch {
	case p.status == 0:
		return "no answer"
	case p.status == http.StatusServiceUnavailable && strings.Contains(p.body, "Something went wrong") && !leaksInternals(p.body):
		return ""
	case p.status/100 == 3 && strings.HasPrefix(p.header.Get("Location"), rp.conf.RedirectURL):
		loc, _ := url.Parse(p.header.Get("Location"))
		if loc.Query().Get("error") != "" && loc.Query().Get("code") == "" {
			return ""
		}
	}
	return fmt.Sprintf("%d at %s: %.800s", p.status, p.url, p.body)
}

// hasNext says whether tryNext would give a code now.
func (a *authenticator) hasNext() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return time.Now().Unix()/30+1 > a.last
}

// tryNext returns a code for a time step not used before, or false at
// once when none is left until the clock moves on.
func (a *authenticator) tryNext() (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	cur := time.Now().Unix() / 30
	for s := cur - 1; s <= cur+1; s++ {
		if s > a.last {
			a.last = s
			return a.codeAt(s), true
		}
	}
	return "", false
}

// readyz asks /readyz.
func (s *testServer) readyz() (int, string) {
	resp, err := http.Get(s.URL + "/readyz")
	if err != nil {
		s.t.Errorf("/readyz: %v", err)
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
