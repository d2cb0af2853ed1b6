package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twofold-id/twofold/mail/mailtest"
	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

// Several instances of twofold on one database behind a load balancer with
// no sticky sessions: here two instances, each built by buildServer on its
// own listener with its own mail worker, and a round-robin reverse proxy
// in front that is the issuer.

// front is the load balancer. It sends each request to the next instance
// in turn, or always to one when pinned, and counts what each served.
type front struct {
	*httptest.Server
	instances []*url.URL
	mu        sync.Mutex
	next      int
	pinned    int // -1: round robin
	served    map[string]int
}

func (f *front) pick() *url.URL {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.pinned
	if i < 0 {
		i = f.next % len(f.instances)
		f.next++
	}
	return f.instances[i]
}

// pin sends every request to instance i; -1 goes back to round robin.
func (f *front) pin(i int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pinned = i
}

// counts returns how many requests each instance served.
func (f *front) counts() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]int, len(f.instances))
	for i, u := range f.instances {
		out[i] = f.served[u.Host]
	}
	return out
}

// cluster is two instances, A and B, on one database, and their front.
type cluster struct {
	front *front
	a, b  *testServer
	// s is the cluster as a browser or an application sees it: the
	// front's address, and the shared store.
	s          *testServer
	logA, logB *syncBuffer
}

// newCluster starts two instances on one database of backend b, with one
// secret key and the front's address as their issuer; smtp, when set, is
// their mail server.
func newCluster(t *testing.T, b storetest.Backend, smtp *mailtest.Server) *cluster {
	t.Helper()
	dsn := b.URL(t)
	shared := storetest.Backend{Name: b.Name, URL: func(testing.TB) string { return dsn }}
	f := &front{Server: httptest.NewUnstartedServer(nil), pinned: -1, served: map[string]int{}}
	issuer := "http://" + f.Listener.Addr().String()
	key := rand.Text() + rand.Text()
	mutate := func(c *Config) {
		c.Issuer, c.SecretKey, c.LogLevel = issuer, key, "debug"
		if smtp != nil {
			withSMTP(smtp)(c)
		}
	}
	c := &cluster{front: f, logA: &syncBuffer{}, logB: &syncBuffer{}}
	c.a = newTestServerWith(t, shared, testOptions{mutate: mutate, logs: c.logA})
	c.b = newTestServerWith(t, shared, testOptions{mutate: mutate, logs: c.logB})
	for _, s := range []*testServer{c.a, c.b} {
		u, _ := url.Parse(s.URL)
		f.instances = append(f.instances, u)
	}
	f.Config.Handler = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(f.pick())
			r.Out.Host = r.In.Host // the issuer's host, as a load balancer keeps it
		},
		ModifyResponse: func(resp *http.Response) error {
			f.mu.Lock()
			f.served[resp.Request.URL.Host]++
			f.mu.Unlock()
			return nil
		},
	}
	f.Start()
	t.Cleanup(f.Close)
	c.s = &testServer{Server: f.Server, t: t, a: c.a.a, srv: c.a.srv, db: c.a.db, issuer: issuer}
	return c
}

