package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/twofold-id/twofold/store"
)

// Helpers of the owner-reset tests: a scene with an owner, a member and
// their organization, and assertions that a reset did or did not happen.

// testClock is the clock of twofold's own rules in a test (fosite keeps
// time.Now): real time shifted by an offset the test moves forward, or a
// fixed instant plus that offset once frozen. The server's goroutines read
// it while the test moves it.
type testClock struct {
	mu     sync.Mutex
	fixed  time.Time // zero: real time
	offset time.Duration
}

// movingClock follows real time until advanced.
func movingClock() *testClock { return &testClock{} }

// frozenClock stands still until advanced.
func frozenClock() *testClock { return &testClock{fixed: time.Now()} }

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fixed.IsZero() {
		return time.Now().Add(c.offset)
	}
	return c.fixed.Add(c.offset)
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

const (
	resetSubject = "Your two-factor authentication was reset"
	notAllowed   = "Only an owner of the organization can do this"
)

// resetScene is organization Acme with an owner and a member, each with an
// authenticator app and ten backup codes and signed in to twofold with it
// in their browser: the owner's sign-in is recent enough to reset someone.
type resetScene struct {
	s                   *testServer
	org                 string
	owner, member       testUser
	ownerB, memberB     *browser
	ownerApp, memberApp *authenticator
}

// resetScene sets up Acme; clock, when set, is the authenticators' clock.
func (s *testServer) resetScene(clock *testClock) *resetScene {
	s.t.Helper()
	owner, member := s.createUser("owner@example.com"), s.createUser("member@example.com")
	sc := &resetScene{s: s, owner: owner, member: member, org: s.org("Acme", owner, member),
		ownerB: s.newBrowser(), memberB: s.newBrowser()}
	sc.ownerApp, _ = sc.ownerB.enrollInSettings(owner)
	sc.memberApp, _ = sc.memberB.enrollInSettings(member)
	if clock != nil {
		sc.ownerApp.now, sc.memberApp.now = clock.now, clock.now
	}
	return sc
}

// reset resets the member from the owner's console and returns the link
// emailed to them.
func (sc *resetScene) reset() string {
	sc.s.t.Helper()
	p := sc.ownerB.post("/settings/members/"+sc.member.ID+"/reset", url1("org", sc.org))
	if p.status != http.StatusOK || !strings.Contains(p.body, "was reset") {
		sc.s.t.Fatalf("owner's reset: %d at %s\n%.2000s", p.status, p.url, p.body)
	}
	return sc.s.latestLink(sc.member)
}

// join adds u to organization org with role.
func (s *testServer) join(org string, u testUser, role store.Role) {
	s.t.Helper()
	if err := s.db.PutMembership(context.Background(), store.Membership{OrgID: org, UserID: u.ID, Role: role, CreatedAt: time.Now()}); err != nil {
		s.t.Fatal(err)
	}
}

// latestLink returns the link in the newest reset email to u, read from
// the outbox, so no SMTP server is needed.
func (s *testServer) latestLink(u testUser) string {
	s.t.Helper()
	ctx := context.Background()
	tok, err := s.db.LatestResetToken(ctx, u.ID)
	if err != nil {
		s.t.Fatalf("no reset link for %s: %v", u.Email, err)
	}
	m, err := s.db.GetMail(ctx, tok.MailID)
	if err != nil {
		s.t.Fatalf("the reset link's email: %v", err)
	}
	link := resetLinkInMail.FindString(m.Text)
	if m.Recipient != u.Email || m.Subject != resetSubject || !strings.HasPrefix(link, s.issuer+"/reset/") || !strings.Contains(m.HTML, link) {
		s.t.Fatalf("reset email to %s = %q with link %q:\n%s", m.Recipient, m.Subject, link, m.Text)
	}
	return link
}

