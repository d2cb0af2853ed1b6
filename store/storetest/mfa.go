package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twofold-id/twofold/store"
)

func testTOTPEnrollment(t *testing.T, db *store.DB) {
	u := newUser(t, db, "totp@example.com")
	if _, err := db.GetTOTPCredential(ctx, u.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("no credential yet: %v", err)
	}
	if has, err := db.HasSecondFactor(ctx, u.ID); err != nil || has {
		t.Fatalf("HasSecondFactor before enrolling = %v, %v", has, err)
	}
	e := store.TOTPEnrollment{UserID: u.ID, SealedSecret: []byte("sealed-1"), CreatedAt: t0, ExpiresAt: t0.Add(15 * time.Minute)}
	must(t, db.PutTOTPEnrollment(ctx, e), "enroll")
	// Restarting replaces the pending secret.
	e.SealedSecret = []byte("sealed-2")
	must(t, db.PutTOTPEnrollment(ctx, e), "re-enroll")
	got, err := db.GetTOTPEnrollment(ctx, u.ID, t0.Add(time.Minute))
	must(t, err, "get enrollment")
	if string(got.SealedSecret) != "sealed-2" {
		t.Fatalf("enrollment secret = %q", got.SealedSecret)
	}
	if _, err := db.GetTOTPEnrollment(ctx, u.ID, t0.Add(15*time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired enrollment: %v", err)
	}
	// Confirming with a secret that is no longer pending fails and writes nothing.
	stale := store.TOTPCredential{UserID: u.ID, SealedSecret: []byte("sealed-1"), LastStep: 100, CreatedAt: t0}
	if err := db.ConfirmTOTP(ctx, stale, [][]byte{[]byte("h1")}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("confirm stale enrollment: %v", err)
	}
	if n, _ := db.CountBackupCodes(ctx, u.ID); n != 0 {
		t.Fatalf("a failed confirmation wrote %d backup codes", n)
	}
	cred := store.TOTPCredential{UserID: u.ID, SealedSecret: []byte("sealed-2"), LastStep: 100, CreatedAt: t0}
	ok, _ := concurrently(10, func(int) error { return db.ConfirmTOTP(ctx, cred, [][]byte{[]byte("h1"), []byte("h2")}) })
	if ok != 1 {
		t.Fatalf("%d of 10 concurrent confirmations succeeded, want 1", ok)
	}
	if has, err := db.HasSecondFactor(ctx, u.ID); err != nil || !has {
		t.Fatalf("HasSecondFactor with TOTP = %v, %v", has, err)
	}
	c, err := db.GetTOTPCredential(ctx, u.ID)
	must(t, err, "get credential")
	if string(c.SealedSecret) != "sealed-2" || c.LastStep != 100 {
		t.Fatalf("credential = %+v", c)
	}
	if n, _ := db.CountBackupCodes(ctx, u.ID); n != 2 {
		t.Fatalf("backup codes after confirmation = %d, want 2", n)
	}
}

func testTOTPSteps(t *testing.T, db *store.DB) {
	u := newUser(t, db, "steps@example.com")
	must(t, db.PutTOTPEnrollment(ctx, store.TOTPEnrollment{UserID: u.ID, SealedSecret: []byte("s"), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}), "enroll")
	must(t, db.ConfirmTOTP(ctx, store.TOTPCredential{UserID: u.ID, SealedSecret: []byte("s"), LastStep: 1000, CreatedAt: t0}, nil), "confirm")
	for _, tc := range []struct {
		step int64
		ok   bool
	}{{1000, false}, {999, false}, {1001, true}, {1001, false}, {1003, true}, {1002, false}} {
		err := db.AcceptTOTPStep(ctx, u.ID, tc.step)
		if (err == nil) != tc.ok {
			t.Fatalf("step %d: err %v, want ok=%v", tc.step, err, tc.ok)
		}
	}
	ok, _ := concurrently(20, func(int) error { return db.AcceptTOTPStep(ctx, u.ID, 2000) })
	if ok != 1 {
		t.Fatalf("%d of 20 concurrent uses of one step succeeded, want 1", ok)
	}
}

func testBackupCodes(t *testing.T, db *store.DB) {
	u := newUser(t, db, "codes@example.com")
	other := newUser(t, db, "other-codes@example.com")
	hashes := make([][]byte, 10)
	for i := range hashes {
		hashes[i] = []byte(fmt.Sprintf("hash-%d", i))
	}
	must(t, db.ReplaceBackupCodes(ctx, u.ID, hashes, t0), "store codes")
	must(t, db.UseBackupCode(ctx, u.ID, hashes[3], t0), "use")
	if err := db.UseBackupCode(ctx, u.ID, hashes[3], t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second use of a code: %v", err)
	}
	if err := db.UseBackupCode(ctx, other.ID, hashes[4], t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another user's code: %v", err)
	}
	if n, _ := db.CountBackupCodes(ctx, u.ID); n != 9 {
		t.Fatalf("remaining = %d, want 9", n)
	}
	ok, _ := concurrently(20, func(int) error { return db.UseBackupCode(ctx, u.ID, hashes[5], t0) })
	if ok != 1 {
		t.Fatalf("%d of 20 concurrent uses of one code succeeded, want 1", ok)
	}
	// Regenerating kills every old code.
	must(t, db.ReplaceBackupCodes(ctx, u.ID, [][]byte{[]byte("new")}, t0), "regenerate")
	if err := db.UseBackupCode(ctx, u.ID, hashes[0], t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old code after regeneration: %v", err)
	}
	n, err := db.DeleteSecondFactors(ctx, u.ID)
	must(t, err, "delete factors")
	if n != 1 {
		t.Fatalf("deleted %d rows, want 1", n)
	}
	if c, _ := db.CountBackupCodes(ctx, u.ID); c != 0 {
		t.Fatalf("codes after deletion = %d", c)
	}
}

func testOrgPolicyAndFlowLimit(t *testing.T, db *store.DB) {
	u := newUser(t, db, "policy@example.com")
	if req, err := db.UserRequires2FA(ctx, u.ID); err != nil || req {
		t.Fatalf("no org: requires = %v, %v", req, err)
	}
	must(t, db.CreateOrganization(ctx, store.Organization{ID: "lax", Name: "Lax", CreatedAt: t0}), "org")
	must(t, db.CreateOrganization(ctx, store.Organization{ID: "strict", Name: "Strict", Require2FA: true, CreatedAt: t0}), "org")
	must(t, db.PutMembership(ctx, store.Membership{OrgID: "lax", UserID: u.ID, Role: store.RoleMember, CreatedAt: t0}), "member")
	if req, _ := db.UserRequires2FA(ctx, u.ID); req {
		t.Fatal("a lax organization requires 2FA")
	}
	must(t, db.PutMembership(ctx, store.Membership{OrgID: "strict", UserID: u.ID, Role: store.RoleMember, CreatedAt: t0}), "member")
	if req, _ := db.UserRequires2FA(ctx, u.ID); !req {
		t.Fatal("a strict organization does not require 2FA")
	}
	must(t, db.SetMFAState(ctx, u.ID, store.MFAResetPending), "set state")
	if got, _ := db.GetUser(ctx, u.ID); got.MFAState != store.MFAResetPending {
		t.Fatalf("state = %s", got.MFAState)
	}

	f := newFlow(t, db)
	ok, _ := concurrently(20, func(int) error { return db.CountFlowMFAFailure(ctx, f.ID, 5, t0) })
	if ok != 5 {
		t.Fatalf("%d of 20 concurrent attempts counted, want 5", ok)
	}
	if err := db.CountFlowMFAFailure(ctx, f.ID, 5, t0); !errors.Is(err, store.ErrThrottled) {
		t.Fatalf("sixth attempt: %v", err)
	}
	got, _ := db.GetLoginFlow(ctx, f.ID, t0)
	if got.MFAFailures != 5 {
		t.Fatalf("flow failures = %d", got.MFAFailures)
	}
}

func testRateLimitLockout(t *testing.T, db *store.DB) {
	b := store.Backoff{Free: 2, Base: time.Second, Max: time.Second, Forget: time.Hour, Lockout: 4}
	now := t0
	for i := range 4 {
		must(t, db.RateLimitAttempt(ctx, "lock", b, now), "attempt %d", i+1)
		now = now.Add(2 * time.Second)
	}
	// Locked: neither waiting out the delay nor a quiet day helps.
	for _, later := range []time.Duration{time.Minute, 48 * time.Hour} {
		if err := db.RateLimitAttempt(ctx, "lock", b, now.Add(later)); !errors.Is(err, store.ErrThrottled) {
			t.Fatalf("locked key after %s: %v", later, err)
		}
	}
	must(t, db.ResetRateLimit(ctx, "lock"), "reset")
	must(t, db.RateLimitAttempt(ctx, "lock", b, now), "after reset")
}

// testFactorSummary: the one-query summary agrees with the factors as
// they are added and used, and counts only the user's own.
func testFactorSummary(t *testing.T, db *store.DB) {
	u := newUser(t, db, "summary@example.com")
	other := newUser(t, db, "summary-other@example.com")
	must(t, db.RecordLogin(ctx, loginEvent(u.ID, t0.Add(time.Minute))), "record login")
	fositeClient(t, db)
	flow := store.LoginFlow{ID: "summary-flow", BindingHash: []byte("b"), ClientID: "rp", Query: "x",
		RequestedAt: t0, ExpiresAt: t0.Add(time.Hour), UserID: u.ID, AMR: []string{"pwd"}, AuthTime: t0}
	must(t, db.CreateLoginFlow(ctx, flow), "flow")
	// summary reads u's factors, and checks that the reads of the user with
	// their factors, alone and with a flow of theirs, agree with it and
	// with GetUser.
	summary := func() store.FactorSummary {
		t.Helper()
		fs, err := db.GetFactorSummary(ctx, u.ID)
		must(t, err, "summary")
		user, err := db.GetUser(ctx, u.ID)
		must(t, err, "user")
		byID, fsByID, err := db.GetUserWithFactors(ctx, u.ID)
		must(t, err, "user with factors")
		if !sameUser(byID, user) || !sameSummary(fsByID, fs) {
			t.Fatalf("user with factors = %+v %+v, want %+v %+v", byID, fsByID, user, fs)
		}
		f, byFlow, fsByFlow, err := db.GetLoginFlowWithUser(ctx, flow.ID, t0)
		must(t, err, "flow with user")
		if f.ID != flow.ID || f.UserID != u.ID || !sameUser(byFlow, user) || !sameSummary(fsByFlow, fs) {
			t.Fatalf("flow with user = %+v %+v %+v, want %+v %+v", f, byFlow, fsByFlow, user, fs)
		}
		return fs
	}
	if fs := summary(); fs != (store.FactorSummary{}) {
		t.Fatalf("summary without factors = %+v", fs)
	}
	must(t, db.PutTOTPEnrollment(ctx, store.TOTPEnrollment{UserID: u.ID, SealedSecret: []byte("s"), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}), "enroll")
	if fs := summary(); fs.TOTP {
		t.Fatal("a pending enrollment counts as an authenticator app")
	}
	hashes := [][]byte{[]byte("b1"), []byte("b2"), []byte("b3")}
	must(t, db.ConfirmTOTP(ctx, store.TOTPCredential{UserID: u.ID, SealedSecret: []byte("s"), CreatedAt: t0}, hashes), "confirm")
	must(t, db.UseBackupCode(ctx, u.ID, hashes[0], t0), "use code")
	must(t, db.CreateWebAuthnCredential(ctx, store.WebAuthnCredential{ID: []byte("k1"), UserID: u.ID, Name: "Key", Data: "{}", CreatedAt: t0}), "key")
	must(t, db.CreateWebAuthnCredential(ctx, store.WebAuthnCredential{ID: []byte("k2"), UserID: other.ID, Name: "Key", Data: "{}", CreatedAt: t0}), "other's key")
	must(t, db.ReplaceBackupCodes(ctx, other.ID, [][]byte{[]byte("o1")}, t0), "other's codes")
	must(t, db.CreateOrganization(ctx, store.Organization{ID: "sum-strict", Name: "Sum strict", Require2FA: true, CreatedAt: t0}), "org")
	must(t, db.PutMembership(ctx, store.Membership{OrgID: "sum-strict", UserID: other.ID, Role: store.RoleMember, CreatedAt: t0}), "other's membership")
	want := store.FactorSummary{TOTP: true, TOTPSince: t0.Truncate(time.Microsecond), Keys: 1, BackupCodes: 2}
	if fs := summary(); !fs.TOTPSince.Equal(want.TOTPSince) || fs.TOTP != want.TOTP || fs.Keys != want.Keys || fs.BackupCodes != want.BackupCodes || fs.Required {
		t.Fatalf("summary = %+v, want %+v", fs, want)
	}
	must(t, db.PutMembership(ctx, store.Membership{OrgID: "sum-strict", UserID: u.ID, Role: store.RoleMember, CreatedAt: t0}), "membership")
	if fs := summary(); !fs.Required {
		t.Fatal("a member of an organization that requires 2FA is not told so")
	}
	// Enrolled agrees with HasSecondFactor: an app or a key, not codes.
	for _, id := range []string{u.ID, other.ID} {
		fs, err := db.GetFactorSummary(ctx, id)
		must(t, err, "summary of %s", id)
		has, err := db.HasSecondFactor(ctx, id)
		must(t, err, "has second factor")
		if fs.Enrolled() != has {
			t.Fatalf("summary %+v: Enrolled() = %v, HasSecondFactor = %v", fs, fs.Enrolled(), has)
		}
	}
	if (store.FactorSummary{BackupCodes: 3}).Enrolled() {
		t.Fatal("backup codes alone count as a second factor")
	}
	if _, _, err := db.GetUserWithFactors(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("user with factors of nobody: %v, want ErrNotFound", err)
	}
}

// sameUser reports whether a and b are the same user in every field.
func sameUser(a, b store.User) bool {
	return a.ID == b.ID && a.Email == b.Email && a.Name == b.Name && a.EmailVerified == b.EmailVerified &&
		a.PasswordHash == b.PasswordHash && a.MFAState == b.MFAState && a.CreatedAt.Equal(b.CreatedAt) &&
		a.LastLoginAt.Equal(b.LastLoginAt)
}

// sameSummary reports whether a and b are the same FactorSummary.
func sameSummary(a, b store.FactorSummary) bool {
	return a.TOTP == b.TOTP && a.TOTPSince.Equal(b.TOTPSince) && a.Keys == b.Keys && a.BackupCodes == b.BackupCodes &&
		a.Required == b.Required
}
