package main

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twofold-id/twofold/mfa"
	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

// The refusals of the owner-initiated reset: who may not reset whom, and
// which links do not work. Each test checks the refusal and that nothing
// changed, then that the same step done right does work, so a refusal for
// the wrong reason fails it.

// TestResetRefusals: nobody but an owner of the member's organization,
// other than the member, can see the confirmation or reset; cross-origin
// POSTs are refused. Every refusal is a 403 and leaves every factor, and
// the outbox and audit log, as they were.
func TestResetRefusals(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, backend storetest.Backend) {
		s := newTestServer(t, backend, nil)
		sc := s.resetScene(nil)
		peer := s.createUser("peer@example.com") // another plain member of Acme
		s.join(sc.org, peer, store.RoleMember)
		s.newBrowser().enrollInSettings(peer)
		rival := s.createUser("rival@example.com") // owner of another organization
		rivalOrg := s.org("Rival", rival)
		rivalB := s.newBrowser()
		rivalB.enrollInSettings(rival)

		// The members page offers Reset 2FA on others, never on oneself.
		p := sc.ownerB.get(s.issuer + "/settings/members")
		if p.status != http.StatusOK || !strings.Contains(p.body, "/settings/members/"+sc.member.ID+"/reset") ||
			!strings.Contains(p.body, "/settings/members/"+peer.ID+"/reset") || !strings.Contains(p.body, "(you)") ||
			strings.Contains(p.body, "/settings/members/"+sc.owner.ID+"/") {
			t.Fatalf("members page: %d\n%.3000s", p.status, p.body)
		}

		reset := func(u testUser) string { return "/settings/members/" + u.ID + "/reset" }
		resend := func(u testUser) string { return "/settings/members/" + u.ID + "/resend" }
		crossSite := func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") }
		foreignOrigin := func(r *http.Request) { r.Header.Del("Sec-Fetch-Site"); r.Header.Set("Origin", "http://evil.example") }
		get, post := http.MethodGet, http.MethodPost
		cases := []struct {
			name         string
			b            *browser
			method, path string
			form         url.Values
			edit         func(*http.Request)
			says         string
		}{
			{"self: confirmation page", sc.ownerB, get, reset(sc.owner) + "?org=" + sc.org, nil, nil, notAllowed},
			{"self: reset", sc.ownerB, post, reset(sc.owner), url1("org", sc.org), nil, notAllowed},
			{"self: resend", sc.ownerB, post, resend(sc.owner), url1("org", sc.org), nil, notAllowed},
			{"member: members page", sc.memberB, get, "/settings/members", nil, nil, notAllowed},
			{"member: members page of the organization", sc.memberB, get, "/settings/members?org=" + sc.org, nil, nil, notAllowed},
			{"member: audit log", sc.memberB, get, "/settings/audit?org=" + sc.org, nil, nil, notAllowed},
			{"member: confirmation page", sc.memberB, get, reset(peer) + "?org=" + sc.org, nil, nil, notAllowed},
			{"member: reset a peer", sc.memberB, post, reset(peer), url1("org", sc.org), nil, notAllowed},
			{"member: reset the owner", sc.memberB, post, reset(sc.owner), url1("org", sc.org), nil, notAllowed},
			{"other owner: reset, own organization", rivalB, post, reset(sc.member), url1("org", rivalOrg), nil, notAllowed},
			{"other owner: reset, member's organization", rivalB, post, reset(sc.member), url1("org", sc.org), nil, notAllowed},
			{"other owner: reset, no organization", rivalB, post, reset(sc.member), nil, nil, notAllowed},
			{"other owner: confirmation page, own organization", rivalB, get, reset(sc.member) + "?org=" + rivalOrg, nil, nil, notAllowed},
			{"other owner: confirmation page, member's organization", rivalB, get, reset(sc.member) + "?org=" + sc.org, nil, nil, notAllowed},
			{"other owner: resend", rivalB, post, resend(sc.member), url1("org", rivalOrg), nil, notAllowed},
			{"other owner: members page of the organization", rivalB, get, "/settings/members?org=" + sc.org, nil, nil, notAllowed},
			{"other owner: audit log of the organization", rivalB, get, "/settings/audit?org=" + sc.org, nil, nil, notAllowed},
			{"owner: unknown organization", sc.ownerB, post, reset(sc.member), url1("org", "org-nope"), nil, notAllowed},
			{"owner: cross-site POST", sc.ownerB, post, reset(sc.member), url1("org", sc.org), crossSite, "Forbidden"},
			{"owner: POST from a foreign origin", sc.ownerB, post, reset(sc.member), url1("org", sc.org), foreignOrigin, "Forbidden"},
		}
		for _, c := range cases {
			p := c.b.request(c.method, c.path, c.form, c.edit)
			if p.status != http.StatusForbidden || !strings.Contains(p.body, c.says) {
				t.Errorf("%s: %d at %s, want 403 saying %q\n%.1000s", c.name, p.status, p.url, c.says, p.body)
			}
		}
		for _, u := range []testUser{sc.owner, sc.member, peer, rival} {
			s.assertNotReset(u)
		}

		// The same reset by the member's owner, same-origin, goes through.
		if p := sc.ownerB.get(s.issuer + reset(sc.member) + "?org=" + sc.org); p.status != http.StatusOK || !strings.Contains(p.body, sc.member.Email) {
			t.Fatalf("owner's confirmation page: %d\n%.1000s", p.status, p.body)
		}
		sc.reset()
		if u, _ := s.db.GetUser(context.Background(), sc.member.ID); u.MFAState != store.MFAResetPending {
			t.Fatalf("member after the owner's reset: %q", u.MFAState)
		}
	})
}

