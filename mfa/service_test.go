package mfa

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

var ctx = context.Background()

func TestEnrollAndVerify(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		f := newFixture(t, b.Open(t))
		if ok, _ := f.s.Enrolled(ctx, f.user.ID); ok {
			t.Fatal("enrolled before enrolling")
		}
		e, err := f.s.BeginTOTP(ctx, f.user)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(e.URL, "otpauth://totp/twofold:mfa@example.com?") || !strings.Contains(e.URL, "issuer=twofold") ||
			!strings.HasPrefix(e.QR, "data:image/png;base64,") || len(e.Secret) != 32 {
			t.Fatalf("enrollment = %+v", e)
		}
		// Until confirmed, nothing is on.
		if ok, _ := f.s.Enrolled(ctx, f.user.ID); ok {
			t.Fatal("an unconfirmed secret counts as enrolled")
		}
		again, err := f.s.PendingTOTP(ctx, f.user)
		if err != nil || again.Secret != e.Secret || again.URL != e.URL {
			t.Fatalf("pending enrollment = %+v, %v", again, err)
		}
		if _, err := f.s.ConfirmTOTP(ctx, f.user, "000000", Event{}); !errors.Is(err, ErrInvalidCode) && f.code(t, e.Secret) != "000000" {
			t.Fatalf("confirm with a wrong code: %v", err)
		}
		codes, err := f.s.ConfirmTOTP(ctx, f.user, f.code(t, e.Secret), Event{ClientAddr: "192.0.2.1"})
		if err != nil || len(codes) != BackupCodeCount {
			t.Fatalf("confirm: %d codes, %v", len(codes), err)
		}
		st, _ := f.s.Status(ctx, f.user.ID)
		if !st.TOTP || st.BackupCodes != 10 || !st.TOTPSince.Equal(f.clock.t) {
			t.Fatalf("status = %+v", st)
		}
		// The code that confirmed enrollment is burnt: not again, even in the same step.
		if _, err := f.s.Verify(ctx, f.user, f.code(t, e.Secret), Event{}); !errors.Is(err, ErrInvalidCode) {
			t.Fatalf("enrollment code reused: %v", err)
		}
		f.clock.advance(30 * time.Second)
		res, err := f.s.Verify(ctx, f.user, f.code(t, e.Secret), Event{})
		if err != nil || res.Method != MethodTOTP {
			t.Fatalf("verify: %+v, %v", res, err)
		}
		if got := f.mails(t); !slices.Equal(got, []string{"Two-factor authentication is on"}) {
			t.Fatalf("mail = %v", got)
		}
		if got := f.auditKinds(t); !slices.Contains(got, "factor.enrolled") {
			t.Fatalf("audit = %v", got)
		}
	})
}

// TestTOTPReplay: the same code twice in its step is refused, and an older
// step after a newer one is refused.
func TestTOTPReplay(t *testing.T) {
	f := newFixture(t, storetest.SQLite().Open(t))
	secret, _ := f.enroll(t)
	f.clock.advance(90 * time.Second)
	older := f.code(t, secret) // step s
	f.clock.advance(30 * time.Second)
	newer := f.code(t, secret) // step s+1; both are inside the skew window now
	if _, err := f.s.Verify(ctx, f.user, newer, Event{}); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if _, err := f.s.Verify(ctx, f.user, newer, Event{}); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("same code again: %v", err)
	}
	if _, err := f.s.Verify(ctx, f.user, older, Event{}); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("older step after a newer one: %v", err)
	}
}

func TestBackupCodes(t *testing.T) {
	f := newFixture(t, storetest.SQLite().Open(t))
	_, codes := f.enroll(t)
	res, err := f.s.Verify(ctx, f.user, strings.ToUpper(strings.ReplaceAll(codes[0], "-", " ")), Event{})
	if err != nil || res.Method != MethodBackupCode || res.BackupCodesLeft != 9 {
		t.Fatalf("backup code: %+v, %v", res, err)
	}
	if _, err := f.s.Verify(ctx, f.user, codes[0], Event{}); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("backup code reused: %v", err)
	}
	fresh, err := f.s.RegenerateBackupCodes(ctx, f.user, Event{})
	if err != nil || len(fresh) != 10 || slices.Contains(fresh, codes[1]) {
		t.Fatalf("regenerate: %v, %v", fresh, err)
	}
	if _, err := f.s.Verify(ctx, f.user, codes[1], Event{}); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("an old code works after regeneration: %v", err)
	}
	if _, err := f.s.Verify(ctx, f.user, fresh[1], Event{}); err != nil {
		t.Fatalf("a new code: %v", err)
	}
	want := []string{"Two-factor authentication is on", "A backup code was used to sign in", "New backup codes for your account", "A backup code was used to sign in"}
	if got := f.mails(t); !slices.Equal(got, want) {
		t.Fatalf("mail = %v, want %v", got, want)
	}
	used, _ := f.db.ListAudit(ctx, store.AuditFilter{TargetID: f.user.ID, Kind: "backup_code.used"})
	if len(used) != 2 || used[0].Details["remaining"] != "9" {
		t.Fatalf("backup_code.used events = %+v", used)
	}
}