// resetMails returns the reset emails to u in the outbox, newest first.
func (s *testServer) resetMails(u testUser) []store.Mail {
	s.t.Helper()
	all, err := s.db.ListMail(context.Background(), 1000)
	if err != nil {
		s.t.Fatal(err)
	}
	var out []store.Mail
	for _, m := range all {
		if m.Recipient == u.Email && m.Subject == resetSubject {
			out = append(out, m)
		}
	}
	return out
}

// auditOf returns the audit events about u of kind, newest first.
func (s *testServer) auditOf(u testUser, kind string) []store.AuditEvent {
	s.t.Helper()
	evs, err := s.db.ListAudit(context.Background(), store.AuditFilter{TargetID: u.ID, Kind: kind})
	if err != nil {
		s.t.Fatal(err)
	}
	return evs
}

// assertNotReset fails unless no part of a reset happened to u: their
// state is unchanged, their authenticator app and ten backup codes are
// there, and there is no reset link, reset email or reset audit event.
func (s *testServer) assertNotReset(u testUser) {
	s.t.Helper()
	ctx := context.Background()
	if got, err := s.db.GetUser(ctx, u.ID); err != nil || got.MFAState != store.MFANone {
		s.t.Fatalf("%s: state %q (%v), want unchanged", u.Email, got.MFAState, err)
	}
	if _, err := s.db.GetTOTPCredential(ctx, u.ID); err != nil {
		s.t.Fatalf("%s: authenticator app gone: %v", u.Email, err)
	}
	if n, err := s.db.CountBackupCodes(ctx, u.ID); err != nil || n != 10 {
		s.t.Fatalf("%s: %d backup codes (%v), want 10", u.Email, n, err)
	}
	if tok, err := s.db.LatestResetToken(ctx, u.ID); !errors.Is(err, store.ErrNotFound) {
		s.t.Fatalf("%s: a reset link exists: %+v (%v)", u.Email, tok, err)
	}
	if ms := s.resetMails(u); len(ms) != 0 {
		s.t.Fatalf("%s: %d reset emails in the outbox", u.Email, len(ms))
	}
	evs, err := s.db.ListAudit(ctx, store.AuditFilter{TargetID: u.ID})
	if err != nil {
		s.t.Fatal(err)
	}
	for _, e := range evs {
		if strings.HasPrefix(e.Kind, "reset.") {
			s.t.Fatalf("%s: audit event %s by %s", u.Email, e.Kind, e.ActorID)
		}
	}
}

// assertStillPending fails unless u is reset pending with their newest
// link unused: a refused link changed nothing.
func (s *testServer) assertStillPending(u testUser) {
	s.t.Helper()
	ctx := context.Background()
	if got, err := s.db.GetUser(ctx, u.ID); err != nil || got.MFAState != store.MFAResetPending {
		s.t.Fatalf("%s: state %q (%v), want still reset pending", u.Email, got.MFAState, err)
	}
	if tok, err := s.db.LatestResetToken(ctx, u.ID); err != nil || !tok.UsedAt.IsZero() {
		s.t.Fatalf("%s: newest link %+v (%v), want unused", u.Email, tok, err)
	}
	if evs := s.auditOf(u, "reset.link_used"); len(evs) != 0 {
		s.t.Fatalf("%s: %d reset.link_used events", u.Email, len(evs))
	}
}

// request sends method to path (on the issuer) with form and the
// browser's cookies, as a same-origin page would, after edit adjusts it.
// Unlike get and post it may run in any goroutine: a transport failure
// is reported with Errorf and gives a zero page.
func (b *browser) request(method, path string, form url.Values, edit func(*http.Request)) page {
	b.t.Helper()
	req, err := http.NewRequest(method, b.issuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Errorf("%s %s: %v", method, path, err)
		return page{}
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set("Origin", b.issuer)
	}
	if edit != nil {
		edit(req)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Errorf("%s %s: %v", method, path, err)
		return page{}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Errorf("%s %s: read body: %v", method, path, err)
	}
	return page{status: resp.StatusCode, url: resp.Request.URL, body: string(body), header: resp.Header}
}