// TestResetNeedsRecentSecondFactor: an owner whose sign-in is older than
// ten minutes is asked to sign in again, both factors, and is then taken
// back to the confirmation; an owner with no second factor is told to
// turn it on. Neither request changes anything.
func TestResetNeedsRecentSecondFactor(t *testing.T) {
	clock := movingClock()
	s := newTestServerWith(t, storetest.SQLite(), testOptions{now: clock.now})
	sc := s.resetScene(clock)
	confirm := "/settings/members/" + sc.member.ID + "/reset?org=" + sc.org
	lax, laxMember := s.createUser("lax@example.com"), s.createUser("lax-member@example.com")
	laxOrg := s.org("Lax", lax, laxMember)
	s.newBrowser().enrollInSettings(laxMember) // lax itself has no second factor

	clock.advance(11 * time.Minute)
	// Looking needs no recent sign-in; acting does.
	if p := sc.ownerB.get(s.issuer + "/settings/members"); p.status != http.StatusOK || !strings.Contains(p.body, sc.member.Email) {
		t.Fatalf("members page after 11 minutes: %d %s", p.status, p.url)
	}
	for name, p := range map[string]page{
		"confirmation page": sc.ownerB.get(s.issuer + confirm),
		"reset":             sc.ownerB.post("/settings/members/"+sc.member.ID+"/reset", url1("org", sc.org)),
		"resend":            sc.ownerB.post("/settings/members/"+sc.member.ID+"/resend", url1("org", sc.org)),
	} {
		if p.url.Path != "/login" || !strings.Contains(p.body, `name="password"`) || !strings.Contains(p.body, "confirm it&#39;s you") {
			t.Errorf("%s with an 11-minute-old sign-in: %d at %s, want the sign-in page asking again\n%.1500s", name, p.status, p.url, p.body)
		}
	}
	s.assertNotReset(sc.member)

	// Signing in again with both factors leads back to the confirmation,
	// which then works.
	p := sc.ownerB.login(sc.ownerB.get(s.issuer+confirm), sc.owner.Email, sc.owner.Password)
	p = sc.ownerB.secondFactor(p, sc.ownerApp.next())
	if p.status != http.StatusOK || p.url.RequestURI() != confirm || !strings.Contains(p.body, "revoke their access to every application") {
		t.Fatalf("after signing in again: %d at %s, want the confirmation page\n%.1500s", p.status, p.url, p.body)
	}
	sc.reset()

	// An owner without a second factor of their own cannot reset anyone.
	laxB := s.newBrowser()
	laxB.signInToSettings(lax) // just now, with the password: all lax has
	for name, p := range map[string]page{
		"confirmation page": laxB.get(s.issuer + "/settings/members/" + laxMember.ID + "/reset?org=" + laxOrg),
		"reset":             laxB.post("/settings/members/"+laxMember.ID+"/reset", url1("org", laxOrg)),
	} {
		if p.status != http.StatusForbidden || !strings.Contains(p.body, "Turn on two-factor authentication first") {
			t.Errorf("%s by an owner without 2FA: %d at %s\n%.1000s", name, p.status, p.url, p.body)
		}
	}
	s.assertNotReset(laxMember)
}

