package mfa

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

const (
	resetBase    = "http://id.test/reset/"
	resetSubject = "Your two-factor authentication was reset"
)

// resetWorld is the fixture's user as a member of two organizations
// (owned by owner), with an authenticator app and ten backup codes, two
// browser sessions, an access and a refresh token and two counted
// second-factor failures; and a bystander with a session and a token.
type resetWorld struct {
	*fixture
	owner, bystander store.User
	sessions         [][]byte // the member's browser sessions (id hashes)
	tokens           []string // the member's access and refresh tokens (signatures)
	delivered        atomic.Int32
}

func newResetWorld(t *testing.T, db *store.DB) *resetWorld {
	t.Helper()
	f := newFixture(t, db)
	f.s.ResetURLBase = resetBase
	w := &resetWorld{fixture: f}
	f.enroll(t)
	f.s.Delivered = func() { w.delivered.Add(1) } // counts the reset's nudges only
	now := f.clock.t
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	w.owner = store.User{ID: "u-owner", Email: "owner@example.com", Name: "Olu", PasswordHash: "x", CreatedAt: now, MFAState: store.MFANone}
	w.bystander = store.User{ID: "u-bystander", Email: "bystander@example.com", PasswordHash: "x", CreatedAt: now, MFAState: store.MFANone}
	must(db.CreateUser(ctx, w.owner))
	must(db.CreateUser(ctx, w.bystander))
	for _, org := range []string{"org-a", "org-b"} {
		must(db.CreateOrganization(ctx, store.Organization{ID: org, Name: org, CreatedAt: now}))
		must(db.PutMembership(ctx, store.Membership{OrgID: org, UserID: f.user.ID, Role: store.RoleMember, CreatedAt: now}))
	}
	must(db.PutMembership(ctx, store.Membership{OrgID: "org-a", UserID: w.owner.ID, Role: store.RoleOwner, CreatedAt: now}))

	session := func(hash, userID string) {
		must(db.CreateBrowserSession(ctx, store.BrowserSession{IDHash: []byte(hash), UserID: userID, AMR: []string{"pwd", "otp", "mfa"},
			AuthTime: now, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(12 * time.Hour)}))
	}
	session("member-1", f.user.ID)
	session("member-2", f.user.ID)
	session("bystander", w.bystander.ID)
	w.sessions = [][]byte{[]byte("member-1"), []byte("member-2")}

	client := &store.Client{ID: "rp", Name: "RP", RedirectURIs: []string{"https://rp.example/cb"},
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "offline_access"}, CreatedAt: now}
	must(db.CreateClient(ctx, *client))
	must(db.CreateAccessTokenSession(ctx, "at-member", tokenRequest(client, "req-member", f.user.ID, now)))
	must(db.CreateRefreshTokenSession(ctx, "rt-member", "", tokenRequest(client, "req-member", f.user.ID, now)))
	must(db.CreateAccessTokenSession(ctx, "at-bystander", tokenRequest(client, "req-bystander", w.bystander.ID, now)))
	w.tokens = []string{"at-member", "rt-member"}

	for range 2 {
		must(db.RateLimitAttempt(ctx, userLimitKey(f.user.ID), f.s.UserLimit, now))
	}
	f.clock.advance(time.Minute)
	return w
}

func tokenRequest(c *store.Client, id, subject string, now time.Time) *fosite.Request {
	return &fosite.Request{ID: id, RequestedAt: now, Client: c, Form: url.Values{},
		RequestedScope: fosite.Arguments{"openid", "offline_access"}, GrantedScope: fosite.Arguments{"openid", "offline_access"},
		Session: &openid.DefaultSession{Subject: subject, Claims: &jwt.IDTokenClaims{Subject: subject, AuthTime: now},
			Headers: &jwt.Headers{}, ExpiresAt: map[fosite.TokenType]time.Time{fosite.AccessToken: now.Add(time.Hour)}}}
}

// tokenAlive reports whether the access or refresh token with signature
// sig still works.
func (w *resetWorld) tokenAlive(t *testing.T, sig string) bool {
	t.Helper()
	get := w.db.GetAccessTokenSession
	if strings.HasPrefix(sig, "rt-") {
		get = w.db.GetRefreshTokenSession
	}
	_, err := get(ctx, sig, &openid.DefaultSession{})
	if err != nil && !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("token %s: %v", sig, err)
	}
	return err == nil
}

func (w *resetWorld) sessionAlive(t *testing.T, hash []byte) bool {
	t.Helper()
	now := w.clock.now()
	_, err := w.db.GetBrowserSession(ctx, hash, now, now.Add(-time.Hour))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session %s: %v", hash, err)
	}
	return err == nil
}