// TestSeveralInstances: on one database, two instances behave as one
// twofold. A sign-in started on one finishes on the other; throttling
// counters are shared; each outbox email is sent once with both workers
// running; a key rotated on one is published and used by the other.
func TestSeveralInstances(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		smtp := mailtest.Start(t, "127.0.0.1:0", mailtest.Options{})
		c := newCluster(t, b, smtp)
		// scene is the cluster as subtest t sees it, with an application.
		scene := func(t *testing.T) (*testServer, *relyingParty) {
			s := c.s.withT(t)
			return s, s.newRP(store.Client{SkipConsent: true, RequirePKCE: true})
		}

		t.Run("sign-in across instances", func(t *testing.T) {
			s, rp := scene(t)
			u := s.createUser("roaming@example.com")
			app, _ := s.newBrowser().enrollInSettings(u)
			before := c.front.counts()
			br := s.newBrowser()
			ar := rp.authRequest()
			p := br.login(br.get(ar.url), u.Email, u.Password)
			in := rp.exchange(rp.code(br.secondFactor(p, app.next()), ar), ar)
			if !slices.Equal(in.claims.AMR, []string{"pwd", "otp", "mfa"}) || in.claims.Sub != u.ID {
				t.Fatalf("claims = %+v", in.claims)
			}
			after := c.front.counts()
			for i := range after {
				if after[i]-before[i] < 3 {
					t.Fatalf("instance %d served %d requests of the sign-in: it did not take turns", i, after[i]-before[i])
				}
			}
			// Started on A, finished on B: password on A; second factor,
			// code and token on B.
			defer c.front.pin(-1)
			c.front.pin(0)
			br = s.newBrowser()
			ar = rp.authRequest()
			p = br.login(br.get(ar.url), u.Email, u.Password)
			c.front.pin(1)
			if pinned := rp.exchange(rp.code(br.secondFactor(p, app.next()), ar), ar); pinned.claims.Sub != u.ID {
				t.Fatalf("claims = %+v", pinned.claims)
			}
			// The refresh token rotates on either instance.
			refresh := in.token.RefreshToken
			for i := range 2 {
				c.front.pin(i)
				st, body, err := tokenCall(s.issuer, rp.conf.ClientID, rp.conf.ClientSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
				if refresh, _ = body["refresh_token"].(string); err != nil || st != http.StatusOK || refresh == "" {
					t.Fatalf("refresh on instance %d: %d %v %v", i, st, body, err)
				}
			}
		})

		t.Run("throttles are shared", func(t *testing.T) {
			s, rp := scene(t)
			defer c.front.pin(-1)
			u := s.createUser("guessed@example.com")
			br := s.newBrowser()
			c.front.pin(0)
			login := br.get(rp.authRequest().url)
			for i := range 6 { // five free failures; the sixth sets a 30 s block
				if p := br.login(login, u.Email, "wrong"+fmt.Sprint(i)); p.status != http.StatusUnauthorized {
					t.Fatalf("wrong password %d on A: %d", i+1, p.status)
				}
			}
			c.front.pin(1)
			if p := br.login(login, u.Email, u.Password); p.status != http.StatusTooManyRequests {
				t.Fatalf("the right password on B after six failures on A: %d, want 429", p.status)
			}

			// Second factor: three free failures per user, then a block.
			v := s.createUser("guessed2@example.com")
			app, _ := s.newBrowser().enrollInSettings(v)
			c.front.pin(0)
			br = s.newBrowser()
			twoFA := br.login(br.get(rp.authRequest().url), v.Email, v.Password)
			for i := range 4 {
				if p := br.secondFactor(twoFA, "000000"); p.status != http.StatusUnauthorized {
					t.Fatalf("wrong code %d on A: %d", i+1, p.status)
				}
			}
			c.front.pin(1)
			if p := br.secondFactor(twoFA, app.next()); p.status != http.StatusUnauthorized || p.location != "" {
				t.Fatalf("the right code on B while A's failures block the user: %d %q", p.status, p.location)
			}
			if evs := s.auditOf(v, "mfa.throttled"); len(evs) == 0 {
				t.Fatal("no mfa.throttled event")
			}
		})

		t.Run("each email once", func(t *testing.T) {
			s, _ := scene(t)
			owner := s.createUser("owner@example.com")
			var members []testUser
			for i := range 12 {
				members = append(members, s.createUser(fmt.Sprintf("member%d@example.com", i)))
			}
			org := s.org("Acme", owner, members...)
			ob := s.newBrowser()
			ob.enrollInSettings(owner)
			for i, m := range members { // alternately on A and B, each nudging its worker
				if i%2 == 1 {
					ob.get(s.issuer + "/healthz") // a reset is two requests (POST, GET): shift the turn
				}
				if p := ob.post("/settings/members/"+m.ID+"/reset", url1("org", org)); !strings.Contains(p.body, "was reset") {
					t.Fatalf("reset of %s: %d\n%.1000s", m.Email, p.status, p.body)
				}
			}
			resetsA := strings.Count(c.logA.String(), "method=POST path=/settings/members/")
			resetsB := strings.Count(c.logB.String(), "method=POST path=/settings/members/")
			if resetsA+resetsB != len(members) || resetsA == 0 || resetsB == 0 {
				t.Fatalf("resets: %d on A, %d on B; want them on both", resetsA, resetsB)
			}
			// Every message in the outbox (the resets, and the earlier
			// "2FA is on" emails) reaches the SMTP server exactly once.
			all, err := s.db.ListMail(context.Background(), 1000)
			if err != nil {
				t.Fatal(err)
			}
			want := len(all)
			smtp.Wait(t, want, 20*time.Second)
			time.Sleep(500 * time.Millisecond) // a duplicate would arrive now
			msgs := smtp.Messages()
			if len(msgs) != want {
				t.Fatalf("%d messages delivered from an outbox of %d", len(msgs), want)
			}
			sent := map[string]int{}
			for _, m := range msgs {
				sent[m.To[0]+" "+m.Subject]++
			}
			for _, m := range all {
				if sent[m.Recipient+" "+m.Subject] != 1 {
					t.Errorf("%q to %s delivered %d times", m.Subject, m.Recipient, sent[m.Recipient+" "+m.Subject])
				}
			}
			for _, m := range members {
				if sent[m.Email+" "+resetSubject] != 1 {
					t.Errorf("%s got %d reset emails", m.Email, sent[m.Email+" "+resetSubject])
				}
			}
			sentA, sentB := strings.Count(c.logA.String(), `msg="mail sent"`), strings.Count(c.logB.String(), `msg="mail sent"`)
			if sentA+sentB != want {
				t.Fatalf("the workers logged %d + %d deliveries, want %d in all", sentA, sentB, want)
			}
			t.Logf("deliveries: %d by A's worker, %d by B's", sentA, sentB)
		})

		t.Run("key rotation", func(t *testing.T) {
			s, rp := scene(t)
			ctx := context.Background()
			old := c.b.srv.keys.ActiveKID("")
			if old == "" || old != c.a.srv.keys.ActiveKID("") {
				t.Fatalf("active keys: A %q, B %q", c.a.srv.keys.ActiveKID(""), old)
			}
			kids, err := c.a.srv.keys.Rotate(ctx)
			if err != nil {
				t.Fatal(err)
			}
			kid := kids[store.AlgRS256]
			if got := jwksKIDs(t, c.b.URL); slices.Contains(got, kid) {
				t.Fatal("B published the new key before looking") // so the check below means something
			}
			// B picks the rotation up the way serve does, with its refresh loop.
			loop, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { defer close(done); c.b.srv.keys.RefreshEvery(loop, 50*time.Millisecond) }()
			defer func() { stop(); <-done }()
			deadline := time.Now().Add(5 * time.Second)
			for c.b.srv.keys.ActiveKID("") != kid {
				if time.Now().After(deadline) {
					t.Fatalf("B still signs with %s", c.b.srv.keys.ActiveKID(""))
				}
				time.Sleep(20 * time.Millisecond)
			}
			if got := jwksKIDs(t, c.b.URL); !slices.Contains(got, kid) || !slices.Contains(got, old) {
				t.Fatalf("B's JWKS = %v, want the new %s and the retired %s", got, kid, old)
			}
			// A sign-in whose tokens B issues carries the new key's kid and
			// verifies at the relying party.
			c.front.pin(1)
			defer c.front.pin(-1)
			in := rp.signIn(s.newBrowser(), s.createUser("rotated@example.com"))
			if h := jwtHeader(t, in.token.Extra("id_token").(string)); h.KID != kid || h.Alg != "RS256" {
				t.Fatalf("B signed with %+v, want RS256 with %s", h, kid)
			}
		})
	})
}

// jwksKIDs returns the key ids an instance publishes.
func jwksKIDs(t *testing.T, base string) []string {
	t.Helper()
	resp, err := http.Get(base + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	decodeJSON(t, resp.Body, &set)
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KID)
	}
	return out
}

type joseHeader struct {
	Alg string `json:"alg"`
	KID string `json:"kid"`
}

// jwtHeader decodes a compact JWS's header.
func jwtHeader(t *testing.T, token string) joseHeader {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h joseHeader
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h
}