// TestResetLinkExpired: a day later the link says it has expired, on
// opening and on confirming, and the member stays reset pending.
func TestResetLinkExpired(t *testing.T) {
	clock := movingClock()
	s := newTestServerWith(t, storetest.SQLite(), testOptions{now: clock.now})
	sc := s.resetScene(clock)
	link := sc.reset()
	b := s.newBrowser()
	if p := b.get(link); p.status != http.StatusOK || !strings.Contains(p.body, "Complete reset") {
		t.Fatalf("fresh link: %d\n%.1000s", p.status, p.body)
	}

	clock.advance(24*time.Hour + time.Minute)
	for name, p := range map[string]page{"open": b.get(link), "confirm": b.post(link, nil)} {
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, "This reset link has expired") || !strings.Contains(p.body, "Ask an owner") {
			t.Errorf("%s an expired link: %d\n%.1000s", name, p.status, p.body)
		}
	}
	s.assertStillPending(sc.member)
}

// TestResetLinkSuperseded: after the owner resends, the first link says a
// newer one was sent and changes nothing; the newer one works.
func TestResetLinkSuperseded(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, backend storetest.Backend) {
		s := newTestServer(t, backend, nil)
		sc := s.resetScene(nil)
		first := sc.reset()
		p := sc.ownerB.post("/settings/members/"+sc.member.ID+"/resend", url1("org", sc.org))
		if !strings.Contains(p.body, "A new link was emailed") {
			t.Fatalf("resend: %d\n%.1500s", p.status, p.body)
		}
		second := s.latestLink(sc.member)
		if second == first || len(s.resetMails(sc.member)) != 2 || len(s.auditOf(sc.member, "reset.resent")) != 1 {
			t.Fatalf("after resending: link changed %v, %d reset emails, %d reset.resent events",
				second != first, len(s.resetMails(sc.member)), len(s.auditOf(sc.member, "reset.resent")))
		}

		b := s.newBrowser()
		for name, p := range map[string]page{"open": b.get(first), "confirm": b.post(first, nil)} {
			if p.status != http.StatusBadRequest || !strings.Contains(p.body, "A newer reset link was sent to you") {
				t.Errorf("%s the first link: %d\n%.1000s", name, p.status, p.body)
			}
		}
		s.assertStillPending(sc.member)

		if p := b.get(second); p.status != http.StatusOK || !strings.Contains(p.body, "Complete reset") {
			t.Fatalf("the newer link: %d\n%.1000s", p.status, p.body)
		}
		if p := b.post(second, nil); !strings.Contains(p.body, "Reset complete") {
			t.Fatalf("completing with the newer link: %d\n%.1000s", p.status, p.body)
		}
		if u, _ := s.db.GetUser(context.Background(), sc.member.ID); u.MFAState != store.MFAMustEnroll {
			t.Fatalf("member after completing: %q", u.MFAState)
		}
	})
}