func (w *resetWorld) state(t *testing.T, userID string) store.MFAState {
	t.Helper()
	u, err := w.db.GetUser(ctx, userID)
	if err != nil {
		t.Fatal(err)
	}
	return u.MFAState
}

// assertUntouched fails unless the member is exactly as newResetWorld left
// them: nothing of a reset happened, not even in part.
func (w *resetWorld) assertUntouched(t *testing.T) {
	t.Helper()
	if st := w.state(t, w.user.ID); st != store.MFANone {
		t.Errorf("state = %q", st)
	}
	if ok, err := w.s.Enrolled(ctx, w.user.ID); !ok || err != nil {
		t.Errorf("authenticator app gone (%v)", err)
	}
	if n, _ := w.db.CountBackupCodes(ctx, w.user.ID); n != BackupCodeCount {
		t.Errorf("%d backup codes left, want %d", n, BackupCodeCount)
	}
	for _, h := range w.sessions {
		if !w.sessionAlive(t, h) {
			t.Errorf("browser session %s ended", h)
		}
	}
	for _, sig := range w.tokens {
		if !w.tokenAlive(t, sig) {
			t.Errorf("token %s revoked", sig)
		}
	}
	if n, _ := w.db.RateLimitFailures(ctx, userLimitKey(w.user.ID)); n != 2 {
		t.Errorf("second-factor failures = %d, want 2", n)
	}
	if tok, err := w.db.LatestResetToken(ctx, w.user.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a reset link exists: %+v (%v)", tok, err)
	}
	if got := w.mails(t); !slices.Equal(got, []string{"Two-factor authentication is on"}) {
		t.Errorf("outbox = %v", got)
	}
	for _, k := range w.auditKinds(t) {
		if strings.HasPrefix(k, "reset.") {
			t.Errorf("audit event %s", k)
		}
	}
	if n := w.delivered.Load(); n != 0 {
		t.Errorf("the mail worker was nudged %d times", n)
	}
}

// tokenOf is the secret part of a link.
func tokenOf(t *testing.T, r ResetResult) string {
	t.Helper()
	token, ok := strings.CutPrefix(r.Link, resetBase)
	if !ok || len(token) != 52 {
		t.Fatalf("link %q is not %s followed by 256 random bits", r.Link, resetBase)
	}
	return token
}

// TestReset: one reset deletes the member's factors, ends their sessions,
// revokes their tokens, lifts their throttle, marks them reset pending,
// stores one hashed link, audits in each of their organizations and
// queues one email with the link; nobody else is touched.
func TestReset(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		w := newResetWorld(t, b.Open(t))
		now := w.clock.now()
		res, err := w.s.Reset(ctx, w.user, Event{ActorID: w.owner.ID, ClientAddr: "192.0.2.7"})
		if err != nil {
			t.Fatal(err)
		}
		token := tokenOf(t, res)

		if ok, _ := w.s.Enrolled(ctx, w.user.ID); ok {
			t.Error("authenticator app survived")
		}
		if n, _ := w.db.CountBackupCodes(ctx, w.user.ID); n != 0 {
			t.Errorf("%d backup codes survived", n)
		}
		for _, h := range w.sessions {
			if w.sessionAlive(t, h) {
				t.Errorf("browser session %s survived", h)
			}
		}
		for _, sig := range w.tokens {
			if w.tokenAlive(t, sig) {
				t.Errorf("token %s survived", sig)
			}
		}
		if !w.sessionAlive(t, []byte("bystander")) || !w.tokenAlive(t, "at-bystander") {
			t.Error("the bystander's session or token was touched")
		}
		if st := w.state(t, w.user.ID); st != store.MFAResetPending {
			t.Errorf("state = %q, want reset pending", st)
		}
		if n, _ := w.db.RateLimitFailures(ctx, userLimitKey(w.user.ID)); n != 0 {
			t.Errorf("second-factor failures = %d, want lifted", n)
		}

		tok, err := w.db.GetResetToken(ctx, w.s.resetHash(token))
		if err != nil || tok.UserID != w.user.ID || tok.ActorID != w.owner.ID || !tok.CreatedAt.Equal(now) ||
			!tok.ExpiresAt.Equal(now.Add(DefaultResetLinkLifespan)) || !res.ExpiresAt.Equal(tok.ExpiresAt) ||
			tok.MailID != res.MailID || !tok.UsedAt.IsZero() || !tok.SupersededAt.IsZero() {
			t.Fatalf("stored link = %+v (%v), result %+v", tok, err, res)
		}
		if _, err := w.db.GetResetToken(ctx, []byte(token)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the token is stored as it is: %v", err)
		}

		evs, err := w.db.ListAudit(ctx, store.AuditFilter{TargetID: w.user.ID, Kind: "reset.initiated"})
		if err != nil {
			t.Fatal(err)
		}
		var orgs []string
		for _, e := range evs {
			orgs = append(orgs, e.OrgID)
			if e.ActorID != w.owner.ID || e.ClientAddr != "192.0.2.7" || !e.At.Equal(now) {
				t.Errorf("audit event = %+v", e)
			}
		}
		slices.Sort(orgs)
		if !slices.Equal(orgs, []string{"org-a", "org-b"}) {
			t.Errorf("reset.initiated in organizations %v, want one in each of org-a and org-b", orgs)
		}

		m, err := w.db.GetMail(ctx, res.MailID)
		if err != nil || m.Recipient != w.user.Email || m.Subject != resetSubject || !strings.Contains(m.Text, res.Link) ||
			!strings.Contains(m.HTML, res.Link) || strings.Contains(m.Text, "an administrator") {
			t.Fatalf("reset email = %q to %s (%v):\n%s", m.Subject, m.Recipient, err, m.Text)
		}
		if got := w.mails(t); !slices.Equal(got, []string{"Two-factor authentication is on", resetSubject}) {
			t.Errorf("outbox = %v, want one reset email", got)
		}
		if n := w.delivered.Load(); n != 1 {
			t.Errorf("mail worker nudged %d times, want once after the commit", n)
		}
	})
}