// TestConcurrentSingleUse: twenty simultaneous submissions of one backup
// code, and of one TOTP code: exactly one succeeds each time.
func TestConcurrentSingleUse(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		f := newFixture(t, b.Open(t))
		secret, codes := f.enroll(t)
		f.clock.advance(30 * time.Second)
		for name, code := range map[string]string{"backup code": codes[2], "totp": f.code(t, secret)} {
			var ok atomic.Int32
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range 20 {
				wg.Go(func() {
					<-start
					if _, err := f.s.Verify(ctx, f.user, code, Event{}); err == nil {
						ok.Add(1)
					} else if !errors.Is(err, ErrInvalidCode) && !errors.Is(err, ErrThrottled) {
						t.Errorf("%s: %v", name, err)
					}
				})
			}
			close(start)
			wg.Wait()
			if ok.Load() != 1 {
				t.Fatalf("%s: %d of 20 concurrent uses succeeded, want 1", name, ok.Load())
			}
			f.db.ResetRateLimit(ctx, userLimitKey(f.user.ID))
		}
	})
}

// TestThrottle: after the free failures the user waits, growing; even the
// right code is refused while blocked; success resets the count.
func TestThrottle(t *testing.T) {
	f := newFixture(t, storetest.SQLite().Open(t))
	secret, _ := f.enroll(t)
	f.clock.advance(30 * time.Second)
	for i := range 4 {
		if _, err := f.s.Verify(ctx, f.user, "not-a-code", Event{}); !errors.Is(err, ErrInvalidCode) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	// The fourth failure blocked the user for 30 s.
	if _, err := f.s.Verify(ctx, f.user, f.code(t, secret), Event{}); !errors.Is(err, ErrThrottled) {
		t.Fatalf("right code while blocked: %v", err)
	}
	f.clock.advance(30 * time.Second)
	if _, err := f.s.Verify(ctx, f.user, f.code(t, secret), Event{}); err != nil {
		t.Fatalf("right code after the block: %v", err)
	}
	if n, _ := f.db.RateLimitFailures(ctx, userLimitKey(f.user.ID)); n != 0 {
		t.Fatalf("failures after success = %d", n)
	}
	kinds := f.auditKinds(t)
	if c := countOf(kinds, "mfa.failed"); c != 4 || countOf(kinds, "mfa.throttled") != 1 {
		t.Fatalf("audit = %v", kinds)
	}
}

func countOf(l []string, s string) int {
	n := 0
	for _, v := range l {
		if v == s {
			n++
		}
	}
	return n
}

func TestDisable(t *testing.T) {
	db := storetest.SQLite().Open(t)
	f := newFixture(t, db)
	secret, codes := f.enroll(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.CreateOrganization(ctx, store.Organization{ID: "o", Name: "Strict", Require2FA: true, CreatedAt: f.clock.t}))
	must(db.PutMembership(ctx, store.Membership{OrgID: "o", UserID: f.user.ID, Role: store.RoleMember, CreatedAt: f.clock.t}))
	if err := f.s.Disable(ctx, f.user, Event{}); !errors.Is(err, ErrRequired) {
		t.Fatalf("disable under a 2FA policy: %v", err)
	}
	if ok, _ := f.s.Enrolled(ctx, f.user.ID); !ok {
		t.Fatal("a refused disable removed the factor")
	}
	must(db.SetOrganizationRequire2FA(ctx, "o", false))
	must(f.s.Disable(ctx, f.user, Event{ClientAddr: "192.0.2.9"}))
	f.clock.advance(30 * time.Second)
	if _, err := f.s.Verify(ctx, f.user, f.code(t, secret), Event{}); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("totp after disable: %v", err)
	}
	if _, err := f.s.Verify(ctx, f.user, codes[0], Event{}); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("backup code after disable: %v", err)
	}
	if err := f.s.Disable(ctx, f.user, Event{}); !errors.Is(err, ErrNoFactor) {
		t.Fatalf("disable twice: %v", err)
	}
	if got := f.mails(t); got[len(got)-1] != "Two-factor authentication was turned off" {
		t.Fatalf("mail = %v", got)
	}
	if got := f.auditKinds(t); got[len(got)-1] == "" || !slices.Contains(got, "factor.removed") {
		t.Fatalf("audit = %v", got)
	}
}