// TestResetLinkRefused: a link under another host name, an unknown or
// truncated token and a cross-site confirmation are refused and change
// nothing; the link itself still works afterwards.
func TestResetLinkRefused(t *testing.T) {
	s := newTestServer(t, storetest.SQLite(), nil)
	sc := s.resetScene(nil)
	link := strings.TrimPrefix(sc.reset(), s.issuer)
	otherHost := func(r *http.Request) { r.Host = "id.example.net" }
	crossSite := func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") }
	unknown := "/reset/" + rand.Text() + rand.Text()
	const notValid = "This reset link is not valid. Check that you opened the whole link"
	cases := []struct {
		name, method, path string
		edit               func(*http.Request)
		status             int
		says               string
	}{
		{"open under another host", http.MethodGet, link, otherHost, http.StatusNotFound, "Not Found"},
		{"confirm under another host", http.MethodPost, link, otherHost, http.StatusNotFound, "Not Found"},
		{"open an unknown token", http.MethodGet, unknown, nil, http.StatusNotFound, notValid},
		{"confirm an unknown token", http.MethodPost, unknown, nil, http.StatusNotFound, notValid},
		{"open a truncated link", http.MethodGet, link[:len(link)-1], nil, http.StatusNotFound, notValid},
		{"confirm a truncated link", http.MethodPost, link[:len(link)-1], nil, http.StatusNotFound, notValid},
		{"confirm cross-site", http.MethodPost, link, crossSite, http.StatusForbidden, "Forbidden"},
	}
	b := s.newBrowser()
	for _, c := range cases {
		p := b.request(c.method, c.path, nil, c.edit)
		if p.status != c.status || !strings.Contains(p.body, c.says) {
			t.Errorf("%s: %d, want %d saying %q\n%.1000s", c.name, p.status, c.status, c.says, p.body)
		}
		s.assertStillPending(sc.member)
	}
	if p := b.get(s.issuer + link); p.status != http.StatusOK || !strings.Contains(p.body, "Complete reset") {
		t.Fatalf("the link after the refusals: %d\n%.1000s", p.status, p.body)
	}
	if p := b.post(link, nil); !strings.Contains(p.body, "Reset complete") {
		t.Fatalf("completing after the refusals: %d\n%.1000s", p.status, p.body)
	}
}

// TestResetLinkGuessingThrottled: guessing tokens from one address is
// throttled after ResetLinkLimit.Free misses; then even the real link is
// refused, unchanged, until the block passes.
func TestResetLinkGuessingThrottled(t *testing.T) {
	clock := frozenClock() // the block lasts exactly as long as the test says
	s := newTestServerWith(t, storetest.SQLite(), testOptions{now: clock.now})
	sc := s.resetScene(clock)
	link := sc.reset()
	ctx := context.Background()
	key := "reset-addr:127.0.0.1"
	b := s.newBrowser()
	guess := func() page { return b.get(s.issuer + "/reset/" + rand.Text() + rand.Text()) }
	misses := mfa.ResetLinkLimit.Free + 1
	for i := range misses {
		if p := guess(); p.status != http.StatusNotFound {
			t.Fatalf("guess %d: %d, want 404", i+1, p.status)
		}
	}
	if n, err := s.db.RateLimitFailures(ctx, key); err != nil || n != misses {
		t.Fatalf("%s counts %d misses (%v), want %d", key, n, err, misses)
	}
	if p := guess(); p.status != http.StatusTooManyRequests || !strings.Contains(p.body, "Too many attempts") {
		t.Fatalf("guess %d: %d, want 429\n%.800s", misses+1, p.status, p.body)
	}
	for name, p := range map[string]page{
		"open":                b.get(link),
		"confirm":             b.post(link, nil),
		"open, fresh browser": s.newBrowser().get(link),
	} {
		if p.status != http.StatusTooManyRequests {
			t.Errorf("%s the real link while blocked: %d, want 429", name, p.status)
		}
	}
	s.assertStillPending(sc.member)
	if n, _ := s.db.RateLimitFailures(ctx, key); n != misses {
		t.Fatalf("refused attempts were counted: %d, want %d", n, misses)
	}

	clock.advance(2 * time.Second) // the first block is 1 s
	if p := b.get(link); p.status != http.StatusOK || !strings.Contains(p.body, "Complete reset") {
		t.Fatalf("the real link after the block: %d\n%.800s", p.status, p.body)
	}
}