var (
	errMailDown  = errors.New("test: mail down")
	errAuditDown = errors.New("test: audit log down")
)

// queueThenFail queues the message, then fails: the caller's transaction
// must take the queued message back.
type queueThenFail struct{ Mailer }

func (m queueThenFail) Send(ctx context.Context, to, name string, data any) (int64, error) {
	if _, err := m.Mailer.Send(ctx, to, name, data); err != nil {
		return 0, err
	}
	return 0, errMailDown
}

// auditFailsAt is the store, except that the failAt-th reset audit event
// fails: the last step of a reset, after everything else was written.
type auditFailsAt struct {
	*store.DB
	failAt int
	calls  *int
}

func (s auditFailsAt) AppendAudit(ctx context.Context, e store.AuditEvent) error {
	if strings.HasPrefix(e.Kind, "reset.") {
		if *s.calls++; *s.calls == s.failAt {
			return errAuditDown
		}
	}
	return s.DB.AppendAudit(ctx, e)
}

// TestResetRefusedChangesNothing: a refused reset, and one that fails at
// any step, leave the member exactly as they were: the reset is one
// transaction, the queued email included.
func TestResetRefusedChangesNothing(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		cases := []struct {
			name string
			run  func(w *resetWorld) error
			want error
		}{
			{"reset of oneself", func(w *resetWorld) error {
				_, err := w.s.Reset(ctx, w.user, Event{ActorID: w.user.ID})
				return err
			}, ErrSelfReset},
			{"resend to oneself", func(w *resetWorld) error {
				_, err := w.s.Resend(ctx, w.user, Event{ActorID: w.user.ID})
				return err
			}, ErrSelfReset},
			{"resend with no reset pending", func(w *resetWorld) error {
				_, err := w.s.Resend(ctx, w.user, Event{ActorID: w.owner.ID})
				return err
			}, ErrNotPending},
			{"mailer fails after queueing", func(w *resetWorld) error {
				w.s.Mailer = queueThenFail{w.s.Mailer}
				_, err := w.s.Reset(ctx, w.user, Event{ActorID: w.owner.ID})
				return err
			}, errMailDown},
			{"audit fails in the second organization", func(w *resetWorld) error {
				w.s.Store = auditFailsAt{DB: w.db, failAt: 2, calls: new(int)}
				_, err := w.s.Reset(ctx, w.user, Event{ActorID: w.owner.ID})
				return err
			}, errAuditDown},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				w := newResetWorld(t, b.Open(t))
				if err := c.run(w); !errors.Is(err, c.want) {
					t.Fatalf("error = %v, want %v", err, c.want)
				}
				w.assertUntouched(t)
			})
		}
	})
}

// TestResetLinks: opening a link changes nothing; resending supersedes the
// earlier link; a link works once, until it expires; each dead link is
// told apart, by opening and by completing alike, and changes nothing.
func TestResetLinks(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		w := newResetWorld(t, b.Open(t))
		owner := Event{ActorID: w.owner.ID}
		first, err := w.s.Reset(ctx, w.user, owner)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if u, err := w.s.CheckResetLink(ctx, tokenOf(t, first)); err != nil || u.ID != w.user.ID {
				t.Fatalf("check a live link: %v, %v", u.ID, err)
			}
		}
		if tok, _ := w.db.LatestResetToken(ctx, w.user.ID); !tok.UsedAt.IsZero() || w.state(t, w.user.ID) != store.MFAResetPending ||
			slices.Contains(w.auditKinds(t), "reset.link_used") {
			t.Fatalf("opening the link changed something: %+v, state %q", tok, w.state(t, w.user.ID))
		}

		w.clock.advance(time.Minute)
		second, err := w.s.Resend(ctx, w.user, owner)
		if err != nil || second.Link == first.Link {
			t.Fatalf("resend: %+v, %v", second, err)
		}
		if tok, _ := w.db.GetResetToken(ctx, w.s.resetHash(tokenOf(t, first))); !tok.SupersededAt.Equal(w.clock.now()) {
			t.Fatalf("first link after resending = %+v", tok)
		}
		if n := countOf(w.auditKinds(t), "reset.resent"); n != 2 || countOf(w.mails(t), resetSubject) != 2 || w.delivered.Load() != 2 {
			t.Fatalf("after resending: %d reset.resent events, outbox %v, %d nudges", n, w.mails(t), w.delivered.Load())
		}

		late := store.User{ID: "u-late", Email: "late@example.com", PasswordHash: "x", CreatedAt: w.clock.now()}
		if err := w.db.CreateUser(ctx, late); err != nil {
			t.Fatal(err)
		}
		expiring, err := w.s.Reset(ctx, late, owner)
		if err != nil {
			t.Fatal(err)
		}
		// A second before the day is out the links still work; the
		// member's completes, once.
		w.clock.advance(DefaultResetLinkLifespan - time.Second)
		if _, err := w.s.CheckResetLink(ctx, tokenOf(t, expiring)); err != nil {
			t.Fatalf("a link a second before it expires: %v", err)
		}
		u, err := w.s.CompleteReset(ctx, tokenOf(t, second), "192.0.2.8")
		if err != nil || u.ID != w.user.ID || u.MFAState != store.MFAMustEnroll || w.state(t, w.user.ID) != store.MFAMustEnroll {
			t.Fatalf("complete: %+v, %v", u, err)
		}
		if n := countOf(w.auditKinds(t), "reset.link_used"); n != 2 {
			t.Fatalf("%d reset.link_used events, want one per organization", n)
		}
		if _, err := w.s.Resend(ctx, w.user, owner); !errors.Is(err, ErrNotPending) {
			t.Fatalf("resend after completion: %v", err)
		}

		w.clock.advance(time.Second)
		cases := []struct {
			name, token string
			want        error
		}{
			{"unknown", "NOTALINKNOTALINKNOTALINKNOTALINKNOTALINKNOTALINKNOTA", ErrLinkUnknown},
			{"empty", "", ErrLinkUnknown},
			{"used", tokenOf(t, second), ErrLinkUsed},
			{"superseded", tokenOf(t, first), ErrLinkSuperseded},
			{"expired", tokenOf(t, expiring), ErrLinkExpired},
		}
		for _, c := range cases {
			if _, err := w.s.CheckResetLink(ctx, c.token); !errors.Is(err, c.want) {
				t.Errorf("check the %s link: %v, want %v", c.name, err, c.want)
			}
			if _, err := w.s.CompleteReset(ctx, c.token, "192.0.2.8"); !errors.Is(err, c.want) {
				t.Errorf("complete the %s link: %v, want %v", c.name, err, c.want)
			}
		}
		if st := w.state(t, late.ID); st != store.MFAResetPending {
			t.Errorf("the expired link's user is %q, want still reset pending", st)
		}
		if tok, _ := w.db.LatestResetToken(ctx, late.ID); !tok.UsedAt.IsZero() {
			t.Errorf("the expired link was spent: %+v", tok)
		}
		if n := countOf(w.auditKinds(t), "reset.link_used"); n != 2 {
			t.Errorf("dead links were audited as used: %d events", n)
		}
	})
}

// TestCompleteResetConcurrent: ten completions of one link at once:
// exactly one succeeds, the others are told it was used.
func TestCompleteResetConcurrent(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		w := newResetWorld(t, b.Open(t))
		res, err := w.s.Reset(ctx, w.user, Event{ActorID: w.owner.ID})
		if err != nil {
			t.Fatal(err)
		}
		token := tokenOf(t, res)
		var ok atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 10 {
			wg.Go(func() {
				<-start
				_, err := w.s.CompleteReset(ctx, token, "192.0.2.8")
				switch {
				case err == nil:
					ok.Add(1)
				case !errors.Is(err, ErrLinkUsed):
					t.Errorf("concurrent completion: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		if ok.Load() != 1 {
			t.Fatalf("%d of 10 concurrent completions succeeded, want 1", ok.Load())
		}
		if n := countOf(w.auditKinds(t), "reset.link_used"); n != 2 || w.state(t, w.user.ID) != store.MFAMustEnroll {
			t.Fatalf("after the race: %d reset.link_used events, state %q", n, w.state(t, w.user.ID))
		}
	})
}
